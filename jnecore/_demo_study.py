"""``jne demo --study``: a small simulated study (3 subjects x 4 layers) run through ``jne sweep``.

What is planted
---------------
Each hierarchy level (primary: V1; intermediate: V2-V4; higher: the other visual MMP parcels) has
its own latent stimulus coordinates ``z_l`` (N, ``N_LATENT``) and its own ``N_UNITS`` nonlinear
units ``u_lj = smooth|z_l . p_j + o_j|`` (even, so with no linear part; standardised). A vertex of
level l responds with a linear readout of ``z_l`` plus ``amplitude`` x a readout of the units,
plus Gaussian noise (SNR drawn log-uniformly in ``SNR_RANGE``).

The feature file's four layers (``LAYERS``) all carry every ``z_l`` as columns; layer k also
carries, as columns of their own, the first ``(1 - MISSING[level][k]) * N_UNITS`` units of each
level (the other unit slots hold noise). A unit that a layer carries is a *linear* function of that
layer's features; a unit it lacks must be computed by the encoder from ``z_l``. So the
nonlinearity an encoder on layer k needs for level l is the part of the response carried by the
units layer k lacks: by design it rises and then falls across layers, peaking at
:data:`PEAK_LAYER` (primary at block01, intermediate at block02, higher at block03).

Subjects differ a little: the level amplitudes vary by ``exp(N(0, 0.1))`` per subject, and each
subject weights its units with its own tilt (late units, which layers lack more often, a little
more or less), so the size of the layer trend, not its shape, moves between subjects.

The truth (``truth.json`` in the study folder) is exact: for every subject, layer and vertex, the
JNE (L1, :func:`jnecore.compute_jne`) of the planted noise-free response as the encoder sees it
(z-scored response as a function of the z-scored layer features, over all stimuli), averaged per
ROI and per level, with the planted peak layer per level. The fit sees only the features and the
noisy responses.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

__all__ = ["LAYERS", "LEVELS", "MISSING", "PEAK_LAYER", "LEVEL_AMPLITUDE", "StudySpec", "simulate_study",
           "build_demo_study", "study_truth_text"]

LAYERS = ("embedding", "block01", "block02", "block03")
LEVELS = ("primary", "intermediate", "higher")
#: per level: the fraction of its units each layer lacks (the planted nonlinearity's driver)
MISSING = {"primary": (0.5, 1.0, 1 / 3, 0.0),
           "intermediate": (1 / 6, 0.5, 1.0, 1 / 3),
           "higher": (0.0, 1 / 3, 2 / 3, 1.0)}
PEAK_LAYER = {lv: LAYERS[int(np.argmax(MISSING[lv]))] for lv in LEVELS}
#: nonlinear amplitude (relative to the linear part) per level, before the subject's jitter
LEVEL_AMPLITUDE = {"primary": 0.7, "intermediate": 1.0, "higher": 1.3}
N_LATENT, N_UNITS = 3, 6
SNR_RANGE = (1.5, 6.0)
CATEGORIES = ("a", "b", "c", "d")


@dataclass
class StudySpec:
    """Sizes of the simulated study (``small()``: a quicker one for tests)."""

    n_subjects: int = 3
    n_stimuli: int = 900
    vertex_stride: int = 8
    hidden: int = 48
    max_epochs: int = 60
    fit_batch_size: int = 64
    n_boot: int = 100
    trunk: str = "level"
    seed: int = 0

    @classmethod
    def small(cls):
        return cls(n_stimuli=700, vertex_stride=40, hidden=32, max_epochs=40, n_boot=50)


def _units(z, proj, offset, centre, sd):
    """(n, N_UNITS) smooth |.| units of the latent z (n, N_LATENT); works on numpy and torch."""
    a = z @ proj + offset
    return ((a ** 2 + 0.09) ** 0.5 - centre) / sd


class _PlantedUnits(torch.nn.Module):
    """Every level's units from the z-scored layer features: (n, D) -> (n, len(LEVELS) * N_UNITS)."""

    def __init__(self, mu, sigma, zcols, unit_params):
        super().__init__()
        t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float64)  # noqa: E731
        self.mu, self.sigma = t(mu), t(sigma)
        self.zcols = [list(c) for c in zcols]
        self.params = [tuple(t(a) for a in p) for p in unit_params]

    def forward(self, xz):
        x = self.mu + self.sigma * xz
        return torch.cat([_units(x[:, c], *p) for c, p in zip(self.zcols, self.params)], dim=1)


def _missing_part(mu, sigma, zcols, unit_params, W) -> torch.nn.Module:
    """The planted response's part carried by the units one layer lacks (``W`` (units, V): zero
    rows for the units it carries), z-scored as the encoder sees it: (n, D) -> (n, V); a units
    trunk + a Linear readout, so :func:`jnecore.compute_jne` takes its readout path."""
    lin = torch.nn.Linear(W.shape[0], W.shape[1], bias=False).double()
    with torch.no_grad():
        lin.weight.copy_(torch.as_tensor(W.T))
    return torch.nn.Sequential(_PlantedUnits(mu, sigma, zcols, unit_params), lin)


def _vertices(spec: StudySpec) -> pd.DataFrame:
    """About one vertex in ``vertex_stride`` of each visual parcel and hemisphere: a compact patch,
    the parcel's vertices nearest its centroid on the midthickness surface, so the maps show
    coloured faces (the surface figure colours a face only when all three of its vertices are
    modelled; a thinning in vertex order would leave almost none)."""
    from .atlas import load_mesh, visual_vertices

    v = visual_vertices()
    v = v[v["level"].isin(LEVELS).to_numpy()].reset_index(drop=True)
    xyz = np.asarray(load_mesh("fsLR32k", "midthickness", "both").coords)[v["vertex"].to_numpy()]
    keep = np.zeros(len(v), dtype=bool)
    for rows in v.groupby(["hemi", "roi"], sort=False).indices.values():
        d = np.linalg.norm(xyz[rows] - xyz[rows].mean(axis=0), axis=1)
        n = -(-len(rows) // spec.vertex_stride)
        keep[rows[np.argsort(d, kind="stable")[:n]]] = True
    return v[keep].reset_index(drop=True)


def simulate_study(spec: StudySpec):
    """The simulated study's arrays and truth.

    Returns
    -------
    dict with
        features {layer: (N, D) float32}, vertices (V rows: vertex, hemi, roi, level),
        categories (N,) str, subjects [{"responses": (N, V) float32, "amplitude": {level: a},
        "tilt": float, "snr": (V,)}], true_jne {subject index: {layer: (V,)}}.
    """
    rng = np.random.default_rng(spec.seed)
    N = spec.n_stimuli
    verts = _vertices(spec)
    levels = verts["level"].to_numpy().astype(str)
    V = len(verts)
    Z = {lv: rng.normal(size=(N, N_LATENT)) for lv in LEVELS}
    unit_params, U = {}, {}
    for lv in LEVELS:
        proj, offset = rng.normal(size=(N_LATENT, N_UNITS)), rng.normal(0, 0.5, N_UNITS)
        raw = _units(Z[lv], proj, offset, 0.0, 1.0)
        unit_params[lv] = (proj, offset, raw.mean(0), raw.std(0))
        U[lv] = _units(Z[lv], *unit_params[lv])
    # features: per level [z (N_LATENT) | N_UNITS slots: a carried unit or noise]
    block = N_LATENT + N_UNITS
    zcols = [list(range(i * block, i * block + N_LATENT)) for i in range(len(LEVELS))]
    carried = {layer: {lv: int(round((1 - MISSING[lv][k]) * N_UNITS)) for lv in LEVELS}
               for k, layer in enumerate(LAYERS)}
    features = {}
    for layer in LAYERS:
        cols = []
        for lv in LEVELS:
            slots = rng.normal(size=(N, N_UNITS))
            n = carried[layer][lv]
            slots[:, :n] = U[lv][:, :n]
            cols += [Z[lv], slots]
        features[layer] = np.concatenate(cols, axis=1).astype(np.float32)
    categories = np.array(CATEGORIES)[rng.permutation(np.arange(N) % len(CATEGORIES))]

    from .jacobian import compute_jne

    subjects, readouts = [], []
    for s in range(spec.n_subjects):
        srng = np.random.default_rng([spec.seed, 1 + s])
        amp = {lv: LEVEL_AMPLITUDE[lv] * float(np.exp(srng.normal(0, 0.1))) for lv in LEVELS}
        tilt = float(srng.normal(0, 0.4))
        weight = np.exp(tilt * (np.arange(N_UNITS) / (N_UNITS - 1) - 0.5))
        lin = np.zeros((N, V))
        C = np.zeros((len(LEVELS) * N_UNITS, V))  # readout of every level's units (rows) per vertex
        for i, lv in enumerate(LEVELS):
            cols = np.flatnonzero(levels == lv)
            a = Z[lv] @ srng.normal(size=(N_LATENT, len(cols)))
            lin[:, cols] = a / a.std(0)
            c = srng.normal(size=(N_UNITS, len(cols))) * weight[:, None]
            nl = U[lv] @ c
            c *= amp[lv] / nl.std(0)
            C[i * N_UNITS:(i + 1) * N_UNITS, cols] = c
        H = np.concatenate([U[lv] for lv in LEVELS], axis=1)
        signal = lin + H @ C
        signal = (signal - signal.mean(0)) / signal.std(0)
        snr = np.exp(srng.uniform(*np.log(SNR_RANGE), V))
        Y = np.sqrt(snr) * signal + srng.normal(size=(N, V))
        scale = np.sqrt(snr) / Y.std(0) / (lin + H @ C).std(0)  # planted units -> z-scored response
        readouts.append(C * scale[None, :])
        subjects.append({"responses": Y.astype(np.float32), "amplitude": amp, "tilt": tilt, "snr": snr})
    true_jne = {s: {} for s in range(spec.n_subjects)}
    for layer in LAYERS:  # one computation per layer: the units are every subject's, the readouts differ
        X = features[layer].astype(np.float64)
        mu, sigma = X.mean(0), X.std(0)
        W = np.concatenate(readouts, axis=1)
        for i, lv in enumerate(LEVELS):  # a unit this layer carries is linear in its features
            W[i * N_UNITS:i * N_UNITS + carried[layer][lv]] = 0.0
        model = _missing_part(mu, sigma, zcols, [unit_params[lv] for lv in LEVELS], W)
        jne = compute_jne(model, torch.as_tensor((X - mu) / sigma), device="cpu").jne
        for s in range(spec.n_subjects):
            true_jne[s][layer] = jne[s * V:(s + 1) * V]
    return {"features": features, "vertices": verts, "categories": categories, "subjects": subjects,
            "true_jne": true_jne, "carried": carried}


def _subject_name(s: int) -> str:
    return f"sub-{s + 1:02d}"


def _write_inputs(root: Path, sim: dict):
    """inputs/features.h5 (a `jne features` file) and one input set per subject."""
    import h5py

    from ._atomic import tmp_prefix

    inputs = root / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    tmp = inputs / (tmp_prefix("features.h5") + "h5")
    with h5py.File(tmp, "w") as fh:
        fh.attrs.update({"format": "jne-features", "model": "jne demo --study generator", "family": "simulated",
                         "layers": json.dumps(list(LAYERS)),
                         "dims": json.dumps([sim["features"][k].shape[1] for k in LAYERS]), "pooling": "none"})
        for layer in LAYERS:
            fh[layer] = sim["features"][layer]
        fh["stimulus_ids"] = np.array([f"sim-{i:05d}" for i in range(len(sim["categories"]))], dtype="S")
    tmp.replace(inputs / "features.h5")
    verts = sim["vertices"]
    for s, subject in enumerate(sim["subjects"]):
        d = inputs / _subject_name(s)
        d.mkdir(exist_ok=True)
        np.save(d / "responses.npy", subject["responses"])
        pd.DataFrame({"roi": verts["roi"]}).to_csv(d / "rois.csv", index=False)
        pd.DataFrame({"vertex": verts["vertex"]}).to_csv(d / "vertices.csv", index=False)
        pd.DataFrame({"category": sim["categories"]}).to_csv(d / "categories.csv", index=False)


def _study_toml(spec: StudySpec, n_subjects: int, device: str) -> str:
    subjects = "".join(
        f'[subjects.{_subject_name(s)}]\nresponses = "inputs/{_subject_name(s)}/responses.npy"\n'
        f'rois = "inputs/{_subject_name(s)}/rois.csv"\nvertices = "inputs/{_subject_name(s)}/vertices.csv"\n'
        f'categories = "inputs/{_subject_name(s)}/categories.csv"\nspace = "fsLR32k"\n\n' for s in range(n_subjects))
    return (f'# jne demo --study: a simulated study (see truth.json for what was planted)\n'
            f'name = "demo-study"\nout = "."\nfeatures = "inputs/features.h5"\nlayers = "all"\n\n{subjects}'
            f'[settings.default]\n\n[run]\nhidden = {spec.hidden}\nn_blocks = 1\nmax_epochs = {spec.max_epochs}\n'
            f'patience = 6\ntrunk = "{spec.trunk}"\nfit_batch_size = {spec.fit_batch_size}\nlr = 0.003\nn_boot = {spec.n_boot}\n'
            f'test_fraction = 0.15\ngrouping = "categories"\nseed = {spec.seed}\ndevice = "{device}"\n')


def _truth(sim: dict, spec: StudySpec) -> dict:
    verts = sim["vertices"]
    rois, levels = verts["roi"].to_numpy().astype(str), verts["level"].to_numpy().astype(str)
    subjects = {}
    for s, subject in enumerate(sim["subjects"]):
        per_layer = {}
        for layer in LAYERS:
            j = sim["true_jne"][s][layer]
            per_layer[layer] = {"levels": {lv: float(j[levels == lv].mean()) for lv in LEVELS},
                                "rois": {r: float(j[rois == r].mean()) for r in sorted(set(rois))}}
        subjects[_subject_name(s)] = {"amplitude": subject["amplitude"], "tilt": subject["tilt"],
                                      "true_jne": per_layer}
    return {"schema": "jne-demo-study-truth/1", "description": __doc__.split("What is planted")[1].strip(),
            "layers": list(LAYERS), "levels": list(LEVELS), "peak_layer": PEAK_LAYER,
            "missing_fraction": {lv: dict(zip(LAYERS, MISSING[lv])) for lv in LEVELS},
            "units_carried": sim["carried"], "level_amplitude": LEVEL_AMPLITUDE,
            "roi_level": {r: lv for r, lv in zip(verts["roi"], verts["level"])},
            "spec": dict(spec.__dict__), "subjects": subjects}


def build_demo_study(out, *, small: bool = False, seed: int = 0, device: str = "auto", jobs: int = 2,
                     overwrite: bool = False, log=None):
    """Simulate the study, write its inputs, study.toml and truth.json to ``out``, run the sweep.

    ``out`` becomes the study folder (study.json, cells/) with ``inputs/``, ``study.toml`` and
    ``truth.json`` beside them. An existing non-empty ``out`` needs ``overwrite`` and must be a
    demo study (it is then replaced). Returns (study.json path, sweep counts).
    """
    from .sweep import run_sweep
    from .validation import InputError

    from .analysis import JNEAnalysis

    # the options first, with the rules `jne run` and `jne sweep` apply: nothing is written for a bad one
    if jobs < 1:
        raise InputError("--jobs", f"must be an integer >= 1, got {jobs}")
    JNEAnalysis(device=device, seed=seed).check_params()
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not overwrite:
            raise InputError(out, "exists and is not empty: choose another `out` or pass `overwrite`")
        if not (out / "truth.json").is_file() or not (out / "study.toml").is_file():
            raise InputError(out, "is not a demo study (no truth.json / study.toml): `overwrite` replaces only "
                                  "a demo study; choose another `out`")
        shutil.rmtree(out)
    spec = StudySpec.small() if small else StudySpec()
    spec.seed = seed
    sim = simulate_study(spec)
    _write_inputs(out, sim)
    (out / "truth.json").write_text(json.dumps(_truth(sim, spec), indent=1) + "\n")
    study = out / "study.toml"
    study.write_text(_study_toml(spec, spec.n_subjects, device))
    # one torch thread per cell, as `jne demo` does: the encoders are small, and threads contending
    # for a busy CPU make them many times slower (benchmarks/RESULTS.md, bench_sweep)
    path, counts, _ = run_sweep(study, jobs=jobs, threads=1, log=log)
    return path, counts


def study_truth_text(truth: dict) -> str:
    """The planted layer trend as lines (for the README / the command's output)."""
    lines = [f"planted peak layer: " + ", ".join(f"{lv} {truth['peak_layer'][lv]}" for lv in truth["levels"])]
    for name, sub in truth["subjects"].items():
        rows = ["  ".join(f"{lv} " + " ".join(f"{sub['true_jne'][layer]['levels'][lv]:.3f}" for layer in truth["layers"])
                          for lv in truth["levels"])]
        lines.append(f"{name} true JNE by layer: {rows[0]}")
    return "\n".join(lines)
