"""Study summaries: JNE (or R² gain) per ROI / level across layers and subjects, peak layers,
cross-subject consistency and hierarchy tests on per-subject means.

All functions are pure: they take the long vertex table of :func:`jnecore.study.study_vertices`
(or a table made from it) and return DataFrames.

Which vertices enter: a cell's ROI (or level) value is :func:`jnecore.summaries.roi_summary`'s
(:func:`~jnecore.summaries.level_summary`'s) mean over the cell's vertices with a finite value,
by default only the significant ones (``significant_only=True``, the rule of the single-bundle ROI
page). Across subjects, every subject counts once: mean and SEM are over per-subject means
(SEM = SD with ddof=1 / sqrt(n_subjects)); the vertices are never pooled across subjects.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from scipy import stats

from ..scoring import bh_fdr
from ..summaries import level_rank, level_summary, roi_summary

__all__ = ["MIN_SUBJECTS", "CELL_KEYS", "subject_layer_table", "group_layer_table", "peak_layers",
           "vertex_peak_layer", "subject_correlations", "correlation_matrix", "vertex_consistency",
           "subject_means", "hierarchy_tests"]

#: fewest subjects for a test across subjects
MIN_SUBJECTS = 3
#: the keys of one cell in the long vertex table
CELL_KEYS = ["setting", "subject", "layer", "layer_index"]


def _check_by(by: str):
    if by not in ("roi", "level"):
        raise ValueError(f"by must be 'roi' or 'level', got {by!r}")


def subject_layer_table(vertices: pd.DataFrame, by: str = "roi", metric: str = "jne", *,
                        significant_only: bool = True) -> pd.DataFrame:
    """Per cell (setting, subject, layer) and ROI (or level): n, mean, std, median, sem of ``metric``.

    Parameters
    ----------
    vertices : long vertex table (:func:`jnecore.study.study_vertices`)
    by : "roi" or "level"
    metric : a vertex column ("jne", "r2_gain", "r2_nonlinear", ...)
    significant_only : only the significant vertices (default, as the single-bundle summaries)

    Returns
    -------
    DataFrame, one row per (cell, group) with at least one vertex
        setting, subject, layer, layer_index, ``by`` (and level when by="roi"), n, mean, std,
        median, sem (the last two over the cell's vertices). Sorted by setting, subject,
        layer_index, then hierarchy order.
    """
    _check_by(by)
    parts = []
    for key, v in vertices.groupby(CELL_KEYS, sort=True, observed=True):
        t = roi_summary(v, metric, significant_only=significant_only) if by == "roi" else \
            level_summary(v, metric, significant_only=significant_only)
        for k, val in zip(CELL_KEYS, key):
            t[k] = val
        t["_o"] = np.arange(len(t))
        parts.append(t)
    cols = CELL_KEYS + ([by, "level"] if by == "roi" else [by]) + ["n", "mean", "std", "median", "sem"]
    if not parts:
        return pd.DataFrame(columns=cols)
    out = pd.concat(parts, ignore_index=True)
    out = out.sort_values(["setting", "subject", "layer_index", "_o"]).drop(columns="_o")
    out["layer_index"] = out["layer_index"].astype(int)
    return out[cols].reset_index(drop=True)


def group_layer_table(table: pd.DataFrame, by: str = "roi") -> pd.DataFrame:
    """Mean ± SEM across subjects of the per-subject values of :func:`subject_layer_table`.

    Returns
    -------
    DataFrame, one row per (setting, layer, group)
        setting, layer, layer_index, ``by`` (and level when by="roi"), n_subjects, mean (of the
        subjects' means), sd (ddof=1; NaN for one subject), sem (= sd / sqrt(n_subjects)),
        min, max. Sorted by setting, layer_index, hierarchy order.
    """
    _check_by(by)
    keys = ["setting", "layer", "layer_index", by] + (["level"] if by == "roi" else [])
    cols = keys + ["n_subjects", "mean", "sd", "sem", "min", "max"]
    if table.empty:
        return pd.DataFrame(columns=cols)
    g = table.groupby(keys, observed=True, sort=False)["mean"]
    out = g.agg(n_subjects="count", mean="mean", sd="std", min="min", max="max").reset_index()
    out["sem"] = out["sd"] / np.sqrt(out["n_subjects"].where(out["n_subjects"] > 0))
    out["_l"] = level_rank(out["level"] if "level" in out else out[by])
    first = {g: i for i, g in enumerate(dict.fromkeys(table[by].astype(str)))}
    out["_o"] = out[by].astype(str).map(first)
    out = out.sort_values(["setting", "layer_index", "_l", "_o"]).drop(columns=["_l", "_o"])
    return out[cols].reset_index(drop=True)


def peak_layers(table: pd.DataFrame, by: str = "roi", *, value: str = "mean") -> pd.DataFrame:
    """Per ROI (or level), the layer where ``value`` peaks: per subject and on the mean over subjects.

    Parameters
    ----------
    table : :func:`subject_layer_table` output (per subject) or :func:`group_layer_table` output
        (its rows get subject "mean"); both may be passed concatenated.
    by : "roi" or "level"

    Returns
    -------
    DataFrame, one row per (setting, subject, group)
        setting, subject, ``by`` (and level when by="roi" and the table has it), peak_layer,
        peak_layer_index, peak_value, n_layers (layers with a finite value). Ties go to the
        shallowest layer.
    """
    _check_by(by)
    t = table.copy()
    if "subject" not in t:
        t["subject"] = "mean"
    t = t[np.isfinite(t[value].to_numpy(dtype=float))]
    extra = ["level"] if by == "roi" and "level" in t else []
    cols = ["setting", "subject", by] + extra + ["peak_layer", "peak_layer_index", "peak_value", "n_layers"]
    rows = []
    for (setting, subject, grp), g in t.groupby(["setting", "subject", by], sort=False, observed=True):
        g = g.sort_values("layer_index", kind="stable")
        i = int(np.argmax(g[value].to_numpy(dtype=float)))
        rows.append(dict(setting=setting, subject=subject, **{by: grp}, **{k: g[k].iloc[0] for k in extra},
                         peak_layer=str(g["layer"].iloc[i]),
                         peak_layer_index=int(g["layer_index"].iloc[i]), peak_value=float(g[value].iloc[i]),
                         n_layers=len(g)))
    return pd.DataFrame(rows, columns=cols)


def _vertex_layer_means(vertices: pd.DataFrame, metric: str, significant_only: bool) -> pd.DataFrame:
    v = vertices
    if significant_only:
        v = v[v["significant"].astype(bool)]
    v = v[np.isfinite(v[metric].to_numpy(dtype=float))]
    return v.groupby(["setting", "layer", "layer_index", "vertex"], observed=True)[metric].agg(
        mean="mean", n_subjects="count").reset_index()


def _vertex_labels(vertices: pd.DataFrame) -> pd.DataFrame:
    return vertices.drop_duplicates("vertex")[["vertex", "hemi", "roi", "level"]].reset_index(drop=True)


def vertex_peak_layer(vertices: pd.DataFrame, metric: str = "jne", *, significant_only: bool = True,
                      subject: str | None = None) -> pd.DataFrame:
    """Per vertex, the layer where ``metric`` peaks (a map; cells share a space, matched on ``vertex``).

    The value of a vertex at a layer is the mean over the subjects in which it has a finite value
    (and, with ``significant_only``, is significant); ``subject`` restricts to one subject.

    Returns
    -------
    DataFrame, one row per (setting, vertex) with a value at one layer at least
        setting, vertex, hemi, roi, level, peak_layer, peak_layer_index, peak_value, n_layers.
        Ties go to the shallowest layer.
    """
    v = vertices if subject is None else vertices[vertices["subject"].astype(str) == str(subject)]
    m = _vertex_layer_means(v, metric, significant_only).sort_values(["setting", "vertex", "layer_index"])
    cols = ["setting", "vertex", "hemi", "roi", "level", "peak_layer", "peak_layer_index", "peak_value", "n_layers"]
    if m.empty:
        return pd.DataFrame(columns=cols)
    best = m.loc[m.groupby(["setting", "vertex"], sort=False)["mean"].idxmax()]  # idxmax: first (shallowest) of ties
    n = m.groupby(["setting", "vertex"])["mean"].size().rename("n_layers").reset_index()
    out = best.rename(columns={"layer": "peak_layer", "layer_index": "peak_layer_index", "mean": "peak_value"})
    out = out.drop(columns="n_subjects").merge(n, on=["setting", "vertex"]).merge(_vertex_labels(vertices), on="vertex")
    out["peak_layer_index"] = out["peak_layer_index"].astype(int)
    return out[cols].sort_values(["setting", "vertex"]).reset_index(drop=True)


def subject_correlations(table: pd.DataFrame, by: str = "roi", *, per_layer: bool = False) -> pd.DataFrame:
    """Pearson correlation of ROI-level (or level-level) values between every pair of subjects.

    Parameters
    ----------
    table : :func:`subject_layer_table` output
    per_layer : False (default): one correlation per pair over all (layer, ROI) values both
        subjects have (layers pooled: the layer trend counts as agreement); True: one per pair and
        layer, over the ROIs (the pattern along the hierarchy within a layer).

    Returns
    -------
    DataFrame, one row per (setting, layer, unordered pair)
        setting, layer ("all" when pooled), subject_a, subject_b, n (values paired), r (NaN with
        fewer than 3 values or a constant side).
    """
    _check_by(by)
    cols = ["setting", "layer", "subject_a", "subject_b", "n", "r"]
    rows = []
    for setting, t in table.groupby("setting", sort=True, observed=True):
        wide = t.pivot_table(index=["layer", "layer_index", by], columns="subject", values="mean", observed=True)
        subjects = [str(s) for s in wide.columns]
        layer_groups = [("all", wide)] if not per_layer else \
            [(lay, w) for (lay, _), w in wide.groupby(level=["layer", "layer_index"], sort=False)]
        if per_layer:
            layer_groups.sort(key=lambda lw: int(lw[1].index.get_level_values("layer_index")[0]))
        for layer, w in layer_groups:
            for a, b in itertools.combinations(subjects, 2):
                x, y = w[a].to_numpy(dtype=float), w[b].to_numpy(dtype=float)
                ok = np.isfinite(x) & np.isfinite(y)
                r = np.nan
                if ok.sum() >= 3 and np.std(x[ok]) > 0 and np.std(y[ok]) > 0:
                    r = float(stats.pearsonr(x[ok], y[ok])[0])
                rows.append(dict(setting=setting, layer=str(layer), subject_a=a, subject_b=b, n=int(ok.sum()), r=r))
    return pd.DataFrame(rows, columns=cols)


def correlation_matrix(pairs: pd.DataFrame) -> pd.DataFrame:
    """The subject x subject matrix of one (setting, layer)'s :func:`subject_correlations` rows
    (diagonal 1, symmetric; index and columns the subjects, sorted)."""
    subjects = sorted(set(pairs["subject_a"].astype(str)) | set(pairs["subject_b"].astype(str)))
    m = pd.DataFrame(np.eye(len(subjects)), index=subjects, columns=subjects)
    for a, b, r in zip(pairs["subject_a"].astype(str), pairs["subject_b"].astype(str), pairs["r"].astype(float)):
        m.loc[a, b] = m.loc[b, a] = r
    return m


def vertex_consistency(vertices: pd.DataFrame, metric: str = "jne", *, layer: str | None = None,
                       significant_only: bool = True) -> pd.DataFrame:
    """Per vertex: across-subject mean of ``metric`` and in how many subjects it is significant.

    Parameters
    ----------
    layer : one layer (default: every layer, one row per layer and vertex)
    significant_only : the mean is over the subjects in which the vertex is significant (default);
        False: over every subject with a finite value

    Returns
    -------
    DataFrame, one row per (setting, layer, vertex)
        setting, layer, layer_index, vertex, hemi, roi, level, mean (NaN when no subject enters),
        n_mean (subjects in the mean), n_significant, n_subjects (subjects modelling the vertex).
    """
    v = vertices if layer is None else vertices[vertices["layer"].astype(str) == str(layer)]
    keys = ["setting", "layer", "layer_index", "vertex"]
    cols = keys[:3] + ["vertex", "hemi", "roi", "level", "mean", "n_mean", "n_significant", "n_subjects"]
    if v.empty:
        return pd.DataFrame(columns=cols)
    val = v[metric].to_numpy(dtype=float)
    enter = np.isfinite(val) & (v["significant"].to_numpy(dtype=bool) if significant_only else True)
    w = pd.DataFrame({k: v[k].to_numpy() for k in keys})
    w["_val"] = np.where(enter, val, np.nan)
    w["_sig"] = v["significant"].to_numpy(dtype=bool).astype(int)
    g = w.groupby(keys, observed=True)
    out = pd.concat([g["_val"].mean().rename("mean"), g["_val"].count().rename("n_mean"),
                     g["_sig"].sum().rename("n_significant"), g["_sig"].size().rename("n_subjects")], axis=1)
    out = out.reset_index().merge(_vertex_labels(vertices), on="vertex")
    out["layer_index"] = out["layer_index"].astype(int)
    return out[cols].sort_values(["setting", "layer_index", "vertex"]).reset_index(drop=True)


def subject_means(table: pd.DataFrame, by: str = "roi", *, layer: str | None = None) -> pd.DataFrame:
    """Per subject, one value per ROI (or level): the cell's mean at ``layer``, or (layer None) the
    average of the cell means over the layers (each layer counts once).

    Returns a wide DataFrame (index subject, columns the groups in hierarchy order) of one
    setting's table (pass a table filtered to one setting).
    """
    _check_by(by)
    if table["setting"].nunique() > 1:
        raise ValueError("pass the table of one setting")
    t = table if layer is None else table[table["layer"].astype(str) == str(layer)]
    order = list(dict.fromkeys(t.sort_values(["layer_index"], kind="stable")[by].astype(str)))
    rank = level_rank(t["level"] if "level" in t else t[by])
    first = dict(zip(t[by].astype(str), rank))
    order = sorted(order, key=lambda g: (first[g], order.index(g)))
    wide = t.pivot_table(index="subject", columns=by, values="mean", aggfunc="mean", observed=True)
    return wide.reindex(columns=order)


def hierarchy_tests(means: pd.DataFrame, *, groups=None, test: str = "ttest") -> pd.DataFrame:
    """Paired one-sided tests across subjects of group a > group b, for every ordered pair; BH-FDR.

    Parameters
    ----------
    means : :func:`subject_means` output (subjects x groups)
    groups : which groups and their order (default all columns)
    test : "ttest" (paired t-test, default) or "wilcoxon" (signed-rank, exact). With 3-5 subjects
        the exact signed-rank test cannot reach p < 0.05 (its smallest one-sided p is 1 / 2**n:
        0.125 for 3 subjects, 0.0625 for 4, 0.031 for 5), so the paired t-test, which assumes the
        per-subject differences are roughly normal, is the default; use Wilcoxon from 6 subjects up.

    Returns
    -------
    DataFrame, one row per ordered pair (a, b), a != b
        a, b, n_subjects (with both values), mean_a, mean_b, mean_diff (of the paired a - b),
        statistic, p (H1: a > b), q (Benjamini-Hochberg over all rows), test. Empty when fewer than
        :data:`MIN_SUBJECTS` subjects have values: no test across fewer.
    """
    if test not in ("ttest", "wilcoxon"):
        raise ValueError(f"unknown test {test!r}: use ttest or wilcoxon")
    cols = ["a", "b", "n_subjects", "mean_a", "mean_b", "mean_diff", "statistic", "p", "q", "test"]
    groups = [str(g) for g in (groups if groups is not None else means.columns)]
    if means.notna().any(axis=1).sum() < MIN_SUBJECTS:
        return pd.DataFrame(columns=cols)
    rows = []
    for a, b in itertools.permutations(groups, 2):
        x, y = means[a].to_numpy(dtype=float), means[b].to_numpy(dtype=float)
        ok = np.isfinite(x) & np.isfinite(y)
        d = x[ok] - y[ok]
        stat, p = np.nan, np.nan
        if ok.sum() >= MIN_SUBJECTS and np.any(d != 0):
            if test == "ttest":
                if np.std(d) > 0:
                    stat, p = stats.ttest_rel(x[ok], y[ok], alternative="greater")
                else:  # every subject differs by the same amount: the t statistic is infinite
                    stat, p = np.sign(d[0]) * np.inf, 0.0 if d[0] > 0 else 1.0
            else:
                stat, p = stats.wilcoxon(x[ok], y[ok], alternative="greater", method="exact")
        rows.append(dict(a=a, b=b, n_subjects=int(ok.sum()), mean_a=float(np.mean(x[ok])) if ok.any() else np.nan,
                         mean_b=float(np.mean(y[ok])) if ok.any() else np.nan,
                         mean_diff=float(np.mean(d)) if ok.any() else np.nan, statistic=float(stat), p=float(p)))
    out = pd.DataFrame(rows, columns=cols[:-2])
    out["q"] = bh_fdr(out["p"].to_numpy()) if len(out) else []
    out["test"] = test
    return out
