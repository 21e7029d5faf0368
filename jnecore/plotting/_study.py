"""Study figures: values across layers (mean ± SEM over subjects), peak layers, subject-pair
correlations, and the peak-layer surface map.

Every function takes tables from :mod:`jnecore.study` and returns a
:class:`plotly.graph_objects.Figure`; nothing here reads files or needs Streamlit. The surface map
goes through :func:`jnecore.plotting.plot_surface_map` with a stepped colour scale, one colour per
layer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.colors as pcolors
import plotly.graph_objects as go

from ._roi import _label, _layout, level_color

__all__ = ["group_line_colors", "layer_colorscale", "plot_layer_lines", "plot_r2_gain", "plot_peak_layers",
           "plot_subject_correlations", "plot_peak_layer_map"]

_PALETTE = pcolors.qualitative.Dark2 + pcolors.qualitative.Set1 + pcolors.qualitative.Set2 + pcolors.qualitative.Pastel1


def group_line_colors(groups, by: str = "roi") -> dict:
    """A colour per line: the level colours for levels, a qualitative palette (in the given order,
    cycled) for ROIs."""
    groups = [str(g) for g in dict.fromkeys(groups)]
    if by == "level":
        return {g: level_color(g) for g in groups}
    return {g: _PALETTE[i % len(_PALETTE)] for i, g in enumerate(groups)}


def _rgba(color: str, alpha: float) -> str:
    r, g, b = pcolors.hex_to_rgb(color) if color.startswith("#") else pcolors.unlabel_rgb(color)
    return f"rgba({int(r)},{int(g)},{int(b)},{alpha})"


_BY_LABEL = {"roi": "ROI", "level": "hierarchy level"}


def _layer_axis(fig, layers):
    fig.update_xaxes(title="layer (shallow → deep)", categoryorder="array", categoryarray=list(layers),
                     type="category")


def plot_layer_lines(group: pd.DataFrame, *, by: str = "roi", metric: str = "jne", groups=None, layers=None,
                     subjects: pd.DataFrame | None = None, band: str = "sem", title=None,
                     height: int = 440) -> go.Figure:
    """One line per ROI (or level) across layers: the mean over subjects with a ± SEM band.

    Parameters
    ----------
    group : :func:`jnecore.study.group_layer_table` of one setting (layer, layer_index, ``by``,
        mean, sem, n_subjects)
    by : "roi" or "level"
    groups : which ROIs / levels and their order (default all, in the table's order)
    layers : x order (default by layer_index)
    subjects : :func:`jnecore.study.subject_layer_table` of the same setting: each subject drawn as
        a thin dotted line of its group's colour (legend group = the ROI)
    band : "sem", "sd" or None

    Returns
    -------
    Figure. Per group: a "band" trace (closed polygon mean ± band, ``name`` "<group> ± SEM",
    absent without a band or with one subject), the mean line (``name`` = the group, ``y`` = the
    means in layer order), then optional subject lines (``name`` "<group> · <subject>").
    """
    if band not in ("sem", "sd", None):
        raise ValueError(f"band must be 'sem', 'sd' or None, got {band!r}")
    g = group.sort_values("layer_index", kind="stable")
    if layers is None:
        layers = list(dict.fromkeys(g["layer"].astype(str)))
    groups = [str(x) for x in (groups if groups is not None else dict.fromkeys(g[by].astype(str)))]
    colors = group_line_colors(groups, by)
    fig = go.Figure()
    for name in groups:
        sub = g[g[by].astype(str) == name]
        if sub.empty:
            continue
        x = sub["layer"].astype(str).tolist()
        y = sub["mean"].to_numpy(dtype=float)
        col = colors[name]
        if band and len(sub) and np.isfinite(sub[band].to_numpy(dtype=float)).any():
            e = np.nan_to_num(sub[band].to_numpy(dtype=float))
            fig.add_scatter(x=x + x[::-1], y=np.concatenate([y + e, (y - e)[::-1]]), fill="toself", mode="lines",
                            fillcolor=_rgba(col, 0.18), line=dict(width=0), hoverinfo="skip", showlegend=False,
                            legendgroup=name, name=f"{name} ± {band.upper()}")
        n = sub["n_subjects"].to_numpy() if "n_subjects" in sub else np.full(len(sub), np.nan)
        err = sub[band].to_numpy(dtype=float) if band else np.full(len(sub), np.nan)
        fig.add_scatter(x=x, y=y, mode="lines+markers", name=name, legendgroup=name, line=dict(color=col, width=2.5),
                        marker=dict(size=7), customdata=np.stack([n, err], -1),
                        hovertemplate=name + "<br>%{x}: mean %{y:.4g}<br>" + (band or "") +
                        " %{customdata[1]:.3g}<br>%{customdata[0]} subjects<extra></extra>")
    if subjects is not None and len(subjects):
        s = subjects.sort_values("layer_index", kind="stable")
        for name in groups:
            for subj, ss in s[s[by].astype(str) == name].groupby("subject", sort=True):
                fig.add_scatter(x=ss["layer"].astype(str).tolist(), y=ss["mean"].to_numpy(dtype=float), mode="lines",
                                name=f"{name} · {subj}", legendgroup=name, showlegend=False,
                                line=dict(color=colors[name], width=1, dash="dot"), opacity=0.7,
                                hovertemplate=f"{name}, subject {subj}<br>" + "%{x}: %{y:.4g}<extra></extra>")
    _layer_axis(fig, layers)
    fig.update_yaxes(title=_label(metric))
    what = {"sem": "mean ± SEM across subjects", "sd": "mean ± SD across subjects", None: "mean across subjects"}[band]
    return _layout(fig, title if title is not None else f"{_label(metric)} per {_BY_LABEL.get(by, by)} across layers ({what})",
                   height=height, legend_title_text=_BY_LABEL.get(by, by), hovermode="closest")


def plot_r2_gain(group: pd.DataFrame, *, by: str = "level", **kw) -> go.Figure:
    """:func:`plot_layer_lines` of the R² gain (r2_nonlinear - r2_linear) with a dashed zero line."""
    kw.setdefault("title", f"R² gain of the nonlinear over the linear encoder per {_BY_LABEL.get(by, by)} (mean ± SEM across subjects)")
    fig = plot_layer_lines(group, by=by, metric="r2_gain", **kw)
    fig.update_yaxes(title="R² nonlinear − linear")
    fig.add_hline(y=0, line=dict(color="black", dash="dash", width=1))
    return fig


def plot_peak_layers(peaks: pd.DataFrame, layers, *, by: str = "roi", groups=None, title=None,
                     height: int = 420) -> go.Figure:
    """Per ROI (or level), the layer where the value peaks: a bar for the mean over subjects
    (subject "mean") and a marker per subject.

    Parameters
    ----------
    peaks : :func:`jnecore.study.peak_layers` rows of one setting (subjects and/or "mean")
    layers : layer names in depth order (the y axis)
    groups : x order (default the table's order)

    Returns
    -------
    Figure: a bar trace "mean over subjects" (from ``base`` -0.5 to the peak_layer_index of the
    mean: ``y`` = index + 0.5; ``text`` = layer names), then one marker trace per subject (``name`` = subject). The y axis is labelled
    with the layer names.
    """
    layers = [str(x) for x in layers]
    groups = [str(x) for x in (groups if groups is not None else dict.fromkeys(peaks[by].astype(str)))]
    fig = go.Figure()
    mean = peaks[peaks["subject"].astype(str) == "mean"]
    if len(mean):
        m = mean.set_index(mean[by].astype(str)).reindex(groups)
        # bars rise from below the shallowest layer, so a peak at layer 0 is visible too
        fig.add_bar(x=groups, y=m["peak_layer_index"].to_numpy(dtype=float) + 0.5, base=-0.5, name="mean over subjects",
                    text=m["peak_layer"].fillna("").tolist(), textposition="outside",
                    marker_color=[level_color(lv) for lv in _levels_of(peaks, groups, by)], opacity=0.75,
                    hovertemplate="%{x}: peak at %{text}<extra>mean over subjects</extra>")
    subs = peaks[peaks["subject"].astype(str) != "mean"]
    for i, (subj, s) in enumerate(subs.groupby("subject", sort=True)):
        s = s.set_index(s[by].astype(str)).reindex(groups)
        fig.add_scatter(x=groups, y=s["peak_layer_index"].to_numpy(dtype=float), mode="markers", name=str(subj),
                        offsetgroup=str(subj),
                        marker=dict(size=10, symbol=["circle", "diamond", "square", "triangle-up", "x", "cross"][i % 6],
                                    color=_PALETTE[i % len(_PALETTE)], line=dict(color="black", width=0.5)),
                        text=s["peak_layer"].fillna("").tolist(),
                        hovertemplate="%{x}: peak at %{text}<extra>subject " + str(subj) + "</extra>")
    fig.update_yaxes(title="peak layer", tickvals=list(range(len(layers))), ticktext=layers,
                     range=[-0.6, len(layers) - 0.4 + 0.3])
    fig.update_xaxes(categoryorder="array", categoryarray=groups, tickangle=-60 if len(groups) > 12 else 0)
    # subjects side by side within each ROI (scattermode "group"), so equal peaks do not hide each other
    return _layout(fig, title if title is not None else f"Layer of peak nonlinearity per {_BY_LABEL.get(by, by)}", height=height,
                   legend_title_text="subject", barmode="overlay", scattermode="group", scattergap=0.4)


def _levels_of(peaks, groups, by):
    if by == "level":
        return groups
    if "level" in peaks:
        lv = dict(zip(peaks[by].astype(str), peaks["level"].astype(str)))
        return [lv.get(g, "other") for g in groups]
    return ["other"] * len(groups)


def plot_subject_correlations(matrix: pd.DataFrame, *, title=None, cmap: str = "RdBu_r", height: int = 400,
                              n: int | None = None) -> go.Figure:
    """Heatmap of the subject x subject correlation matrix (:func:`jnecore.study.correlation_matrix`).

    Returns one heatmap trace (``z`` the matrix, rows = columns = subjects), colour range [-1, 1],
    each cell annotated with r.
    """
    z = matrix.to_numpy(dtype=float)
    subjects = [str(s) for s in matrix.index]
    text = [["" if not np.isfinite(v) else f"{v:.3f}" for v in row] for row in z]
    fig = go.Figure(go.Heatmap(z=z, x=subjects, y=subjects, text=text, texttemplate="%{text}", colorscale=cmap,
                               zmin=-1, zmax=1, colorbar=dict(title="r"), hoverongaps=False,
                               hovertemplate="%{y} vs %{x}: r = %{z:.3f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", title="subject")
    fig.update_xaxes(title="subject")
    what = f" (n = {n} paired values)" if n else ""
    return _layout(fig, title if title is not None else f"Correlation between subjects{what}", height=height)


def layer_colorscale(n_layers: int, cmap: str = "Viridis") -> list:
    """A stepped colour scale with one flat colour per layer on [0, 1] (for vmin=-0.5,
    vmax=n_layers-0.5): list of [pos, colour], (2 * n_layers, 2)."""
    n = max(int(n_layers), 1)
    cols = pcolors.sample_colorscale(cmap, [i / (n - 1) for i in range(n)] if n > 1 else [0.5])
    out = []
    for i, c in enumerate(cols):
        out += [[i / n + (1e-6 if i else 0.0), c], [(i + 1) / n, c]]  # plotly wants strictly increasing stops
    return out


def plot_peak_layer_map(peaks: pd.DataFrame, layers, *, space: str = "fsLR32k", cmap: str = "Viridis",
                        title=None, **kw) -> go.Figure:
    """The per-vertex peak layer (:func:`jnecore.study.vertex_peak_layer`) on the cortical surface.

    Drawn by :func:`jnecore.plotting.plot_surface_map` (all its keywords pass through ``kw``:
    ``surf_mesh``, ``hemi``, ``view``, ``highlight_roi`` ...) with one flat colour per layer; the
    colour bar is labelled with the layer names (``tickvals`` 0 .. n_layers - 1).
    """
    from ._surface import plot_surface_map

    layers = [str(x) for x in layers]
    n = len(layers)
    hover = pd.DataFrame({"roi": peaks["roi"].astype(str).to_numpy(), "level": peaks["level"].astype(str).to_numpy(),
                          "peak layer": peaks["peak_layer"].astype(str).to_numpy()})
    fig = plot_surface_map(peaks["peak_layer_index"].to_numpy(dtype=float),
                           vertices=peaks["vertex"].to_numpy(dtype=np.int64), space=space,
                           cmap=layer_colorscale(n, cmap), vmin=-0.5, vmax=n - 0.5, value_name="peak layer",
                           hover=hover, title=title, **kw)
    fig.update_traces(selector=dict(name="colorbar"),
                      marker_colorbar=dict(tickvals=list(range(n)), ticktext=layers, tickmode="array"))
    return fig
