"""Summaries of JNE by ROI and along the visual hierarchy, and of JNE-SS by stimulus group.

Vertex tables follow the bundle contract (columns ``roi``, ``level``, ``significant`` and the
metric). Groups are stimulus categories or clusters. Terms from the paper: MoJ is the mean JNE-SS
of a vertex over a group's stimuli; MoM is the mean of MoJ over a ROI's vertices.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from scipy import stats

from .atlas import LEVELS as LEVEL_ORDER
from .scoring import bh_fdr

__all__ = [
    "LEVEL_ORDER", "level_rank", "order_rois", "roi_summary", "level_summary", "pairwise_tests", "group_moj",
    "roi_group_table", "roi_group_ci", "top_stimuli", "group_drivers", "selectivity_margins", "same_inputs",
]


def level_rank(levels) -> np.ndarray:
    """Position of each level in LEVEL_ORDER (primary 0 ... other 3); unknown levels sort last."""
    rank = {lv: i for i, lv in enumerate(LEVEL_ORDER)}
    return np.array([rank.get(str(lv), len(rank)) for lv in levels], dtype=int)


def _select(vertices: pd.DataFrame, metric: str, significant_only: bool) -> pd.DataFrame:
    if metric not in vertices.columns:
        raise KeyError(f"no column {metric!r} in the vertex table")
    v = vertices[vertices["significant"].astype(bool)] if significant_only else vertices
    return v[np.isfinite(v[metric].to_numpy(dtype=float))]


def _describe(groups) -> pd.DataFrame:
    out = groups.agg(n="count", mean="mean", std="std", median="median")
    out["sem"] = out["std"] / np.sqrt(out["n"].where(out["n"] > 0))
    return out


def roi_summary(vertices: pd.DataFrame, metric: str = "jne", *, significant_only: bool = True,
                roi_order=None) -> pd.DataFrame:
    """Per-ROI n, mean, std, sem and median of ``metric``, ordered by hierarchy level.

    Returns columns roi, level, n, mean, std, median, sem. ROIs are ordered by level, then by
    ``roi_order`` (e.g. the hierarchy table's order) when given, else by mean.
    """
    v = _select(vertices, metric, significant_only)
    out = _describe(v.groupby(["roi", "level"], observed=True)[metric]).reset_index()
    return order_rois(out, roi_order)


def order_rois(summary: pd.DataFrame, roi_order=None) -> pd.DataFrame:
    """Rows of a per-ROI table (columns roi, level, mean) in hierarchy order: by level, then by
    ``roi_order`` (e.g. the hierarchy table's order) when given, else by mean."""
    out = summary.copy()
    out["_level"] = level_rank(out["level"])
    if roi_order is not None:
        rank = {r: i for i, r in enumerate(roi_order)}
        out["_rank"] = out["roi"].map(rank).fillna(len(rank))
    else:
        out["_rank"] = out["mean"]
    out = out.sort_values(["_level", "_rank", "roi"]).drop(columns=["_level", "_rank"])
    return out.reset_index(drop=True)


def level_summary(vertices: pd.DataFrame, metric: str = "jne", *, significant_only: bool = True) -> pd.DataFrame:
    """Per-level n, mean, std, sem and median of ``metric`` (primary, intermediate, higher, other)."""
    v = _select(vertices, metric, significant_only)
    out = _describe(v.groupby("level", observed=True)[metric]).reset_index()
    out["_o"] = level_rank(out["level"])
    return out.sort_values("_o").drop(columns="_o").reset_index(drop=True)


def pairwise_tests(vertices: pd.DataFrame, by: str = "level", metric: str = "jne", *, groups=None,
                   significant_only: bool = True, test: str = "mannwhitney") -> pd.DataFrame:
    """One-sided tests of ``metric`` being greater in group a than in group b, for every ordered pair.

    Parameters
    ----------
    by : column to group by ("level" or "roi")
    groups : which groups (and their order); default all present, levels in hierarchy order
    test : "mannwhitney" (rank-based, default) or "welch" (Welch's t-test)

    Returns one row per ordered pair (a, b), a != b: a, b, n_a, n_b, mean_a, mean_b, statistic,
    p (H1: a > b), q (Benjamini-Hochberg over all rows).
    """
    if test not in ("mannwhitney", "welch"):
        raise ValueError(f"unknown test {test!r}: use mannwhitney or welch")
    v = _select(vertices, metric, significant_only)
    if groups is None:
        present = list(pd.unique(v[by].astype(str)))
        groups = [g for g in LEVEL_ORDER if g in present] if by == "level" else sorted(present)
    values = {g: v.loc[v[by].astype(str) == g, metric].to_numpy(dtype=float) for g in groups}
    rows = []
    for a, b in itertools.permutations(groups, 2):
        xa, xb = values[a], values[b]
        if len(xa) < 2 or len(xb) < 2:
            stat, p = np.nan, np.nan
        elif test == "mannwhitney":
            stat, p = stats.mannwhitneyu(xa, xb, alternative="greater")
        else:
            stat, p = stats.ttest_ind(xa, xb, equal_var=False, alternative="greater")
        rows.append(dict(a=a, b=b, n_a=len(xa), n_b=len(xb), mean_a=np.mean(xa) if len(xa) else np.nan,
                         mean_b=np.mean(xb) if len(xb) else np.nan, statistic=float(stat), p=float(p)))
    out = pd.DataFrame(rows, columns=["a", "b", "n_a", "n_b", "mean_a", "mean_b", "statistic", "p"])
    out["q"] = bh_fdr(out["p"].to_numpy()) if len(out) else []
    out["test"] = test
    return out


def group_moj(jne_ss: np.ndarray, groups) -> tuple:
    """MoJ: mean JNE-SS of every vertex over each group's stimuli.

    jne_ss : (n_test, V); groups : (n_test,) labels. Returns (names (G,), moj (G, V) float64).
    NaN columns (vertices not computed) stay NaN.
    """
    groups = np.asarray(groups).astype(str)
    if len(groups) != jne_ss.shape[0]:
        raise ValueError(f"{len(groups)} group labels for {jne_ss.shape[0]} test stimuli")
    names = np.array(sorted(set(groups)))
    moj = np.empty((len(names), jne_ss.shape[1]))
    for k, g in enumerate(names):
        moj[k] = np.asarray(jne_ss[groups == g], dtype=np.float64).mean(0)
    return names, moj


def roi_group_table(jne_ss: np.ndarray, groups, rois, *, vertex_mask=None) -> pd.DataFrame:
    """MoM per ROI and group (the paper's Fig. 8c table), long format.

    jne_ss : (n_test, V); groups : (n_test,) labels; rois : (V,) ROI of each vertex;
    vertex_mask : (V,) bool, vertices to use (default: those with JNE-SS computed).

    Returns columns roi, group, mom, sem (across the ROI's vertices), n_vertices, n_stimuli and
    mom_norm (MoM min-max normalised within each ROI across groups).
    """
    names, moj = group_moj(jne_ss, groups)
    rois = np.asarray(rois).astype(str)
    mask = np.isfinite(moj).all(0)
    if vertex_mask is not None:
        mask &= np.asarray(vertex_mask, dtype=bool)
    counts = pd.Series(np.asarray(groups).astype(str)).value_counts()
    rows = []
    for roi in sorted(set(rois[mask])):
        cols = mask & (rois == roi)
        sub = moj[:, cols]
        mom = sub.mean(1)
        sem = sub.std(1, ddof=1) / np.sqrt(cols.sum()) if cols.sum() > 1 else np.full(len(names), np.nan)
        span = mom.max() - mom.min()
        norm = (mom - mom.min()) / span if span > 0 else np.zeros_like(mom)
        for k, g in enumerate(names):
            rows.append(dict(roi=roi, group=g, mom=mom[k], sem=sem[k], n_vertices=int(cols.sum()),
                             n_stimuli=int(counts.get(g, 0)), mom_norm=norm[k]))
    return pd.DataFrame(rows, columns=["roi", "group", "mom", "sem", "n_vertices", "n_stimuli", "mom_norm"])


def roi_group_ci(jne_ss: np.ndarray, groups, vertex_mask, *, n_boot: int = 200, ci: float = 0.95,
                 seed: int = 0) -> pd.DataFrame:
    """MoM of each stimulus group over one ROI's vertices, with a bootstrap CI over stimuli.

    The MoM of group g (mean over the ROI's vertices of each vertex's mean JNE-SS over g's
    stimuli) equals the mean over g's stimuli of each stimulus's mean JNE-SS over the ROI's
    vertices, so the stimuli are what is resampled: g's test stimuli are drawn with replacement
    (within g, ``n_boot`` times, seeded), and the CI is the percentile interval of the resampled
    MoMs. The vertices are fixed: the CI says how much the MoM depends on which stimuli were
    tested.

    Parameters
    ----------
    jne_ss : (n_test, V) JNE-SS
    groups : (n_test,) group labels
    vertex_mask : (V,) bool, the ROI's vertices (columns with a non-finite value are left out)
    n_boot : resamples (>= 1); ci : interval mass in (0, 1); seed : of the resampling

    Returns
    -------
    DataFrame, one row per group (sorted by name): group, mom, ci_low, ci_high, n_stimuli,
    n_vertices, n_boot, ci (the interval mass). Empty (same columns) when the mask selects no finite column.
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0 < ci < 1:
        raise ValueError(f"ci must lie in (0, 1), got {ci}")
    groups = np.asarray(groups).astype(str)
    if len(groups) != jne_ss.shape[0]:
        raise ValueError(f"{len(groups)} group labels for {jne_ss.shape[0]} test stimuli")
    cols = ["group", "mom", "ci_low", "ci_high", "n_stimuli", "n_vertices", "n_boot", "ci"]
    idx = np.flatnonzero(np.asarray(vertex_mask, dtype=bool))
    block = np.asarray(jne_ss[:, idx], dtype=np.float64) if len(idx) else np.empty((len(groups), 0))
    finite = np.isfinite(block).all(0)
    if not finite.any():
        return pd.DataFrame(columns=cols)
    score = block[:, finite].mean(1)  # (n_test,) mean JNE-SS over the ROI's vertices
    rng = np.random.default_rng(seed)
    tail = 100 * (1 - ci) / 2
    rows = []
    for g in sorted(set(groups)):
        s = score[groups == g]
        pick = rng.integers(0, len(s), (n_boot, len(s)))
        boot = s[pick].mean(1)
        lo, hi = np.percentile(boot, [tail, 100 - tail])
        rows.append(dict(group=g, mom=float(s.mean()), ci_low=float(lo), ci_high=float(hi), n_stimuli=len(s),
                         n_vertices=int(finite.sum()), n_boot=int(n_boot), ci=float(ci)))
    return pd.DataFrame(rows, columns=cols)


def top_stimuli(jne_ss: np.ndarray, test_stimuli: pd.DataFrame, vertex_mask, k: int = 10,
                group_column: str = "category") -> pd.DataFrame:
    """The ``k`` test stimuli with the highest mean JNE-SS over the vertices in ``vertex_mask``.

    Returns rank, stimulus, the group column, and score (mean JNE-SS over those vertices).
    """
    mask = np.asarray(vertex_mask, dtype=bool)
    if not mask.any():
        return pd.DataFrame(columns=["rank", "stimulus", group_column, "score"])
    score = np.nanmean(np.asarray(jne_ss[:, mask], dtype=np.float64), axis=1)
    order = np.argsort(-score, kind="stable")[:k]
    out = test_stimuli.iloc[order][["stimulus", group_column]].reset_index(drop=True)
    out.insert(0, "rank", np.arange(1, len(order) + 1))
    out["score"] = score[order]
    return out


def group_drivers(table: pd.DataFrame, group: str, *, normalised: bool = False) -> pd.DataFrame:
    """ROIs ordered by how strongly stimulus group ``group`` drives them (from roi_group_table)."""
    col = "mom_norm" if normalised else "mom"
    sub = table[table["group"].astype(str) == str(group)]
    return sub.sort_values(col, ascending=False).reset_index(drop=True)


def selectivity_margins(table: pd.DataFrame, expected: dict | None = None) -> pd.DataFrame:
    """How clearly one stimulus group drives each ROI: its top group's MoM over the runner-up's.

    Parameters
    ----------
    table : DataFrame
        Long ROI x group table from :func:`roi_group_table` (columns roi, group, mom).
    expected : {roi: group}, optional
        A group per ROI (e.g. the planted one) whose own margin is wanted too.

    Returns
    -------
    DataFrame, one row per ROI (in the table's order)
        roi, top, runner_up, margin (MoM of top / MoM of runner_up; NaN with fewer than two
        groups or a runner-up MoM <= 0) and, with ``expected``, expected and expected_margin
        (MoM of the expected group / the largest MoM of the other groups; NaN when the ROI has
        no such group).
    """
    cols = ["roi", "top", "runner_up", "margin"] + (["expected", "expected_margin"] if expected is not None else [])
    rows = []
    for roi, sub in table.groupby(table["roi"].astype(str), sort=False):
        mom = pd.Series(sub["mom"].to_numpy(dtype=float), index=sub["group"].astype(str)).dropna()
        if mom.empty:
            continue
        ranked = mom.sort_values(ascending=False, kind="stable")
        second = ranked.iloc[1] if len(ranked) > 1 else np.nan
        row = dict(roi=roi, top=ranked.index[0], runner_up=ranked.index[1] if len(ranked) > 1 else None,
                   margin=ranked.iloc[0] / second if second > 0 else np.nan)
        if expected is not None:
            want = expected.get(roi)
            others = mom.drop(want) if want in mom.index else mom.iloc[:0]
            row["expected"] = want
            row["expected_margin"] = (mom[want] / others.max() if want in mom.index and len(others)
                                      and others.max() > 0 else np.nan)
        rows.append(row)
    return pd.DataFrame(rows, columns=cols)


def same_inputs(manifest_a: dict, manifest_b: dict, *, ignore=("trunk", "device")) -> bool:
    """Whether two bundles were fitted on the same inputs with the same settings but ``ignore``.

    Same inputs: equal ``sources``, ``space`` and stimulus / split / column counts (``counts``
    without the fit-dependent ``significant``); same settings: equal ``config`` apart from the
    keys in ``ignore`` (by default the encoder trunk and the device). Manifests without a
    ``config`` or ``counts`` (old or hand-made bundles) never match.
    """
    fixed = ("stimuli", "train", "val", "test", "vertices", "excluded")
    for m in (manifest_a, manifest_b):
        if not isinstance(m.get("config"), dict) or not isinstance(m.get("counts"), dict):
            return False

    def key(m):
        config = {k: v for k, v in m["config"].items() if k not in ignore}
        return (m.get("sources") or {}, m.get("space"), {k: m["counts"].get(k) for k in fixed}, config)

    return key(manifest_a) == key(manifest_b)
