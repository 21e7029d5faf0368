"""Hover of :func:`~jnecore.plotting.plot_surface_map` figures.

``customdata`` is an (n_drawn, 2) float32 array of [vertex index in the concatenated L+R mesh, raw
value] (a click event returns it too; NaN = no data; values below ``threshold`` keep their value).
``text`` is "ROI (level)" on every drawn vertex (the same whatever is shown, so a viewer can keep
it per mesh), plus the ``hover`` columns on shown vertices; :data:`HOVERTEMPLATE` joins them. No
hover ever prints "nan": a vertex without a value says "no data".
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ..atlas import roi_level

#: hover template of the surface trace (``%s``: value_name); see :func:`hover_label`.
HOVERTEMPLATE = "vertex %{customdata[0]:d}<br>%{text}<br>%s: %{customdata[1]:.4g}<extra></extra>"
#: hover template of the background ("surface") trace: its coloured vertices are hovered on the
#: "data" trace above it, so here the value is never shown (no "nan"): no data or below threshold.
BG_HOVERTEMPLATE = "vertex %{customdata[0]:d}<br>%{text}<br>%s: no data shown<extra></extra>"


def _fmt(v):
    if isinstance(v, (float, np.floating)):
        return "no data" if not np.isfinite(v) else f"{v:.4g}"
    return str(v)


def hover_customdata(data, keep) -> np.ndarray:
    """[vertex index in the L+R mesh, value] of each drawn vertex.

    Parameters
    ----------
    data : SurfaceData
    keep : int array, (n_drawn,)
        Mesh vertex of each drawn vertex.

    Returns
    -------
    customdata : ndarray of float32, (n_drawn, 2)
    """
    return np.stack([keep + data.offset, data.values[keep]], axis=1).astype(np.float32)


def hover_text(data, shown, keep) -> np.ndarray:
    """Hover text of each drawn vertex: "ROI (level)", + the hover columns if shown.

    Parameters
    ----------
    data : SurfaceData
        ``hover`` columns "roi" and "level" replace the atlas ones; other columns are appended
        as "<br>name: value".
    shown : ndarray of bool, (n_mesh,)
    keep : int array, (n_drawn,)

    Returns
    -------
    text : ndarray of str, (n_drawn,)
    """
    hover_df, row_of = data.hover, data.row_of
    roi_col = level_col = None
    extra_cols = []
    if hover_df is not None:
        roi_col = hover_df["roi"].astype(str).to_numpy() if "roi" in hover_df else None
        level_col = hover_df["level"].astype(str).to_numpy() if "level" in hover_df else None
        extra_cols = [c for c in hover_df.columns if c not in ("roi", "level", "vertex")]
    vert_roi = data.labels if data.labels is not None else np.full(data.mesh.n_vertices, "", dtype=object)
    shown_k = shown[keep]
    rows = row_of[keep]
    has = rows >= 0
    rois = np.asarray(vert_roi[keep], dtype=object).copy()
    if roi_col is not None:
        rois[has] = roi_col[rows[has]]
    levels = np.asarray(roi_level(rois) if len(rois) else np.array([], dtype=str), dtype=object)
    if level_col is not None:
        levels[has] = level_col[rows[has]]
    rois = np.asarray(rois, dtype=str)
    text = np.where(rois != "", np.char.add(np.char.add(rois, " ("), np.char.add(levels.astype(str), ")")), "")
    for c in extra_cols:
        col = np.array([f"<br>{c}: {_fmt(x)}" for x in hover_df[c].to_numpy()], dtype=str)
        text = np.char.add(text, np.where(has & shown_k, col[np.maximum(rows, 0)], ""))
    return np.asarray(text, dtype=str)


def hover_label(fig: go.Figure, vertex: int) -> str:
    """The hover text of one vertex of a :func:`plot_surface_map` figure, rendered in Python.

    Parameters
    ----------
    fig : go.Figure
        A figure from :func:`plot_surface_map`.
    vertex : int
        Index in the concatenated L+R mesh of the figure's space.

    Returns
    -------
    label : str
        E.g. "vertex 1234<br>V1 (primary)<br>value: 0.5" ("NaN" value = no data).

    Raises
    ------
    KeyError
        If the vertex is not drawn.
    """
    surf = next(t for t in fig.data if t.name == "surface")
    custom = np.asarray(surf.customdata)
    hit = np.flatnonzero(custom[:, 0] == int(vertex))
    if not hit.size:
        raise KeyError(f"vertex {vertex} is not drawn in this figure")
    i = int(hit[0])
    value = float(custom[i, 1])
    name = (fig.layout.meta or {}).get("value_name", "value")
    return f"vertex {int(vertex)}<br>{surf.text[i]}<br>{name}: {'no data' if np.isnan(value) else f'{value:.4g}'}"
