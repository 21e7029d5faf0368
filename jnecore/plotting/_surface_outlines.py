"""ROI outlines for :func:`~jnecore.plotting.plot_surface_map`: boundary vertices drawn as points.

nilearn draws contours as faces (``nilearn.plotting.surface._utils.get_faces_on_edge``, private,
for matplotlib) and its vertex normals (``nilearn.surface.surface._vertex_outer_normals``, private)
assume an outward winding; we need boundary *vertices* of many ROIs at once and normals of meshes
wound either way, so both are kept here.
"""

from __future__ import annotations

import warnings

import numpy as np
import plotly.graph_objects as go

from ..atlas import hierarchy_table, strip_hemi

OUTLINE_COLOR, HIGHLIGHT_COLOR = "rgba(25,25,25,0.85)", "#00e5ff"
_LIFT = 0.6  # mm: outline points sit this far above the surface (along the normal)
_FLAT_Z = 0.5  # z of outline points over a flat map (in the z = 0 plane)


def roi_boundary_vertices(labels, faces, targets) -> np.ndarray:
    """Vertices whose label is in ``targets`` with at least one neighbour of another label.

    Parameters
    ----------
    labels : array of str, (n_vertices,)
    faces : int array, (n_faces, 3)
    targets : iterable of str

    Returns
    -------
    vertices : ndarray of int64, (n_boundary,)
        Sorted vertex indices.
    """
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


def vertex_normals(coords, faces) -> np.ndarray:
    """Unit vertex normals (area-weighted face normals), oriented away from the mesh centre.

    Parameters
    ----------
    coords : ndarray of float, (n_vertices, 3)
    faces : int array, (n_faces, 3)

    Returns
    -------
    normals : ndarray of float, (n_vertices, 3)
    """
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


def match_roi_names(names, labels) -> set:
    """ROI names as they appear in ``labels`` (hemisphere prefixes / case ignored if needed).

    Parameters
    ----------
    names : iterable of str
    labels : array of str, (n_vertices,)

    Returns
    -------
    found : set of str
    """
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


def _resolve(names, labels, row_labels):
    """(label array, matched names): the atlas labels first, else the hover ROI names."""
    names = [names] if isinstance(names, str) else list(names)
    for lab in (labels, row_labels):
        if lab is not None:
            found = match_roi_names(names, lab)
            if found:
                return lab, found
    return labels, set()


def _outline_sets(labels, row_labels, shown, outline_rois, highlight_roi) -> list:
    """[(trace name, label array, target names)] of the outline and highlight traces to draw."""
    sets = []
    if labels is not None and outline_rois is not False and outline_rois is not None:
        if outline_rois is True:
            targets = set(labels[shown]) - {""}
            if not targets:
                targets = set(hierarchy_table("all")["roi"]) & set(labels)
            sets.append(("outline", labels, targets))
        else:
            sets.append(("outline", *_resolve(outline_rois, labels, row_labels)))
    if highlight_roi is not None:
        lab, targets = _resolve(highlight_roi, labels, row_labels)
        if not targets:
            warnings.warn(f"highlight_roi {highlight_roi!r}: no such ROI in the labels of this map", stacklevel=4)
        else:
            sets.append(("highlight", lab, targets))
    return sets


def outline_traces(mesh, labels, row_labels, shown, *, outline_rois=True, highlight_roi=None, offset=0,
                   in_patch=None) -> list:
    """Boundary vertices of ROIs as ``Scatter3d`` points just above the surface.

    Parameters
    ----------
    mesh : jnecore.atlas.Mesh, (n_mesh vertices)
    labels : ndarray of str, (n_mesh,), or None
        ROI name per vertex (atlas or ``roi_labels``; the hover "roi" column when there is none).
    row_labels : ndarray of str, (n_mesh,), or None
        ROI names of the hover "roi" column, for names ``labels`` does not know.
    shown : ndarray of bool, (n_mesh,)
    outline_rois, highlight_roi : see :func:`plot_surface_map`
    offset : int
        Index of mesh vertex 0 in the L+R mesh (the traces' ``customdata``).
    in_patch : ndarray of bool, (n_mesh,), optional
        ``mesh.in_patch`` if already computed (points off a flat patch are not drawn).

    Returns
    -------
    traces : list of go.Scatter3d
        "outline" then "highlight", each only when it has a point; ``customdata`` int32
        (n_points,) = vertex index in the L+R mesh.
    """
    in_patch = mesh.in_patch if in_patch is None else in_patch
    flat = mesh.surface == "flat"
    style = {"outline": (OUTLINE_COLOR, 1.5), "highlight": (HIGHLIGHT_COLOR, 3)}
    points = []
    for name, lab, targets in _outline_sets(labels, row_labels, shown, outline_rois, highlight_roi):
        targets = {t for t in targets if t}
        bv = roi_boundary_vertices(lab, mesh.faces, targets) if targets else np.zeros(0, np.int64)
        bv = bv[in_patch[bv]]
        if bv.size:
            points.append((name, bv))
    normals = None
    if points and not flat:
        normals = vertex_normals(np.asarray(mesh.coords, dtype=np.float64), mesh.faces)
    traces = []
    for name, bv in points:
        p = np.asarray(mesh.coords[bv], dtype=np.float32).copy()
        if flat:
            p[:, 2] = _FLAT_Z
        else:
            p += (_LIFT * normals[bv]).astype(np.float32)
        color, size = style[name]
        traces.append(go.Scatter3d(x=p[:, 0], y=p[:, 1], z=p[:, 2], mode="markers", name=name,
                                   marker=dict(size=size, color=color), customdata=(bv + offset).astype(np.int32),
                                   hoverinfo="skip", showlegend=False))
    return traces
