"""Cortical surface maps as plotly figures (nilearn-style: data in, ``go.Figure`` out).

Design
------
One ``go.Mesh3d`` (trace "surface") carries both the data and the grey sulcal background. Its
``intensity`` is a uint8 colour code on a two-part colour scale (cmin 0, cmax 255): codes 0..126
are greys for the background (dark = deep sulcus), codes 128..255 the chosen colormap for values
in [vmin, vmax] (clipped). Background = NaN, below ``threshold``, or no value. One copy of the
geometry is sent, and there is no z-fighting between two coincident meshes. The raw values
travel in ``customdata``; the colour bar comes from a one-point invisible ``Scatter3d`` (trace
"colorbar") so that it shows the data range only.

Hover: ``customdata`` is an (n_drawn, 2) float32 array of [vertex index in the concatenated L+R
mesh, raw value] (a click event returns it too; NaN = no data; values below ``threshold`` keep
their value). ``text`` is "ROI (level)" plus the ``hover`` columns on shown vertices and the bare
ROI name on background vertices, so only shown vertices carry long strings; ``HOVERTEMPLATE``
joins them. :func:`hover_label` renders the hover of one vertex in Python.

Flat maps are the same ``Mesh3d`` in the z = 0 plane seen from above with an orthographic camera
(zoom and pan work as in 3D; ``view`` is ignored); the vertices cut from the flat patch are not
drawn.

Figure size: coordinates are float32, intensities uint8, faces uint16 when fewer than 65536
vertices are drawn (int32 otherwise); plotly (>= 6) sends numpy arrays as base64 typed arrays.
A full fs_LR 32k map of both hemispheres (64984 vertices, 129960 faces, every cortical vertex
shown, all 360 parcels outlined) is ~4.4 MB of JSON; visual cortex only ~3.7 MB.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import plotly.colors as pcolors
import plotly.graph_objects as go

from ..atlas import hierarchy_table, load_mesh, load_sulc, mmp_labels, roi_level, space_size, strip_hemi
from ..atlas._meshes import fsaverage_to_fsaverage5, fsaverage_vertices_to_fsaverage5, normalize_space

__all__ = ["plot_surface_map", "colormaps", "hover_label", "VIEWS", "HOVERTEMPLATE", "camera_for_view"]

VIEWS = ("lateral", "medial", "ventral", "dorsal", "posterior", "anterior")
_BG_LIGHT, _BG_DARK, _BG_FLAT = "rgb(205,205,205)", "rgb(95,95,95)", "rgb(170,170,170)"
_BG_MAX, _DATA_MIN = 126, 128  # uint8 intensity codes: 0.._BG_MAX background, _DATA_MIN..255 data
_OUTLINE_COLOR, _HIGHLIGHT_COLOR = "rgba(25,25,25,0.85)", "#00e5ff"
_EYE = 1.5  # close enough that a hemisphere pair fills the scene
#: hover template of the surface trace (``%s``: value_name); see :func:`hover_label`.
HOVERTEMPLATE = "vertex %{customdata[0]:d}<br>%{text}<br>%s: %{customdata[1]:.4g}<extra></extra>"


def colormaps() -> list:
    """Names accepted by ``cmap``: plotly's named colour scales, each also reversed with "_r".

    Matching is case-insensitive (``"Hot"``, ``"hot"`` and ``"HOT"`` are the same scale).
    """
    names = sorted(pcolors.named_colorscales())
    return names + [n + "_r" for n in names]


def _colorscale(cmap):
    """(pos, colour) stops of a named colour scale (or a list of stops given as is)."""
    if not isinstance(cmap, str):
        return pcolors.validate_colorscale(list(cmap)) or list(cmap)
    key = cmap.lower()
    if key not in set(colormaps()):
        raise ValueError(f"unknown cmap {cmap!r}; see jnecore.plotting.colormaps()")
    return [[float(p), c] for p, c in pcolors.get_colorscale(key)]


def _combined_scale(stops, flat_bg: bool):
    """Colour scale over the uint8 codes: greys on codes 0..126, the data scale on 128..255."""
    lo, hi = (_BG_FLAT, _BG_FLAT) if flat_bg else (_BG_LIGHT, _BG_DARK)
    out = [[0.0, lo], [_BG_MAX / 255, hi]]
    out += [[(_DATA_MIN + float(p) * (255 - _DATA_MIN)) / 255, c] for p, c in stops]
    return out


def _intensity_codes(vals, shown, lo, hi, t):
    """uint8 codes: shown -> 128 + 127 * (clip(v) - lo) / (hi - lo); background -> 126 * t."""
    data = np.clip((np.nan_to_num(vals, nan=lo) - lo) / (hi - lo), 0, 1)
    code = np.where(shown, _DATA_MIN + np.rint(data * (255 - _DATA_MIN)), np.rint(t * _BG_MAX))
    return code.astype(np.uint8)


def camera_for_view(view="lateral", hemi="both", flat=False) -> dict:
    """Plotly ``scene.camera`` for a named view.

    lateral / medial look at the left hemisphere when ``hemi`` is "left" or "both" (the right one
    when "right"); ventral, dorsal, posterior and anterior show both. A dict is returned as is.
    Flat maps are always seen from above (orthographic).
    """
    if isinstance(view, dict):
        return view
    if flat:
        return dict(eye=dict(x=0, y=0, z=1.2), up=dict(x=0, y=1, z=0), center=dict(x=0, y=0, z=0),
                    projection=dict(type="orthographic"))
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS} or a plotly camera dict, got {view!r}")
    side = 1.0 if hemi == "right" else -1.0
    eyes = {
        "lateral": ((side * _EYE, 0, 0), (0, 0, 1)),
        "medial": ((-side * _EYE, 0, 0), (0, 0, 1)),
        "ventral": ((0, 0, -_EYE), (0, 1, 0)),
        "dorsal": ((0, 0, _EYE), (0, 1, 0)),
        "posterior": ((0, -_EYE, 0), (0, 0, 1)),
        "anterior": ((0, _EYE, 0), (0, 0, 1)),
    }
    (ex, ey, ez), (ux, uy, uz) = eyes[view]
    return dict(eye=dict(x=ex, y=ey, z=ez), up=dict(x=ux, y=uy, z=uz), center=dict(x=0, y=0, z=0),
                projection=dict(type="perspective"))


def _as_frame(hover, n_rows, what):
    if hover is None:
        return None
    df = hover if isinstance(hover, pd.DataFrame) else pd.DataFrame(dict(hover))
    if len(df) != n_rows:
        raise ValueError(f"hover has {len(df)} rows; expected {n_rows} ({what})")
    return df.reset_index(drop=True)


def _per_mesh(arr, n_mesh, n_hemi, hemi, rows_local, rows_keep, n_rows, name, fill):
    """Scatter an array given per mesh vertex, per space vertex (2n) or per row onto the mesh."""
    arr = np.asarray(arr)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if rows_local is not None and len(arr) == n_rows:
        out = np.full(n_mesh, fill, dtype=object if arr.dtype.kind in "OUS" else float)
        out[rows_local] = arr[rows_keep]
        return out
    if len(arr) == n_mesh:
        return arr
    if hemi != "both" and len(arr) == 2 * n_hemi:
        return arr[:n_hemi] if hemi == "left" else arr[n_hemi:]
    expected = f"{n_mesh} (mesh vertices)" + (f" or {n_rows} (rows of vertices)" if rows_local is not None else "")
    raise ValueError(f"{name} has {len(arr)} entries; expected {expected}")


def _vertex_normals(coords, faces):
    tri = coords[faces]
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    vn = np.zeros_like(coords)
    for k in range(3):
        np.add.at(vn, faces[:, k], fn)
    vn /= np.maximum(np.linalg.norm(vn, axis=1, keepdims=True), 1e-12)
    # orient outwards (meshes are consistently wound, but not all the same way)
    if np.nanmean(np.sum(vn * (coords - np.nanmean(coords, axis=0)), axis=1)) < 0:
        vn = -vn
    return vn


def _boundary_vertices(labels, faces, targets):
    """Vertices whose label is in ``targets`` with at least one neighbour of another label."""
    names, codes = np.unique(np.asarray(labels, dtype=str), return_inverse=True)
    codes = codes.ravel()
    is_t = np.isin(codes, np.flatnonzero(np.isin(names, sorted(targets))))
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    edges = edges[codes[edges[:, 0]] != codes[edges[:, 1]]]
    mark = np.zeros(len(codes), dtype=bool)
    for side in (0, 1):
        v = edges[:, side]
        mark[v[is_t[v]]] = True
    return np.flatnonzero(mark)


def _fmt(v):
    if isinstance(v, (float, np.floating)):
        return "nan" if not np.isfinite(v) else f"{v:.4g}"
    return str(v)


def plot_surface_map(values, *, space="fsLR32k", surface="inflated", hemi="both", view="lateral",
                     vertices=None, threshold=None, cmap="Hot", vmin=None, vmax=None, bg_map="sulc",
                     roi_labels=None, highlight_roi=None, outline_rois=True, hover=None, title=None,
                     value_name="value"):
    """Draw a per-vertex map on a cortical surface.

    Parameters
    ----------
    values : array, (n_vertices,) or (n_rows,)
        Full-mesh values (n_vertices = vertices of ``hemi`` in ``space``: e.g. 64984 for fsLR32k
        "both", 32492 for one hemisphere; for one hemisphere a both-hemisphere array is also
        accepted), or one value per row of ``vertices``. NaN = no data (background).
    space : {"fsLR32k", "fsaverage5", "fsaverage"}
        "fsaverage" values / vertices (163842 per hemisphere) are drawn on fsaverage5 by the
        nested-vertex rule (only the first 10242 vertices of each hemisphere are kept).
    surface : {"inflated", "very_inflated", "pial", "white", "midthickness", "flat", "sphere"}
    hemi : {"both", "left", "right"}
    view : {"lateral", "medial", "ventral", "dorsal", "posterior", "anterior"} or camera dict
        Ignored for the flat surface (seen from above).
    vertices : int array, (n_rows,), optional
        Index of each value's vertex in the concatenated L+R mesh of ``space`` (as the bundle's
        ``vertex`` column). Rows of the other hemisphere are dropped when ``hemi`` is one side.
    threshold : float, optional
        Values with ``|value| < threshold`` are shown as background.
    cmap : str or list of (pos, colour)
        See :func:`colormaps`.
    vmin, vmax : float, optional
        Colour range; default min / max of the shown values.
    bg_map : "sulc", None, or array (n_vertices,)
        Background shading (higher = darker grey); None: uniform grey.
    roi_labels : None, False, "mmp", or array of str (n_vertices,) or (n_rows,)
        ROI name per vertex (or per row of ``vertices``). None: HCP-MMP1.0 for fsLR32k, else the
        hover "roi" column if given, else none. False: no labels and no outlines.
    highlight_roi : str or list of str, optional
        ROI(s) whose boundary is drawn in a distinct colour (trace "highlight"). Names are looked
        up in the atlas labels, then in the hover "roi" column (so NSD ROI names of a bundle work
        on fsLR32k too); an unknown name draws nothing and warns.
    outline_rois : bool or list of str
        Boundary vertices of ROIs drawn as points (trace "outline"). True: the ROIs that contain
        a shown vertex (or, with nothing shown, the ROIs of the hierarchy tables); a list: those.
    hover : dict of arrays or DataFrame, optional
        Extra hover columns, aligned with ``vertices`` (or with the mesh vertices when
        ``vertices`` is None). Columns "roi" and "level" replace the atlas ones in the hover.
    title : str, optional
    value_name : str
        Name of the value in the hover and colour bar (e.g. "JNE").

    Returns
    -------
    fig : go.Figure
        Traces: "surface" (Mesh3d; ``customdata`` = vertex index in the L+R mesh, ``text`` =
        hover text), "colorbar", and optionally "outline" and "highlight" (Scatter3d; their
        ``customdata`` = vertex indices). ``fig.layout.meta`` records space, surface, hemi,
        vmin, vmax, threshold and the number of shown vertices.
    """
    space = normalize_space(space)
    values = np.asarray(values)
    if space == "fsaverage":
        if vertices is None:
            values = fsaverage_to_fsaverage5(values)
            if roi_labels is not None and roi_labels is not False and not isinstance(roi_labels, str):
                roi_labels = fsaverage_to_fsaverage5(np.asarray(roi_labels))
            if isinstance(bg_map, np.ndarray) or isinstance(bg_map, (list, tuple)):
                bg_map = fsaverage_to_fsaverage5(np.asarray(bg_map))
            if hover is not None:
                raise ValueError("hover with full-mesh fsaverage values is not supported; pass vertices")
        else:
            v5, keep = fsaverage_vertices_to_fsaverage5(vertices)
            values = values[keep]
            vertices = v5
            if roi_labels is not None and roi_labels is not False and not isinstance(roi_labels, str) \
                    and len(roi_labels) == len(keep):
                roi_labels = np.asarray(roi_labels)[keep]
            if hover is not None:
                hover = _as_frame(hover, len(keep), "rows of vertices")[keep]
        space = "fsaverage5"

    flat = surface == "flat"
    mesh = load_mesh(space, surface, hemi)
    n_hemi = space_size(space)
    n_mesh = mesh.n_vertices
    offset = n_hemi if hemi == "right" else 0

    # ---- values onto mesh vertices ---------------------------------------------------------
    rows_local = rows_keep = None
    n_rows = None
    row_of = None
    if values.ndim != 1:
        raise ValueError(f"values must be 1-D, got shape {values.shape}")
    if vertices is None and hemi != "both" and len(values) == 2 * n_hemi:
        vertices = np.arange(2 * n_hemi)  # both-hemisphere values, one hemisphere drawn
    if vertices is not None:
        vert = np.asarray(vertices, dtype=np.int64).ravel()
        if len(vert) != len(values):
            raise ValueError(f"values ({len(values)}) and vertices ({len(vert)}) differ in length")
        if vert.size and (vert.min() < 0 or vert.max() >= 2 * n_hemi):
            raise ValueError(f"vertices must lie in [0, {2 * n_hemi}) for {space}")
        n_rows = len(vert)
        local = vert - offset
        rows_keep = np.flatnonzero((local >= 0) & (local < n_mesh))
        rows_local = local[rows_keep]
        vals = np.full(n_mesh, np.nan)
        vals[rows_local] = values[rows_keep].astype(float)
        row_of = np.full(n_mesh, -1, dtype=np.int64)
        row_of[rows_local] = rows_keep
    else:
        vals = _per_mesh(values, n_mesh, n_hemi, hemi, None, None, None, "values", np.nan).astype(float)
        n_rows = n_mesh
        row_of = np.arange(n_mesh)
    hover_df = _as_frame(hover, n_rows, "rows of vertices" if vertices is not None else "mesh vertices")

    in_patch = mesh.in_patch
    shown = np.isfinite(vals) & in_patch
    if threshold is not None:
        shown &= np.abs(np.nan_to_num(vals)) >= float(threshold)

    # ---- labels ----------------------------------------------------------------------------
    labels = None
    if roi_labels is None and space == "fsLR32k":
        roi_labels = "mmp"
    if isinstance(roi_labels, str):
        if roi_labels.lower() != "mmp" or space != "fsLR32k":
            raise ValueError("roi_labels='mmp' needs space='fsLR32k'; pass an array of names otherwise")
        labels = mmp_labels(hemi)[0].astype(object)
    elif roi_labels is not None and roi_labels is not False:
        labels = _per_mesh(np.asarray(roi_labels, dtype=object), n_mesh, n_hemi, hemi, rows_local,
                           rows_keep, n_rows, "roi_labels", "")
        labels = np.array(["" if (x is None or (isinstance(x, float) and np.isnan(x))) else str(x)
                           for x in labels], dtype=object)

    # ---- colour range and intensity --------------------------------------------------------
    sv = vals[shown]
    lo = float(np.min(sv)) if vmin is None and sv.size else (0.0 if vmin is None else float(vmin))
    hi = float(np.max(sv)) if vmax is None and sv.size else (1.0 if vmax is None else float(vmax))
    if hi <= lo:
        hi = lo + (abs(lo) * 1e-3 if lo else 1.0)

    if isinstance(bg_map, str):
        if bg_map != "sulc":
            raise ValueError("bg_map must be 'sulc', None or an array")
        bg = np.asarray(load_sulc(space, hemi), dtype=float)
    elif bg_map is None or bg_map is False:
        bg = np.zeros(n_mesh)
    else:
        bg = _per_mesh(np.asarray(bg_map, dtype=float), n_mesh, n_hemi, hemi, None, None, None,
                       "bg_map", np.nan).astype(float)
    finite_bg = np.isfinite(bg) & in_patch
    if finite_bg.any() and np.ptp(bg[finite_bg]) > 0:
        b0, b1 = np.percentile(bg[finite_bg], [2, 98])
        t = np.clip((bg - b0) / max(b1 - b0, 1e-12), 0, 1)
    else:
        t = np.full(n_mesh, 0.5)
    t = np.nan_to_num(t, nan=0.5)
    intensity = _intensity_codes(vals, shown, lo, hi, t)

    stops = _colorscale(cmap)
    scale = _combined_scale(stops, flat_bg=bg_map is None or bg_map is False)

    # ---- compact to the drawn vertices -----------------------------------------------------
    keep = np.flatnonzero(in_patch)
    remap = np.full(n_mesh, -1, dtype=np.int64)
    remap[keep] = np.arange(len(keep))
    faces = remap[mesh.faces]
    fdtype = np.uint16 if len(keep) <= np.iinfo(np.uint16).max else np.int32
    coords = np.asarray(mesh.coords[keep], dtype=np.float32)

    # ---- hover -----------------------------------------------------------------------------
    # customdata (n, 2) float32: [vertex index in the L+R mesh, raw value (NaN = no data)];
    # text: "ROI (level)" on shown vertices (+ hover columns), the bare ROI name elsewhere.
    roi_col = level_col = None
    extra_cols = []
    if hover_df is not None:
        roi_col = hover_df["roi"].astype(str).to_numpy() if "roi" in hover_df else None
        level_col = hover_df["level"].astype(str).to_numpy() if "level" in hover_df else None
        extra_cols = [c for c in hover_df.columns if c not in ("roi", "level", "vertex")]
    vert_roi = labels if labels is not None else np.full(n_mesh, "", dtype=object)
    shown_k = shown[keep]
    text = np.asarray(vert_roi[keep], dtype=object).copy()
    idx = keep[shown_k]
    rows = row_of[idx]
    rois = vert_roi[idx].copy()
    if roi_col is not None:
        rois[rows >= 0] = roi_col[rows[rows >= 0]]
    levels = roi_level(rois) if len(rois) else np.array([], dtype=str)
    levels = np.asarray(levels, dtype=object)
    if level_col is not None:
        levels[rows >= 0] = level_col[rows[rows >= 0]]
    rois = np.asarray(rois, dtype=str)
    parts = np.where(rois != "", np.char.add(np.char.add(rois, " ("), np.char.add(levels.astype(str), ")")), "")
    for c in extra_cols:
        col = np.array([f"<br>{c}: {_fmt(x)}" for x in hover_df[c].to_numpy()], dtype=str)
        parts = np.char.add(parts, np.where(rows >= 0, col[np.maximum(rows, 0)], ""))
    text[np.flatnonzero(shown_k)] = parts
    custom = np.stack([keep + offset, vals[keep]], axis=1).astype(np.float32)

    lighting = (dict(ambient=1.0, diffuse=0.0, specular=0.0, roughness=1.0, fresnel=0.0) if flat else
                dict(ambient=0.45, diffuse=0.7, specular=0.05, roughness=0.9, fresnel=0.05))
    surf = go.Mesh3d(
        x=coords[:, 0], y=coords[:, 1], z=coords[:, 2],
        i=faces[:, 0].astype(fdtype), j=faces[:, 1].astype(fdtype), k=faces[:, 2].astype(fdtype),
        intensity=intensity[keep], intensitymode="vertex",
        colorscale=scale, cmin=0, cmax=255, showscale=False,
        customdata=custom, text=np.asarray(text, dtype=str),
        hovertemplate=HOVERTEMPLATE.replace("%s", str(value_name)),
        lighting=lighting, flatshading=False, name="surface", showlegend=False,
    )
    traces = [surf]

    # ---- colour bar ------------------------------------------------------------------------
    anchor = coords[:1] if len(coords) else np.zeros((1, 3), np.float32)
    traces.append(go.Scatter3d(
        x=anchor[:, 0], y=anchor[:, 1], z=anchor[:, 2], mode="markers", name="colorbar",
        marker=dict(size=0.1, opacity=0, color=[lo], colorscale=stops, cmin=lo, cmax=hi, showscale=True,
                    colorbar=dict(title=dict(text=value_name), thickness=14, len=0.6)),
        hoverinfo="skip", showlegend=False,
    ))

    # ---- outlines --------------------------------------------------------------------------
    # per-vertex ROI names from the hover "roi" column (e.g. NSD ROIs of a bundle): used when the
    # space has no atlas, and for outline / highlight names the atlas does not know
    row_labels = None
    if hover_df is not None and "roi" in hover_df and roi_labels is not False:
        row_labels = np.full(n_mesh, "", dtype=object)
        has = row_of >= 0
        row_labels[has] = hover_df["roi"].astype(str).to_numpy()[row_of[has]]
        if labels is None:
            labels = row_labels
    normals = None

    def points(lab, targets, name, color, size):
        nonlocal normals
        targets = {t for t in targets if t}
        if not targets:
            return None
        bv = _boundary_vertices(lab, mesh.faces, targets)
        bv = bv[in_patch[bv]]
        if not bv.size:
            return None
        p = np.asarray(mesh.coords[bv], dtype=np.float32).copy()
        if flat:
            p[:, 2] = 0.5
        else:
            if normals is None:
                normals = _vertex_normals(np.asarray(mesh.coords, dtype=np.float64), mesh.faces)
            p += (0.6 * normals[bv]).astype(np.float32)
        return go.Scatter3d(x=p[:, 0], y=p[:, 1], z=p[:, 2], mode="markers", name=name,
                            marker=dict(size=size, color=color), customdata=(bv + offset).astype(np.int32),
                            hoverinfo="skip", showlegend=False)

    def resolve(names):
        """(label array, matched names): the atlas labels first, else the hover ROI names."""
        names = [names] if isinstance(names, str) else list(names)
        for lab in (labels, row_labels):
            if lab is not None:
                found = _match_names(names, lab)
                if found:
                    return lab, found
        return labels, set()

    if labels is not None and outline_rois is not False and outline_rois is not None:
        if outline_rois is True:
            lab, targets = labels, set(labels[shown]) - {""}
            if not targets:
                targets = set(hierarchy_table("all")["roi"]) & set(labels)
        else:
            lab, targets = resolve(outline_rois)
        tr = points(lab, targets, "outline", _OUTLINE_COLOR, 1.5)
        if tr is not None:
            traces.append(tr)
    if highlight_roi is not None:
        lab, targets = resolve(highlight_roi)
        if not targets:
            warnings.warn(f"highlight_roi {highlight_roi!r}: no such ROI in the labels of this map", stacklevel=2)
        else:
            tr = points(lab, targets, "highlight", _HIGHLIGHT_COLOR, 3)
            if tr is not None:
                traces.append(tr)

    fig = go.Figure(traces)
    camera = camera_for_view(view, hemi, flat=flat)
    axis = dict(visible=False, showbackground=False, showgrid=False, zeroline=False, showspikes=False)
    scene = dict(xaxis=axis, yaxis=dict(axis), zaxis=dict(axis), camera=camera, bgcolor="white")
    if flat:
        rx = float(np.ptp(coords[:, 0])) or 1.0
        ry = float(np.ptp(coords[:, 1])) or 1.0
        # the orthographic camera ignores the eye distance: the aspect ratio sets the size
        k = min(2.9, 1.8 * rx / ry)
        scene.update(aspectmode="manual", aspectratio=dict(x=k, y=k * ry / rx, z=0.02),
                     zaxis=dict(axis, range=[-1, 1]), dragmode="pan")
    else:
        scene.update(aspectmode="data")
    fig.update_layout(
        scene=scene, margin=dict(l=0, r=0, t=40 if title else 0, b=0), showlegend=False,
        paper_bgcolor="white", hoverlabel=dict(align="left"),
        title=dict(text=title) if title else None,
        meta=dict(space=space, surface=surface, hemi=hemi, view=view if isinstance(view, str) else "custom",
                  vmin=lo, vmax=hi, threshold=threshold, value_name=value_name, n_shown=int(shown.sum()),
                  cmap=cmap if isinstance(cmap, str) else "custom"),
    )
    return fig


def _match_names(names, labels):
    """ROI names as they appear in ``labels`` (hemisphere prefixes / case ignored if needed)."""
    present = set(labels) - {""}
    lower = {p.lower(): p for p in present}
    out = set()
    for n in names:
        n = str(n)
        if n in present:
            out.add(n)
        elif strip_hemi(n) in present:
            out.add(strip_hemi(n))
        elif strip_hemi(n).lower() in lower:
            out.add(lower[strip_hemi(n).lower()])
    return out


def hover_label(fig, vertex) -> str:
    """The hover text of one vertex of a :func:`plot_surface_map` figure, rendered in Python.

    Parameters
    ----------
    fig : go.Figure from :func:`plot_surface_map`
    vertex : int, index in the concatenated L+R mesh of the figure's space

    Returns
    -------
    label : str, e.g. "vertex 1234<br>V1 (primary)<br>value: 0.5" (NaN value = no data).

    Raises KeyError if the vertex is not drawn.
    """
    surf = next(t for t in fig.data if t.name == "surface")
    custom = np.asarray(surf.customdata)
    hit = np.flatnonzero(custom[:, 0] == int(vertex))
    if not hit.size:
        raise KeyError(f"vertex {vertex} is not drawn in this figure")
    i = int(hit[0])
    value = float(custom[i, 1])
    name = (fig.layout.meta or {}).get("value_name", "value")
    return f"vertex {int(vertex)}<br>{surf.text[i]}<br>{name}: {'NaN' if np.isnan(value) else f'{value:.4g}'}"
