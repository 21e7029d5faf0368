"""ROI outlines for :func:`~jnecore.plotting.plot_surface_map`: continuous lines between parcels.

An outline runs through the midpoints of the mesh edges whose two vertices carry different labels:
in a triangle with two labels, one segment joins its two such edges; in a triangle with three, each
such edge's midpoint is joined to the triangle's centroid. Segments sharing a midpoint are chained
into polylines (a closed loop around a parcel is one path), drawn as one ``Scatter3d`` line trace
with NaN breaks between paths, lifted along the vertex normals so that it sits on the surface.

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

OUTLINE_COLOR, HIGHLIGHT_COLOR = "rgba(20,20,20,0.9)", "#00e5ff"
OUTLINE_WIDTH, HIGHLIGHT_WIDTH = 2, 5
_LIFT = 0.6  # mm: outline lines sit this far above the surface (along the normal)
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


def roi_boundary_paths(labels, faces, targets, keep_face=None) -> list:
    """Outline polylines of the ROIs in ``targets``, as chains of boundary nodes.

    A node is the midpoint of a mesh edge whose two vertices carry different labels (at least one
    of them in ``targets``), or the centroid of a triangle with three labels.

    Parameters
    ----------
    labels : array of str, (n_vertices,)
    faces : int array, (n_faces, 3)
    targets : iterable of str
    keep_face : ndarray of bool, (n_faces,), optional
        Only these triangles carry outline segments (e.g. those inside a flat patch).

    Returns
    -------
    paths : list of ndarray of int64, each (n_points, 3)
        The vertices of each node: (a, b, -1) for the midpoint of edge a-b, (a, b, c) for a
        centroid; ``a`` is in ``targets``. Consecutive nodes of a path lie
        on one triangle; a closed loop starts and ends on the same node.
    """
    names, codes = np.unique(np.asarray(labels, dtype=str), return_inverse=True)
    codes = codes.ravel().astype(np.int64)
    is_t = np.isin(np.arange(len(names)), np.flatnonzero(np.isin(names, sorted(targets))))
    faces = np.asarray(faces, dtype=np.int64)
    n = len(codes)
    if keep_face is not None:
        fidx = np.flatnonzero(keep_face)
    else:
        fidx = np.arange(len(faces))
    f = faces[fidx]
    c = codes[f]
    cross = np.stack([c[:, 0] != c[:, 1], c[:, 1] != c[:, 2], c[:, 2] != c[:, 0]], axis=1)  # edges 01, 12, 20
    ncross = cross.sum(axis=1)
    ea = f[:, [0, 1, 2]]
    eb = f[:, [1, 2, 0]]
    tgt = is_t[codes[ea]] | is_t[codes[eb]]  # (m, 3): the edge borders a target ROI
    ekey = np.minimum(ea, eb) * n + np.maximum(ea, eb)
    seg_u, seg_v = [], []
    # two labels: the two crossing edges' midpoints
    two = np.flatnonzero((ncross == 2) & (tgt & cross).any(axis=1))
    if two.size:
        cr = cross[two]
        first = np.argmax(cr, axis=1)
        second = 2 - np.argmax(cr[:, ::-1], axis=1)
        seg_u.append(ekey[two, first])
        seg_v.append(ekey[two, second])
    # three labels: each crossing edge to the centroid
    three = np.flatnonzero(ncross == 3)
    for k in range(3):
        sel = tgt[three, k]
        seg_u.append(ekey[three[sel], k])
        seg_v.append(n * n + three[sel])  # centroid node id: past every edge key
    if not seg_u:
        return []
    u, v = np.concatenate(seg_u), np.concatenate(seg_v)
    if not u.size:
        return []
    nodes, inv = np.unique(np.concatenate([u, v]), return_inverse=True)
    su, sv = inv[: len(u)], inv[len(u):]
    # the vertices of each node
    nv = np.full((len(nodes), 3), -1, dtype=np.int64)
    is_edge = nodes < n * n
    a, b = nodes[is_edge] // n, nodes[is_edge] % n
    swap = ~is_t[codes[a]] & is_t[codes[b]]  # the target vertex first
    a2, b2 = np.where(swap, b, a), np.where(swap, a, b)
    nv[is_edge, 0], nv[is_edge, 1] = a2, b2
    cen = np.flatnonzero(~is_edge)
    tri = f[nodes[cen] - n * n]
    order = np.argsort(~is_t[codes[tri]], axis=1, kind="stable")  # a target vertex first
    nv[cen] = np.take_along_axis(tri, order, axis=1)
    return [nv[p] for p in _chain(len(nodes), su, sv)]


def _chain(n_nodes, su, sv) -> list:
    """Segments (su[s], sv[s]) chained into paths of node indices (ends and junctions split paths)."""
    adj = [[] for _ in range(n_nodes)]
    for s, (x, y) in enumerate(zip(su.tolist(), sv.tolist())):
        adj[x].append((y, s))
        adj[y].append((x, s))
    used = bytearray(len(su))

    def walk(start):
        path, cur = [start], start
        while True:
            nxt = None
            for w, s in adj[cur]:
                if not used[s]:
                    used[s] = 1
                    nxt = w
                    break
            if nxt is None:
                return path
            path.append(nxt)
            cur = nxt
            if len(adj[cur]) != 2:
                return path

    paths = []
    for start in range(n_nodes):
        if len(adj[start]) != 2:
            while any(not used[s] for _, s in adj[start]):
                paths.append(walk(start))
    for s in range(len(su)):  # what is left is closed loops
        if not used[s]:
            paths.append(walk(int(su[s])))
    return paths


def path_points(paths, coords, normals=None, lift=_LIFT, flat_z=None):
    """(points (n, 3) float32 with NaN rows between paths, vertex (n,) int64 with -1 there).

    Node positions: the mean of their vertices, lifted ``lift`` mm along the mean normal (or at
    z = ``flat_z`` on a flat map). ``vertex`` is each node's first vertex.
    """
    if not paths:
        return np.zeros((0, 3), np.float32), np.zeros(0, np.int64)
    sep = np.full((1, 3), -2, dtype=np.int64)
    allv = np.concatenate([x for p in paths for x in (p, sep)])[:-1]
    brk = allv[:, 0] == -2
    safe = np.where(allv < 0, 0, allv)
    w = (allv >= 0).astype(np.float64)
    cnt = np.maximum(w.sum(axis=1, keepdims=True), 1)
    coords = np.asarray(coords, dtype=np.float64)
    pts = (coords[safe] * w[..., None]).sum(axis=1) / cnt
    if flat_z is not None:
        pts[:, 2] = flat_z
    elif normals is not None:
        nrm = (normals[safe] * w[..., None]).sum(axis=1)
        nrm /= np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-12)
        pts += lift * nrm
    pts[brk] = np.nan
    vert = np.where(brk, -1, allv[:, 0])
    return pts.astype(np.float32), vert


def outline_traces(mesh, labels, row_labels, shown, *, outline_rois=True, highlight_roi=None, offset=0,
                   in_patch=None) -> list:
    """ROI outlines as continuous ``Scatter3d`` lines just above the surface.

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
        ``mesh.in_patch`` if already computed (no line crosses a triangle off a flat patch).

    Returns
    -------
    traces : list of go.Scatter3d
        "outline" then "highlight", each only when it has a line; ``x``, ``y``, ``z`` float32
        (n_points,) with NaN between paths (see :func:`roi_boundary_paths`); ``customdata`` int32
        (n_points,) = the vertex (in the L+R mesh) on the target side of each point's edge, -1 at
        the breaks.
    """
    in_patch = mesh.in_patch if in_patch is None else in_patch
    flat = mesh.surface == "flat"
    faces = np.asarray(mesh.faces, dtype=np.int64)
    keep_face = in_patch[faces].all(axis=1)
    style = {"outline": (OUTLINE_COLOR, OUTLINE_WIDTH), "highlight": (HIGHLIGHT_COLOR, HIGHLIGHT_WIDTH)}
    found = []
    for name, lab, targets in _outline_sets(labels, row_labels, shown, outline_rois, highlight_roi):
        targets = {t for t in targets if t}
        paths = roi_boundary_paths(lab, faces, targets, keep_face) if targets else []
        if paths:
            found.append((name, paths))
    normals = None
    if found and not flat:
        normals = vertex_normals(np.asarray(mesh.coords, dtype=np.float64), faces)
    traces = []
    for name, paths in found:
        p, vert = path_points(paths, mesh.coords, normals, flat_z=_FLAT_Z if flat else None)
        color, width = style[name]
        traces.append(go.Scatter3d(x=p[:, 0], y=p[:, 1], z=p[:, 2], mode="lines", name=name,
                                   line=dict(color=color, width=width), connectgaps=False,
                                   customdata=np.where(vert >= 0, vert + offset, -1).astype(np.int32),
                                   hoverinfo="skip", showlegend=False))
    return traces
