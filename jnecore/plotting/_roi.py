"""ROI and hierarchy figures: per-ROI bars and distributions, level tests, R^2 scatter.

Every function takes tables from :mod:`jnecore.summaries` (or a bundle's vertex table) and returns
a :class:`plotly.graph_objects.Figure`; nothing here reads files or needs Streamlit. Keyword names
follow nilearn's plotting API (``title``, ``cmap``, ``vmin``, ``vmax``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from scipy import stats

from .._format import format_p
from ..summaries import LEVEL_ORDER

__all__ = [
    "LEVEL_COLORS", "MAX_DISTRIBUTION_POINTS", "TEMPLATE", "bars_from_zero", "level_color", "plot_roi_bars", "plot_level_bars", "plot_roi_distributions",
    "plot_test_matrix", "plot_r2_scatter", "r2_correlation_table", "METRIC_LABELS",
]

#: one colour per hierarchy level (Okabe-Ito, colour-blind safe)
LEVEL_COLORS = {"primary": "#0072B2", "intermediate": "#009E73", "higher": "#D55E00", "other": "#999999"}
#: plotly template used by every figure of the package
TEMPLATE = "plotly_white"
#: axis labels of the vertex-table metrics
METRIC_LABELS = {
    "jne": "JNE", "r2_linear": "R² (linear)", "r2_nonlinear": "R² (nonlinear)",
    "r2_diff": "R² nonlinear − linear", "noise_ceiling": "noise ceiling (%)",
    "true_nonlinearity": "planted nonlinearity", "jne_ss": "JNE-SS", "p_fdr": "q (FDR)",
}


def level_color(level) -> str:
    """The colour of a hierarchy level (grey for unknown levels)."""
    return LEVEL_COLORS.get(str(level), LEVEL_COLORS["other"])


def _label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric)


def _levels_present(levels) -> list:
    present = list(dict.fromkeys(str(x) for x in levels))
    return [lv for lv in LEVEL_ORDER if lv in present] + [lv for lv in present if lv not in LEVEL_ORDER]


def _layout(fig: go.Figure, title, **kw) -> go.Figure:
    fig.update_layout(template=TEMPLATE, title=dict(text=title) if title else None,
                      margin=dict(l=60, r=20, t=60 if title else 30, b=60), **kw)
    return bars_from_zero(fig)


def bars_from_zero(fig: go.Figure) -> go.Figure:
    """Every bar trace's value axis starts at 0 (``rangemode="tozero"``), in every subplot.

    A bar's length is its value, so an axis that does not start at 0 misleads; zoomed views of
    means belong in dot or box plots. Vertical bars: their y axis; horizontal bars: their x axis.
    An explicit axis range is widened to include 0.
    """
    for tr in fig.data:
        if tr.type != "bar":
            continue
        horizontal = tr.orientation == "h"
        ref = (tr.xaxis if horizontal else tr.yaxis) or ("x" if horizontal else "y")
        axis = fig.layout[("xaxis" if horizontal else "yaxis") + ref[1:]]
        axis.rangemode = "tozero"
        if axis.range is not None:
            lo, hi = axis.range
            axis.range = [min(0.0, lo), max(0.0, hi)]
    return fig


def plot_roi_bars(summary: pd.DataFrame, *, metric: str = "jne", error: str = "sem", highlight_roi=None,
                  title=None, height: int = 420) -> go.Figure:
    """Mean of a metric per ROI with error bars, in the table's order, coloured by hierarchy level.

    Parameters
    ----------
    summary : DataFrame from :func:`jnecore.summaries.roi_summary` (n_rois rows): roi, level, mean,
        sem, std, n. Its row order (hierarchy order) is the x order.
    metric : name of the summarised metric (axis label only)
    error : "sem", "std" or None
    highlight_roi : ROI drawn with a black outline
    title : figure title (default "<metric> per ROI (mean ± SEM)")

    Returns a figure with one bar trace per level (legend = levels); ``layout.xaxis.categoryarray``
    holds the ROI order. The y axis starts at 0 (:func:`bars_from_zero`).
    """
    if error not in ("sem", "std", None):
        raise ValueError(f"error must be 'sem', 'std' or None, got {error!r}")
    order = [str(r) for r in summary["roi"]]
    fig = go.Figure()
    for lv in _levels_present(summary["level"]):
        sub = summary[summary["level"].astype(str) == lv]
        line_w = [3 if highlight_roi is not None and str(r) == str(highlight_roi) else 0 for r in sub["roi"]]
        n = sub["n"].to_numpy() if "n" in sub else np.full(len(sub), np.nan)
        err = sub[error].to_numpy(dtype=float) if error else None
        fig.add_bar(
            x=sub["roi"].astype(str).tolist(), y=sub["mean"].to_numpy(dtype=float), name=lv,
            marker=dict(color=level_color(lv), line=dict(color="black", width=line_w)),
            error_y=dict(type="data", array=err, visible=True, thickness=1.2) if error else None,
            customdata=np.stack([n, err if err is not None else np.full(len(sub), np.nan)], -1),
            hovertemplate="%{x}<br>mean %{y:.4g}<br>" + (error or "") + " %{customdata[1]:.3g}<br>n %{customdata[0]}"
                          "<extra>" + lv + "</extra>",
        )
    suffix = {"sem": " (mean ± SEM)", "std": " (mean ± SD)", None: " (mean)"}[error]
    fig.update_xaxes(categoryorder="array", categoryarray=order, tickangle=-60 if len(order) > 12 else 0)
    fig.update_yaxes(title=_label(metric))
    return _layout(fig, title if title is not None else f"{_label(metric)} per ROI{suffix}", height=height,
                   barmode="overlay", legend_title_text="level", bargap=0.15)


def plot_level_bars(summary: pd.DataFrame, *, metric: str = "jne", error: str = "sem", title=None,
                    height: int = 360) -> go.Figure:
    """Mean ± SEM of a metric per hierarchy level (table from :func:`jnecore.summaries.level_summary`).

    One bar trace with x = levels in hierarchy order, y = mean, coloured by level.
    """
    s = summary.copy()
    s["level"] = s["level"].astype(str)
    order = _levels_present(s["level"])
    s = s.set_index("level").loc[order].reset_index()
    fig = go.Figure(go.Bar(
        x=s["level"].tolist(), y=s["mean"].to_numpy(dtype=float),
        marker_color=[level_color(lv) for lv in s["level"]],
        error_y=dict(type="data", array=s[error].to_numpy(dtype=float), visible=True) if error else None,
        customdata=s["n"].to_numpy() if "n" in s else None,
        hovertemplate="%{x}<br>mean %{y:.4g}<br>n %{customdata}<extra></extra>",
    ))
    fig.update_yaxes(title=_label(metric))
    return _layout(fig, title if title is not None else f"{_label(metric)} per hierarchy level (mean ± SEM)",
                   height=height, showlegend=False)


#: vertices per ROI a violin / box is drawn from (a seeded random subset above it)
MAX_DISTRIBUTION_POINTS = 4000


def plot_roi_distributions(vertices: pd.DataFrame, metric: str = "jne", *, rois=None, kind: str = "violin",
                           significant_only: bool = True, roi_order=None, title=None, height: int = 420,
                           max_points: int | None = MAX_DISTRIBUTION_POINTS, max_total: int | None = 60000,
                           seed: int = 0) -> go.Figure:
    """Distribution of a metric over each ROI's vertices (violin or box), coloured by level.

    Parameters
    ----------
    vertices : bundle vertex table (roi, level, significant, ``metric``), (V, ...)
    rois : ROIs to show (default all); order = ``roi_order`` if given, else level then median
    kind : "violin" or "box"
    max_points : draw each ROI from at most this many of its vertices (a seeded random subset
        without replacement, so the shape is an estimate; None: all). A whole-brain bundle has
        thousands of vertices per parcel, and plotly's kernel density and quartiles of a few
        thousand values are close to those of all of them, at a fraction of the bytes sent.
    max_total : with many ROIs, the cap per ROI is lowered to ``max_total / n_rois`` (but never
        below 200), so that the figure stays small (None: no total budget)
    seed : of the subsets

    Returns one trace per ROI (``trace.name`` = ROI, ``trace.y`` = its values, or the subset);
    ``layout.meta`` = {"max_points": the cap per ROI used, "subsampled": [ROIs drawn from a subset]}.
    """
    if kind not in ("violin", "box"):
        raise ValueError(f"kind must be 'violin' or 'box', got {kind!r}")
    v = vertices
    if significant_only:
        v = v[v["significant"].to_numpy(dtype=bool)]
    values = v[metric].to_numpy(dtype=float)
    v = v[np.isfinite(values)]
    roi_col = v["roi"].astype(str)
    if rois is not None:
        keep = [str(r) for r in rois]
        v, roi_col = v[roi_col.isin(keep).to_numpy()], roi_col[roi_col.isin(keep).to_numpy()]
    values = v[metric].to_numpy(dtype=float)
    codes, names = pd.factorize(roi_col, sort=False)
    names = [str(n) for n in names]
    grouped = pd.Series(np.arange(len(codes))).groupby(codes).indices if len(codes) else {}
    rows = {names[k]: np.asarray(ix) for k, ix in grouped.items()}
    levels = v["level"].astype(str).to_numpy()
    if roi_order is None:
        med = pd.DataFrame({"roi": names, "level": [levels[rows[n][0]] for n in names],
                            "median": [float(np.median(values[rows[n]])) for n in names]})
        med["_l"] = med["level"].map({lv: i for i, lv in enumerate(LEVEL_ORDER)}).fillna(9)
        roi_order = med.sort_values(["_l", "median"])["roi"].tolist()
    shown = [r for r in roi_order if str(r) in rows]
    if max_points is not None and max_total is not None and shown:
        max_points = int(min(max_points, max(200, max_total // len(shown))))
    rng = np.random.default_rng(seed)
    traces, subsampled = [], []
    for roi in roi_order:
        idx = rows.get(str(roi))
        if idx is None or not len(idx):
            continue
        lv = str(levels[idx[0]])
        if max_points is not None and len(idx) > max_points:
            idx = np.sort(rng.choice(idx, int(max_points), replace=False))
            subsampled.append(str(roi))
        common = dict(type=kind, y=values[idx], name=str(roi), legendgroup=lv, marker=dict(color=level_color(lv)),
                      line=dict(color=level_color(lv)))
        if kind == "violin":
            traces.append(dict(common, box=dict(visible=True), meanline=dict(visible=True), points=False,
                               spanmode="hard", hoverinfo="y+name"))
        else:
            traces.append(dict(common, boxmean=True, boxpoints=False))
    fig = go.Figure(dict(data=traces))  # one figure from trace dicts: ~6x faster than add_violin per ROI
    fig.update_yaxes(title=_label(metric))
    fig.update_xaxes(tickangle=-60 if len(fig.data) > 12 else 0)
    fig.update_layout(meta={"max_points": max_points, "subsampled": subsampled})
    return _layout(fig, title if title is not None else f"{_label(metric)} distribution per ROI",
                   height=height, showlegend=False)


def plot_test_matrix(tests: pd.DataFrame, *, value: str = "q", alpha: float = 0.05, groups=None, title=None,
                     cmap: str = "Blues_r", vmin: float = 0.0, vmax: float = 1.0, height: int = 380,
                     n_resamples: int | None = None) -> go.Figure:
    """Heatmap of pairwise one-sided tests (the paper's Fig. 7 matrix).

    Parameters
    ----------
    tests : DataFrame from :func:`jnecore.summaries.pairwise_tests`: a, b, p, q, ... where each
        row tests H1 "a > b".
    value : column shown ("q" by default, or "p")
    alpha : cells with value < alpha are marked with a star in their annotation
    groups : row/column order (default: order of first appearance in ``tests``)
    n_resamples : resamples behind resampled p values (the annotations state the floor,
        :func:`jnecore.format_p`); None for analytic tests

    Returns a single heatmap trace with ``y`` = a (row, "greater"), ``x`` = b and ``z[i][j]`` the
    value for (a = y[i], b = x[j]); the diagonal is NaN. Annotations give the values.
    """
    if groups is None:
        groups = list(dict.fromkeys([str(g) for g in tests["a"]] + [str(g) for g in tests["b"]]))
    groups = [str(g) for g in groups]
    idx = {g: i for i, g in enumerate(groups)}
    z = np.full((len(groups), len(groups)), np.nan)
    for a, b, val in zip(tests["a"].astype(str), tests["b"].astype(str), tests[value].to_numpy(dtype=float)):
        if a in idx and b in idx:
            z[idx[a], idx[b]] = val
    digits = 2 if len(groups) <= 6 else 1
    text = [["" if not np.isfinite(x) else format_p(x, n_resamples, digits=digits) + (" *" if x < alpha else "")
             for x in row] for row in z]
    fig = go.Figure(go.Heatmap(
        z=z, x=groups, y=groups, text=text, texttemplate="%{text}", textfont=dict(size=11 if len(groups) <= 6 else 9),
        colorscale=cmap, zmin=vmin, zmax=vmax,
        colorbar=dict(title=value), hoverongaps=False,
        hovertemplate="H1: %{y} > %{x}<br>" + value + " = %{z:.3g}<extra></extra>",
    ))
    fig.update_yaxes(title="a (H1: a > b)", autorange="reversed")
    fig.update_xaxes(title="b", side="bottom")
    t = title if title is not None else f"One-sided tests, {value} (BH-FDR); * {value} < {alpha:g}"
    return _layout(fig, t, height=height)


def _pearson(x, y):
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.std(x[ok]) == 0 or np.std(y[ok]) == 0:
        return np.nan, np.nan, int(ok.sum())
    r, p = stats.pearsonr(x[ok], y[ok])
    return float(r), float(p), int(ok.sum())


def r2_correlation_table(vertices: pd.DataFrame, *, significant_only: bool = True) -> pd.DataFrame:
    """Pearson r between linear and nonlinear R^2 across each ROI's vertices (paper Fig. 5).

    Vectorised over ROIs (group sums; the two-sided p from Student's t with n - 2 degrees of
    freedom, as :func:`scipy.stats.pearsonr`); r is NaN with fewer than 3 finite pairs or no
    spread. Returns columns roi, level, n, pearson_r, p, mean_r2_linear, mean_r2_nonlinear, in
    hierarchy order.
    """
    v = vertices[vertices["significant"].to_numpy(dtype=bool)] if significant_only else vertices
    cols = ["roi", "level", "n", "pearson_r", "p", "mean_r2_linear", "mean_r2_nonlinear"]
    x = v["r2_linear"].to_numpy(dtype=float)
    y = v["r2_nonlinear"].to_numpy(dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    rc, rnames = pd.factorize(v["roi"].astype(str), sort=False)
    lc, lnames = pd.factorize(v["level"].astype(str), sort=False)
    pair, codes = np.unique(rc.astype(np.int64) * max(len(lnames), 1) + lc, return_inverse=True)
    uniq = [(str(rnames[c // max(len(lnames), 1)]), str(lnames[c % max(len(lnames), 1)])) for c in pair]
    if not len(uniq):
        return pd.DataFrame(columns=cols)
    g = codes[ok]
    k = len(uniq)
    n = np.bincount(g, minlength=k).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = np.bincount(g, x[ok], k) / n
        my = np.bincount(g, y[ok], k) / n
        dx, dy = x[ok] - mx[g], y[ok] - my[g]
        sxx, syy, sxy = np.bincount(g, dx * dx, k), np.bincount(g, dy * dy, k), np.bincount(g, dx * dy, k)
        r = np.clip(sxy / np.sqrt(sxx * syy), -1.0, 1.0)
        # no spread: deviations at rounding level of the mean (a constant column) count as none
        valid = (n >= 3) & (sxx > n * (1e-10 * np.abs(mx)) ** 2) & (syy > n * (1e-10 * np.abs(my)) ** 2) & \
            (sxx > 0) & (syy > 0)
        r = np.where(valid, r, np.nan)
        t = r * np.sqrt((n - 2) / np.maximum(1 - r * r, 0))
        p = np.where(valid, 2 * stats.t.sf(np.abs(t), np.maximum(n - 2, 1)), np.nan)
    out = pd.DataFrame({"roi": [a for a, _ in uniq], "level": [b for _, b in uniq], "n": n.astype(int),
                        "pearson_r": r, "p": p, "mean_r2_linear": np.where(n > 0, mx, np.nan),
                        "mean_r2_nonlinear": np.where(n > 0, my, np.nan)})
    out["_l"] = out["level"].map({lv: i for i, lv in enumerate(LEVEL_ORDER)}).fillna(9)
    return out.sort_values(["_l", "roi"]).drop(columns="_l").reset_index(drop=True)[cols]


def plot_r2_scatter(vertices: pd.DataFrame, *, rois=None, significant_only: bool = True, max_points: int = 20000,
                    title=None, height: int = 460, seed: int = 0) -> go.Figure:
    """Linear vs nonlinear test R^2 per vertex, coloured by level, with the identity line.

    Parameters
    ----------
    vertices : bundle vertex table (r2_linear, r2_nonlinear, roi, level, significant)
    rois : restrict to these ROIs (default all)
    max_points : plot at most this many points (a seeded random subset); r uses all of them

    Returns a figure whose title holds Pearson r over all selected vertices (computed as
    :func:`scipy.stats.pearsonr`); one scatter trace per level plus the identity line (last trace,
    name "y = x").
    """
    v = vertices[vertices["significant"].astype(bool)] if significant_only else vertices
    if rois is not None:
        v = v[v["roi"].astype(str).isin([str(r) for r in rois])]
    v = v[np.isfinite(v["r2_linear"].to_numpy(dtype=float)) & np.isfinite(v["r2_nonlinear"].to_numpy(dtype=float))]
    r, p, n = _pearson(v["r2_linear"], v["r2_nonlinear"])
    shown = v
    if len(v) > max_points:
        shown = v.sample(max_points, random_state=seed)
    fig = go.Figure()
    for lv in _levels_present(shown["level"]):
        sub = shown[shown["level"].astype(str) == lv]
        fig.add_scattergl(
            x=sub["r2_linear"].to_numpy(dtype=float), y=sub["r2_nonlinear"].to_numpy(dtype=float), mode="markers",
            name=lv, marker=dict(color=level_color(lv), size=4, opacity=0.6),
            customdata=np.stack([sub["vertex"].to_numpy(), sub["roi"].astype(str).to_numpy()], -1)
            if "vertex" in sub else sub["roi"].astype(str).to_numpy()[:, None],
            hovertemplate="vertex %{customdata[0]} (%{customdata[1]})<br>linear %{x:.3f}<br>nonlinear %{y:.3f}<extra>"
            + lv + "</extra>",
        )
    lo = float(np.nanmin([v["r2_linear"].min(), v["r2_nonlinear"].min(), 0.0])) if n else 0.0
    hi = float(np.nanmax([v["r2_linear"].max(), v["r2_nonlinear"].max(), 0.01])) if n else 1.0
    fig.add_scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="y = x", line=dict(color="black", dash="dash", width=1),
                    hoverinfo="skip")
    fig.update_xaxes(title="R² linear encoder")
    fig.update_yaxes(title="R² nonlinear encoder", scaleanchor="x", scaleratio=1)
    what = "" if rois is None else (f" ({', '.join(map(str, rois))})" if len(rois) <= 4 else f" ({len(rois)} ROIs)")
    default = f"Linear vs nonlinear R²{what}: Pearson r = {r:.3f} (n = {n})" if np.isfinite(r) else \
        f"Linear vs nonlinear R²{what}: r not defined (n = {n})"
    return _layout(fig, title if title is not None else default, height=height, legend_title_text="level")
