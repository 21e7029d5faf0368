"""Cortical surface maps as plotly figures (nilearn-style: data in, ``go.Figure`` out).

Design
------
:func:`plot_surface_map` composes four steps, one private module each:

- mesh preparation (``_surface_mesh``): the mesh of ``space``, ``hemi`` and ``surf_mesh``; the
  values, ROI labels, background map and hover rows placed on its vertices; fsaverage drawn on
  fsaverage5; the drawn sub-mesh (flat maps lose the vertices cut from the patch);
- colour mapping (``_surface_colors``): values, ``threshold``, ``vmin`` / ``vmax``, ``cmap`` and
  the sulcal background to one uint8 code per vertex;
- outlines (``_surface_outlines``): continuous lines between parcels (boundary-edge midpoints
  chained into polylines);
- figure assembly (``_surface_figure``, hover in ``_surface_hover``): traces, camera, layout.

One ``go.Mesh3d`` (trace "surface") carries both the data and the grey sulcal background. Its
``intensity`` is a uint8 colour code on a two-part colour scale (cmin 0, cmax 255): codes 0..126
are greys for the background (dark = deep sulcus), codes 128..255 the chosen colormap for values
in [vmin, vmax] (clipped). Background = NaN, below ``threshold``, or no value. One copy of the
geometry is sent, and there is no z-fighting between two coincident meshes. The raw values
travel in ``customdata``; the colour bar comes from a one-point invisible ``Scatter3d`` (trace
"colorbar") so that it shows the data range only.

Hover: ``customdata`` is an (n_drawn, 2) float32 array of [vertex index in the concatenated L+R
mesh, raw value]; ``text`` is "ROI (level)" plus the ``hover`` columns on shown vertices and the
bare ROI name on background vertices; ``HOVERTEMPLATE`` joins them. :func:`hover_label` renders
the hover of one vertex in Python.

Flat maps are the same ``Mesh3d`` in the z = 0 plane seen from above with an orthographic camera
(zoom and pan work as in 3D; ``view`` is ignored).

Figure size: coordinates are float32, intensities uint8, faces uint16 when fewer than 65536
vertices are drawn (int32 otherwise); plotly (>= 6) sends numpy arrays as base64 typed arrays.
A full fs_LR 32k map of both hemispheres (64984 vertices, 129960 faces, every cortical vertex
shown, all 360 parcels outlined) is ~4.4 MB of JSON; visual cortex only ~3.7 MB.

nilearn: the keyword names follow ``nilearn.plotting.plot_surf_stat_map``. Its containers are
not used: ``nilearn.surface`` costs ~2 s and ~90 MB at import (scikit-learn, SciPy) for what a
two-field tuple does (``InMemoryMesh``), and maps come as one L+R array or as (vertex, value)
rows of a bundle on fsLR32k, which is no nilearn template (``SurfaceImage`` / ``PolyMesh``).
"""

from __future__ import annotations


import numpy as np
import plotly.graph_objects as go

from ._surface_colors import colormaps, map_colors
from ._surface_figure import (VIEWS, assemble_figure, camera_for_view, camera_position, colorbar_title, colorbar_trace,
                              data_trace, scene_layout, surface_trace)
from ._surface_hover import HOVERTEMPLATE, hover_customdata, hover_label, hover_text
from ._surface_mesh import drawn_mesh, prepare_surface_data
from ._surface_outlines import outline_traces

__all__ = ["plot_surface_map", "colormaps", "hover_label", "VIEWS", "HOVERTEMPLATE", "camera_for_view",
           "camera_position"]

_DATA_LIFT = 0.15  # mm: the "data" mesh sits this far above the background along the normals


def _data_layer(drawn, shown_d, values_d, flat):
    """(coords (k, 3), faces (m, 3), index (k,)) of the shown part of the drawn mesh, lifted.

    Only faces whose three vertices are shown are kept, so no colour is interpolated into a
    hidden vertex: hidden vertices show the background alone.
    """
    from ._surface_outlines import vertex_normals

    idx = np.flatnonzero(shown_d)
    faces = drawn.faces.astype(np.int64)
    full = shown_d[faces].all(axis=1)
    remap = np.full(len(shown_d), -1, dtype=np.int64)
    remap[idx] = np.arange(len(idx))
    f = remap[faces[full]]
    xyz = np.asarray(drawn.coordinates[idx], dtype=np.float32).copy()
    if flat:
        xyz[:, 2] = 0.05
    elif len(idx):
        n = vertex_normals(np.asarray(drawn.coordinates, dtype=np.float64), faces)[idx]
        xyz += (_DATA_LIFT * n).astype(np.float32)
    fdtype = np.uint16 if len(idx) <= np.iinfo(np.uint16).max else np.int32
    return xyz, f.astype(fdtype), idx


def plot_surface_map(stat_map, *, surf_mesh: str = "inflated", space: str = "fsLR32k", hemi: str = "both",
                     view: str | dict = "lateral", vertices=None, threshold: float | None = None, cmap="Hot",
                     vmin: float | None = None, vmax: float | None = None, bg_map="sulc", roi_labels=None,
                     highlight_roi=None, outline_rois=True, hover=None, title: str | None = None,
                     value_name: str = "value", units: str | None = None, symmetric_cmap: bool = False,
                     colorbar_note: str | None = None) -> go.Figure:
    """Draw a per-vertex map on a cortical surface.

    Parameters
    ----------
    stat_map : array, (n_vertices,) or (n_rows,)
        Full-mesh values (n_vertices = vertices of ``hemi`` in ``space``: e.g. 64984 for fsLR32k
        "both", 32492 for one hemisphere; for one hemisphere a both-hemisphere array is also
        accepted), or one value per row of ``vertices``. NaN = no data (background).
    surf_mesh : {"inflated", "very_inflated", "pial", "white", "midthickness", "flat", "sphere"}
        Surface type of the bundled mesh of ``space`` (fsaverage5 has no "very_inflated").
    space : {"fsLR32k", "fsaverage5", "fsaverage"}
        "fsaverage" values / vertices (163842 per hemisphere) are drawn on fsaverage5 by the
        nested-vertex rule (only the first 10242 vertices of each hemisphere are kept).
    hemi : {"both", "left", "right"}
    view : {"lateral", "medial", "ventral", "dorsal", "posterior", "anterior"} or camera dict
        Ignored for the flat surface (seen from above).
    vertices : int array, (n_rows,), optional
        Index of each value's vertex in the concatenated L+R mesh of ``space`` (as the bundle's
        ``vertex`` column). Rows of the other hemisphere are dropped when ``hemi`` is one side.
    threshold : float, optional
        Values with ``|value| < threshold`` are shown as background (the sulcal grey only, no
        colour from the scale). The threshold never changes the colour range.
    cmap : str or list of (pos, colour)
        See :func:`colormaps`.
    vmin, vmax : float, optional
        Colour range; default min / max of all finite values (before ``threshold``).
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
        ROI boundaries drawn as continuous lines (trace "outline"). True: the ROIs that contain
        a shown vertex (or, with nothing shown, the ROIs of the hierarchy tables); a list: those.
    hover : dict of arrays or DataFrame, (n_rows, n_columns), optional
        Extra hover columns, aligned with ``vertices`` (or with the mesh vertices when
        ``vertices`` is None). Columns "roi" and "level" replace the atlas ones in the hover.
    title : str, optional
    value_name : str
        Name of the value in the hover and colour bar (e.g. "JNE").
    units : str, optional
        Units, stated in the colour bar title (e.g. "a.u.", "%").
    symmetric_cmap : bool
        Centre the colour range on 0 (diverging maps: differences, R² gain).
    colorbar_note : str, optional
        A last line of the colour bar title (e.g. "significant vertices only").

    Returns
    -------
    fig : go.Figure
        Traces: "surface" (Mesh3d, the background greys only), "data" (Mesh3d over the faces whose
        three vertices are shown, lifted 0.15 mm; absent when nothing is shown; ``intensity`` the
        values, ``customdata`` and ``text`` as the surface's for its vertices), and on "surface" ``customdata`` (n_drawn, 2) = [vertex index in the L+R mesh,
        value], ``text`` (n_drawn,) = hover text), "colorbar", and optionally "outline" and
        "highlight" (Scatter3d lines, NaN between paths; their ``customdata`` (n_points,) = the vertex
        on the ROI's side of each point's edge, -1 at the breaks).
        ``fig.layout.meta`` records space, surface, hemi, view, vmin, vmax, threshold,
        value_name, the number of shown vertices and cmap.
    """
    data = prepare_surface_data(stat_map, space=space, surf_mesh=surf_mesh, hemi=hemi, vertices=vertices,
                                roi_labels=roi_labels, bg_map=bg_map, hover=hover)
    mesh, flat, in_patch = data.mesh, surf_mesh == "flat", data.mesh.in_patch
    colors = map_colors(data.values, data.bg, mask=in_patch, threshold=threshold, vmin=vmin, vmax=vmax, cmap=cmap,
                        symmetric_cmap=symmetric_cmap)
    keep, drawn = drawn_mesh(mesh, in_patch)
    custom, text = hover_customdata(data, keep), hover_text(data, colors.shown, keep)
    traces = [surface_trace(drawn, colors.bg_codes[keep], colors.scale, custom, text, value_name, flat=flat)]
    xyz, faces, idx = _data_layer(drawn, colors.shown[keep], data.values[keep], flat)
    if len(idx):
        traces.append(data_trace(xyz, faces, data.values[keep][idx].astype(np.float32), colors.stops, colors.vmin,
                                 colors.vmax, custom[idx], text[idx], value_name, flat=flat))
    cb_title = colorbar_title(value_name, units, threshold, colorbar_note)
    traces.append(colorbar_trace(drawn.coordinates, colors.stops, colors.vmin, colors.vmax, value_name, cb_title))
    labels = data.labels if data.labels is not None else data.row_labels
    traces += outline_traces(mesh, labels, data.row_labels, colors.shown, outline_rois=outline_rois,
                             highlight_roi=highlight_roi, offset=data.offset, in_patch=in_patch)
    meta = dict(space=mesh.space, surface=surf_mesh, hemi=hemi, view=view if isinstance(view, str) else "custom",
                vmin=colors.vmin, vmax=colors.vmax, threshold=threshold, value_name=value_name,
                n_shown=int(colors.shown.sum()), cmap=cmap if isinstance(cmap, str) else "custom", units=units,
                symmetric_cmap=bool(symmetric_cmap))
    return assemble_figure(traces, scene_layout(drawn.coordinates, view, hemi, flat=flat), title, meta)
