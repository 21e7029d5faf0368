"""Stimulus-selectivity (JNE-SS) figures: ROI x group MoM heatmap, per-ROI group bars, top stimuli.

Inputs are the long ROI x group table of :func:`jnecore.summaries.roi_group_table` (columns roi,
group, mom, sem, n_vertices, n_stimuli, mom_norm) or the tables of
:func:`jnecore.summaries.top_stimuli` / :func:`jnecore.summaries.group_drivers`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.colors as pcolors

from ._roi import _layout, level_color

__all__ = ["SCALES", "group_colors", "roi_group_matrix", "plot_roi_group_heatmap", "plot_roi_group_bars",
           "plot_top_stimuli", "plot_group_drivers", "plot_margin_comparison"]


def group_colors(groups) -> dict:
    """A stable colour per stimulus group (sorted names -> a qualitative palette, cycled)."""
    names = sorted({str(g) for g in groups})
    pal = pcolors.qualitative.Set2 + pcolors.qualitative.Dark2 + pcolors.qualitative.Pastel1 + pcolors.qualitative.Set1
    return {g: pal[i % len(pal)] for i, g in enumerate(names)}


#: how :func:`roi_group_matrix` scales the MoM table
SCALES = ("none", "roi", "group")
_SCALE_LABELS = {"none": "MoM (mean JNE-SS)", "roi": "relative MoM (min-max per ROI)", "group": "MoM / mean over ROIs"}


def _scale_of(normalised, scale):
    if scale is None:
        scale = "roi" if normalised else "none"
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    return scale


def roi_group_matrix(table: pd.DataFrame, *, normalised: bool = False, scale: str | None = None, roi_order=None,
                     group_order=None) -> pd.DataFrame:
    """The ROI x group matrix (rows ROIs, columns groups) of MoM, optionally rescaled.

    scale : "none" (MoM), "roi" (min-max normalised within each ROI across groups, the paper's
        Fig. 8c: which group drives this ROI most), or "group" (each group's MoM divided by its
        mean over the ROIs shown: where does this group drive nonlinearity more than elsewhere,
        even when one group dominates every ROI). ``normalised=True`` is ``scale="roi"``.
        "roi" uses the table's ``mom_norm`` column when present.
    """
    scale = _scale_of(normalised, scale)
    t = table.copy()
    t["roi"] = t["roi"].astype(str)
    t["group"] = t["group"].astype(str)
    m = t.pivot_table(index="roi", columns="group", values="mom", aggfunc="mean", sort=False)
    rows = [str(r) for r in roi_order if str(r) in m.index] if roi_order is not None else sorted(m.index)
    cols = [str(g) for g in group_order if str(g) in m.columns] if group_order is not None else sorted(m.columns)
    m = m.loc[rows, cols]
    if scale == "roi":
        if "mom_norm" in t:
            m = t.pivot_table(index="roi", columns="group", values="mom_norm", aggfunc="mean", sort=False).loc[rows, cols]
        else:
            lo = m.min(axis=1)
            span = (m.max(axis=1) - lo).replace(0, np.nan)
            m = m.sub(lo, axis=0).div(span, axis=0).fillna(0.0)
    elif scale == "group":
        m = m.div(m.mean(axis=0).replace(0, np.nan), axis=1)
    return m


def plot_roi_group_heatmap(table: pd.DataFrame, *, normalised: bool = False, scale: str | None = None, roi_order=None,
                           group_order=None, highlight_roi=None, title=None, cmap: str | None = None, vmin=None,
                           vmax=None, annotate: bool | None = None, height: int | None = None) -> go.Figure:
    """ROI x group heatmap of MoM (mean over a ROI's vertices of the mean JNE-SS over a group).

    Parameters
    ----------
    table : long table from :func:`jnecore.summaries.roi_group_table`
    normalised : min-max normalise each ROI (row) across groups (the paper's Fig. 8c); same as
        ``scale="roi"``. Off by default: per-ROI min-max makes one group 1.00 in every ROI
        whatever its size, so the default (``scale="none"``) is the absolute MoM on one colour
        scale shared by every ROI.
    scale : "none", "roi" or "group" (see :func:`roi_group_matrix`); overrides ``normalised``
    roi_order, group_order : row / column order (default sorted)
    highlight_roi : its row label is drawn in bold
    cmap : colour scale (default Viridis; RdBu_r centred on 1 for ``scale="group"``)
    annotate : write the values in the cells (default: when the matrix has <= 400 cells)

    Returns one heatmap trace: ``y`` = ROIs, ``x`` = groups, ``z`` = the matrix
    (:func:`roi_group_matrix`).
    """
    scale = _scale_of(normalised, scale)
    m = roi_group_matrix(table, scale=scale, roi_order=roi_order, group_order=group_order)
    z = m.to_numpy(dtype=float)
    if annotate is None:
        annotate = z.size <= 400
    if scale == "group" and z.size and np.isfinite(z).any():
        dev = float(np.nanmax(np.abs(z - 1.0))) or 1.0
        vmin = 1.0 - dev if vmin is None else vmin
        vmax = 1.0 + dev if vmax is None else vmax
        cmap = cmap or "RdBu_r"
    cmap = cmap or "Viridis"
    fmt = (lambda x: f"{x:.2f}") if scale != "none" else (lambda x: f"{x:.2g}")
    ylabels = [f"<b>{r}</b>" if highlight_roi is not None and r == str(highlight_roi) else r for r in m.index]
    label = _SCALE_LABELS[scale]
    fig = go.Figure(go.Heatmap(
        z=z, x=list(m.columns), y=ylabels, colorscale=cmap, zmin=vmin, zmax=vmax,
        text=[["" if not np.isfinite(x) else fmt(x) for x in row] for row in z] if z.size else None,
        texttemplate="%{text}" if annotate else None, textfont=dict(size=9),
        colorbar=dict(title=dict(text=label.replace(" (", "<br>(").replace(" / ", "<br>/ "))), hoverongaps=False,
        hovertemplate="%{y} · %{x}<br>" + label + " %{z:.3g}<extra></extra>",
    ))
    fig.update_yaxes(autorange="reversed", title="ROI")
    fig.update_xaxes(title="stimulus group", tickangle=-45 if len(m.columns) > 6 else 0)
    default = {"none": "JNE-SS by ROI and stimulus group: absolute MoM (one colour scale for all ROIs)",
               "roi": "JNE-SS by ROI and stimulus group: relative MoM (min-max per ROI: 1 = the ROI's top group)",
               "group": "JNE-SS by ROI and stimulus group: MoM relative to the mean over ROIs (1 = average)"}[scale]
    return _layout(fig, title if title is not None else default,
                   height=height or max(320, 60 + 22 * len(m.index)))


def plot_roi_group_bars(table: pd.DataFrame, roi, *, normalised: bool = False, sort: bool = True, ci=None,
                        title=None, height: int = 380) -> go.Figure:
    """MoM of every stimulus group for one ROI (bars coloured by group), with error bars.

    Parameters
    ----------
    table : long table from :func:`jnecore.summaries.roi_group_table`
    roi : the ROI drawn
    normalised : draw ``mom_norm`` (no error bars)
    ci : DataFrame from :func:`jnecore.summaries.roi_group_ci` for this ROI (group, mom,
        ci_low, ci_high, n_boot): the error bars are its bootstrap CIs over stimuli. Without
        it, ± SEM over the ROI's vertices.

    Returns one bar trace: ``x`` = groups (sorted by MoM, descending, when ``sort``), ``y`` = MoM
    (or ``mom_norm``), ``error_y`` = the CI (``array`` = ci_high - mom, ``arrayminus`` =
    mom - ci_low) or the SEM (raw MoM only).
    """
    sub = table[table["roi"].astype(str) == str(roi)].copy()
    col = "mom_norm" if normalised else "mom"
    if sort:
        sub = sub.sort_values(col, ascending=False)
    else:
        sub = sub.sort_values("group")
    colors = group_colors(table["group"])
    y = sub[col].to_numpy(dtype=float)
    error, what = None, "mean ± SEM over vertices"
    if not normalised and ci is not None and len(ci):
        c = ci.assign(group=ci["group"].astype(str)).set_index("group").reindex(sub["group"].astype(str))
        mom = c["mom"].to_numpy(dtype=float)
        y = mom
        error = dict(type="data", symmetric=False, array=c["ci_high"].to_numpy(dtype=float) - mom,
                     arrayminus=mom - c["ci_low"].to_numpy(dtype=float), visible=True)
        boot = int(ci["n_boot"].iloc[0]) if "n_boot" in ci else None
        mass = f"{100 * float(ci['ci'].iloc[0]):g}% " if "ci" in ci else ""
        what = f"mean, {mass}bootstrap CI over stimuli"
        if boot:
            what += f"<br><sup>{boot} resamples of each group's stimuli, the ROI's vertices fixed</sup>"
    elif not normalised and "sem" in sub:
        error = dict(type="data", array=sub["sem"].to_numpy(dtype=float), visible=True)
    elif normalised:
        what = "min-max per ROI"
    fig = go.Figure(go.Bar(
        x=sub["group"].astype(str).tolist(), y=y,
        marker_color=[colors[str(g)] for g in sub["group"]], error_y=error,
        customdata=sub["n_stimuli"].to_numpy() if "n_stimuli" in sub else None,
        hovertemplate="%{x}<br>MoM %{y:.3g}<br>%{customdata} stimuli<extra></extra>",
    ))
    fig.update_yaxes(title="MoM (relative, min-max per ROI)" if normalised else "MoM (mean JNE-SS)")
    fig.update_xaxes(title="stimulus group", categoryorder="array", categoryarray=sub["group"].astype(str).tolist())
    head = f"{roi}: JNE-SS per stimulus group"
    default = f"{head} ({what})" if "<br>" not in what else f"{head} ({what.replace('<br>', ')<br>', 1)}"
    return _layout(fig, title if title is not None else default,
                   height=height, showlegend=False)


def plot_top_stimuli(top: pd.DataFrame, *, group_column: str = "category", roi=None, all_groups=None, title=None,
                     height: int | None = None) -> go.Figure:
    """Horizontal bars of the top stimuli's scores (from :func:`jnecore.summaries.top_stimuli`).

    One bar trace per group (legend = groups); rank 1 at the top. ``all_groups`` (every group
    name of the bundle) keeps the colours the same as in :func:`plot_roi_group_bars`.
    """
    t = top.copy()
    t["stimulus"] = t["stimulus"].astype(str)
    colors = group_colors(all_groups if all_groups is not None else t[group_column]) if len(t) else {}
    fig = go.Figure()
    for g in sorted(t[group_column].astype(str).unique()):
        sub = t[t[group_column].astype(str) == g]
        fig.add_bar(y=sub["stimulus"].tolist(), x=sub["score"].to_numpy(dtype=float), orientation="h", name=g,
                    marker_color=colors[g], customdata=sub["rank"].to_numpy(),
                    hovertemplate="#%{customdata} %{y}<br>JNE-SS %{x:.3g}<extra>" + g + "</extra>")
    fig.update_yaxes(categoryorder="array", categoryarray=t["stimulus"].tolist(), autorange="reversed")
    fig.update_xaxes(title="mean JNE-SS over the ROI's vertices")
    where = f" in {roi}" if roi is not None else ""
    return _layout(fig, title if title is not None else f"Top {len(t)} stimuli by JNE-SS{where}",
                   height=height or max(300, 80 + 24 * len(t)), legend_title_text=group_column,
                   barmode="overlay")


def plot_group_drivers(drivers: pd.DataFrame, group, *, normalised: bool = False, levels=None, top: int | None = None,
                       title=None, height: int = 400) -> go.Figure:
    """ROIs ordered by how strongly a stimulus group drives their JNE-SS (from
    :func:`jnecore.summaries.group_drivers`), bars coloured by hierarchy level.

    levels : {roi: level} mapping for the colours (grey when missing)
    """
    col = "mom_norm" if normalised else "mom"
    d = drivers.sort_values(col, ascending=False)
    if top is not None:
        d = d.head(int(top))
    levels = levels or {}
    lv = [str(levels.get(str(r), "other")) for r in d["roi"]]
    fig = go.Figure(go.Bar(
        x=d["roi"].astype(str).tolist(), y=d[col].to_numpy(dtype=float), marker_color=[level_color(x) for x in lv],
        error_y=dict(type="data", array=d["sem"].to_numpy(dtype=float), visible=True)
        if not normalised and "sem" in d else None,
        customdata=np.array(lv)[:, None] if len(lv) else None,
        hovertemplate="%{x} (%{customdata[0]})<br>" + col + " %{y:.3g}<extra></extra>",
    ))
    fig.update_xaxes(categoryorder="array", categoryarray=d["roi"].astype(str).tolist(),
                     tickangle=-60 if len(d) > 12 else 0)
    fig.update_yaxes(title="MoM (normalised per ROI)" if normalised else "MoM (mean JNE-SS)")
    return _layout(fig, title if title is not None else f"Which ROIs does '{group}' drive most?", height=height,
                   showlegend=False)



def plot_margin_comparison(margins: dict, *, roi_order=None, title=None, height: int = 380) -> go.Figure:
    """Per ROI, how clearly its top stimulus group leads, in each of several fits (grouped bars).

    Parameters
    ----------
    margins : {label: DataFrame}
        Per fit (e.g. "shared trunk", "one trunk per ROI"), the table of
        :func:`jnecore.summaries.selectivity_margins` (columns roi, top, runner_up, margin).
    roi_order : ROIs to show and their order (default: those of the first table, sorted)

    Returns one bar trace per fit (``name`` = label): ``x`` = ROIs, ``y`` = margin (top MoM /
    runner-up MoM; 1 = no preference), ``text`` = the top group.
    """
    if roi_order is None:
        first = next(iter(margins.values()), pd.DataFrame(columns=["roi"]))
        roi_order = sorted(first["roi"].astype(str))
    rois = [str(r) for r in roi_order]
    fig = go.Figure()
    for label, m in margins.items():
        t = m.assign(roi=m["roi"].astype(str)).set_index("roi").reindex(rois)
        fig.add_bar(x=rois, y=t["margin"].to_numpy(dtype=float), name=str(label),
                    text=t["top"].fillna("").astype(str).tolist(), textposition="outside",
                    customdata=t["runner_up"].fillna("").astype(str).to_numpy()[:, None] if rois else None,
                    hovertemplate="%{x}: top %{text}, ×%{y:.2f} over %{customdata[0]}<extra>" + str(label)
                    + "</extra>")
    fig.add_hline(y=1.0, line_dash="dot", line_color="grey")
    fig.update_yaxes(title="top MoM / runner-up MoM")
    fig.update_xaxes(title="ROI", categoryorder="array", categoryarray=rois, tickangle=-60 if len(rois) > 12 else 0)
    default = "Category preference per ROI: the top group's lead over the runner-up"
    return _layout(fig, title if title is not None else default, height=height, barmode="group",
                   legend_title_text="fit")
