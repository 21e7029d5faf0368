"""Mesh preparation for :func:`~jnecore.plotting.plot_surface_map`.

The mesh of a space, hemisphere and surface type; the values, ROI labels, background map and
hover rows placed on its vertices; fsaverage maps brought to fsaverage5 (the mean over each
fsaverage5 vertex's cell on fsaverage); the drawn sub-mesh (vertices cut from a flat patch are
not drawn).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np
import pandas as pd

from ..atlas import Mesh, load_mesh, load_sulc, mmp_labels, space_size
from ..atlas._meshes import fsaverage_cells, fsaverage_to_fsaverage5, normalize_space
from ..validation import InputError


@dataclasses.dataclass(frozen=True, eq=False)
class SurfaceData:
    """A map placed on the vertices of the mesh it is drawn on.

    Attributes
    ----------
    mesh : jnecore.atlas.Mesh
        The mesh of ``hemi`` (all vertices of the hemisphere(s), off-patch ones included).
    values : ndarray of float, (n_mesh,)
        Value per mesh vertex; NaN = no data.
    row_of : ndarray of int64, (n_mesh,)
        Row of ``hover`` (or of the input values) behind each vertex; -1 = none.
    hover : DataFrame, (n_rows, n_columns), or None
        Hover columns, one row per input value.
    labels : ndarray of object, (n_mesh,), or None
        ROI name per vertex ("" = none) from the atlas or ``roi_labels``.
    row_labels : ndarray of object, (n_mesh,), or None
        ROI name per vertex from the hover "roi" column ("" = none).
    bg : ndarray of float, (n_mesh,), or None
        Background map (higher = darker grey); None = uniform grey.
    """

    mesh: Mesh
    values: np.ndarray
    row_of: np.ndarray
    hover: pd.DataFrame | None
    labels: np.ndarray | None
    row_labels: np.ndarray | None
    bg: np.ndarray | None

    @property
    def offset(self) -> int:
        """Index of mesh vertex 0 in the concatenated L+R mesh of the space."""
        return space_size(self.mesh.space) if self.mesh.hemi == "right" else 0


def as_frame(hover, n_rows: int, what: str) -> pd.DataFrame | None:
    """Hover columns as a DataFrame of ``n_rows`` rows (index reset); None stays None."""
    if hover is None:
        return None
    df = hover if isinstance(hover, pd.DataFrame) else pd.DataFrame(dict(hover))
    if len(df) != n_rows:
        raise InputError("hover", f"has {len(df)} rows; expected {n_rows} ({what})")
    return df.reset_index(drop=True)


def cell_rows(vertices) -> np.ndarray:
    """The row shown (hover, ROI name) at each fsaverage5 vertex for rows on fsaverage vertices.

    Parameters
    ----------
    vertices : int array, (n_rows,)
        fsaverage vertex of each row (L+R, 0..327683).

    Returns
    -------
    rows : ndarray of int64, (2 * 10242,)
        The row of the nested fsaverage vertex (fsaverage5 vertex i is fsaverage vertex i) when it
        is one, else the row of the cell member of largest weight (:func:`jnecore.atlas._meshes.fsaverage_cells`;
        the lowest vertex on ties); -1 where no row lies in the cell.
    """
    n7, n5 = space_size("fsaverage"), space_size("fsaverage5")
    row7 = np.full(2 * n7, -1, dtype=np.int64)
    row7[vertices] = np.arange(len(vertices))
    cells = fsaverage_cells()
    cell = np.repeat(np.arange(n5), np.diff(cells.indptr))  # cell of each stored weight
    out = []
    for r in (row7[:n7], row7[n7:]):
        has = r[cells.indices] >= 0
        score = np.where(has, cells.data + 2.0 * (cells.indices == cell), 0.0)  # the nested vertex first
        order = np.lexsort((cells.indices, -score, cell))  # per cell: best score, then lowest vertex
        best = order[cells.indptr[:-1]]
        out.append(np.where(score[best] > 0, r[cells.indices[best]], -1))
    return np.concatenate(out)


def to_fsaverage5(stat_map, vertices, roi_labels, bg_map, hover):
    """Bring an fsaverage map to fsaverage5: each fsaverage5 vertex shows the NaN-aware mean of its
    cell on fsaverage (:func:`jnecore.atlas.fsaverage_to_fsaverage5`, not the nested vertex alone).

    Parameters
    ----------
    stat_map : ndarray, (2 * 163842,), (163842,) or (n_rows,)
    vertices : int array, (n_rows,), or None
        fsaverage vertex indices (L+R) of the rows: they are placed on fsaverage and averaged.
    roi_labels, bg_map : as :func:`plot_surface_map`
        Per-row ``roi_labels`` follow the rows of :func:`cell_rows`; arrays on the fsaverage mesh,
        (2 * 163842,) or (163842,), are brought over: ``bg_map`` averaged, ``roi_labels`` taken
        at the nested vertex.
    hover : dict or DataFrame, (n_rows, n_columns), or None
        Each fsaverage5 vertex shows the row of :func:`cell_rows`.

    Returns
    -------
    stat_map, vertices, roi_labels, bg_map, hover
        The same on fsaverage5: with rows, ``vertices`` are the fsaverage5 vertices (L+R) whose
        cell holds a row, one row each.
    """
    n7 = space_size("fsaverage")
    stat_map = np.asarray(stat_map)
    n_rows, rows = None, None
    if vertices is None:
        if hover is not None:
            raise InputError("hover", "is not supported with full-mesh fsaverage values; pass vertices")
        stat_map = fsaverage_to_fsaverage5(stat_map)
    else:
        vert = np.asarray(vertices, dtype=np.int64).ravel()
        n_rows = len(vert)
        if stat_map.ndim != 1 or len(stat_map) != n_rows:
            raise InputError("vertices", f"has {n_rows} entries but stat_map has shape {stat_map.shape}")
        if n_rows and (vert.min() < 0 or vert.max() >= 2 * n7):
            raise InputError("vertices", f"must lie in [0, {2 * n7}) for fsaverage")
        full = np.full(2 * n7, np.nan)
        full[vert] = stat_map
        rep = cell_rows(vert)
        vertices = np.flatnonzero(rep >= 0)
        rows = rep[vertices]
        stat_map = fsaverage_to_fsaverage5(full)[vertices]
        hover = None if hover is None else as_frame(hover, n_rows, "rows of vertices").iloc[rows]

    def reduce(arr, labels):
        """Per-row arrays follow the shown rows, fsaverage-mesh arrays are brought over; others pass."""
        if not _is_array(arr):
            return arr
        arr = np.asarray(arr)
        if labels and rows is not None and arr.ndim == 1 and len(arr) == n_rows:
            return arr[rows]
        if arr.ndim == 1 and len(arr) in (n7, 2 * n7):
            return fsaverage_to_fsaverage5(arr, method="pick" if labels else "mean")
        return arr

    return stat_map, vertices, reduce(roi_labels, True), reduce(bg_map, False), hover


def _is_array(x) -> bool:
    return x is not None and x is not False and not isinstance(x, str)


def per_mesh(arr, mesh: Mesh, rows, name: str, fill):
    """Scatter an array given per mesh vertex, per space vertex (2n) or per row onto the mesh.

    Parameters
    ----------
    arr : array, (n_mesh,), (2 * n_hemi,) or (n_rows,)
    mesh : jnecore.atlas.Mesh
    rows : tuple (rows_local (k,), rows_keep (k,), n_rows) or None
        Where the rows land (see :func:`place_values`); None: ``arr`` is per vertex.
    name : str
        Parameter name for errors.
    fill : object
        Value of the vertices no row lands on.

    Returns
    -------
    out : ndarray, (n_mesh,)
    """
    arr = np.asarray(arr)
    if arr.ndim != 1:
        raise InputError(name, f"must be 1-D, got shape {arr.shape}")
    n_mesh, n_hemi = mesh.n_vertices, space_size(mesh.space)
    if rows is not None and len(arr) == rows[2]:
        out = np.full(n_mesh, fill, dtype=object if arr.dtype.kind in "OUS" else float)
        out[rows[0]] = arr[rows[1]]
        return out
    if len(arr) == n_mesh:
        return arr
    if mesh.hemi != "both" and len(arr) == 2 * n_hemi:
        return arr[:n_hemi] if mesh.hemi == "left" else arr[n_hemi:]
    expected = f"{n_mesh} (mesh vertices)" + (f" or {rows[2]} (rows of vertices)" if rows is not None else "")
    raise InputError(name, f"has {len(arr)} entries; expected {expected}")


def place_values(stat_map, vertices, mesh: Mesh):
    """Values per mesh vertex, from full-mesh values or from values on given vertices.

    Parameters
    ----------
    stat_map : ndarray, (n_mesh,), (2 * n_hemi,) or (n_rows,)
    vertices : int array, (n_rows,), or None
        Index of each value's vertex in the L+R mesh of the space.
    mesh : jnecore.atlas.Mesh

    Returns
    -------
    values : ndarray of float64, (n_mesh,)
        NaN where no value lands.
    row_of : ndarray of int64, (n_mesh,)
        Input row behind each vertex (-1: none).
    rows : tuple (rows_local (k,), rows_keep (k,), n_rows) or None
        The k rows on this mesh: their local vertex, their row index; None for full-mesh input.
    """
    n_hemi, n_mesh = space_size(mesh.space), mesh.n_vertices
    if stat_map.ndim != 1:
        raise InputError("stat_map", f"must be 1-D, got shape {stat_map.shape}")
    if vertices is None and mesh.hemi != "both" and len(stat_map) == 2 * n_hemi:
        vertices = np.arange(2 * n_hemi)  # both-hemisphere values, one hemisphere drawn
    if vertices is None:
        values = per_mesh(stat_map, mesh, None, "stat_map", np.nan).astype(float)
        return values, np.arange(n_mesh), None
    vert = np.asarray(vertices, dtype=np.int64).ravel()
    if len(vert) != len(stat_map):
        raise InputError("vertices", f"has {len(vert)} entries but stat_map has {len(stat_map)}")
    if vert.size and (vert.min() < 0 or vert.max() >= 2 * n_hemi):
        raise InputError("vertices", f"must lie in [0, {2 * n_hemi}) for {mesh.space}")
    local = vert - (n_hemi if mesh.hemi == "right" else 0)
    rows_keep = np.flatnonzero((local >= 0) & (local < n_mesh))
    rows_local = local[rows_keep]
    values = np.full(n_mesh, np.nan)
    values[rows_local] = stat_map[rows_keep].astype(float)
    row_of = np.full(n_mesh, -1, dtype=np.int64)
    row_of[rows_local] = rows_keep
    return values, row_of, (rows_local, rows_keep, len(vert))


def vertex_labels(roi_labels, mesh: Mesh, rows):
    """ROI name per mesh vertex.

    Parameters
    ----------
    roi_labels : None, False, "mmp", or array of str, (n_mesh,) or (n_rows,)
        None: HCP-MMP1.0 on fsLR32k, no labels elsewhere; False: none.
    mesh : jnecore.atlas.Mesh
    rows : see :func:`place_values`

    Returns
    -------
    labels : ndarray of object, (n_mesh,), or None
        "" where a vertex has no name.
    """
    if roi_labels is None and mesh.space == "fsLR32k":
        roi_labels = "mmp"
    if isinstance(roi_labels, str):
        if roi_labels.lower() != "mmp" or mesh.space != "fsLR32k":
            raise InputError("roi_labels", "'mmp' needs space='fsLR32k'; pass an array of names otherwise")
        return mmp_labels(mesh.hemi)[0].astype(object)
    if not _is_array(roi_labels):
        return None
    labels = per_mesh(np.asarray(roi_labels, dtype=object), mesh, rows, "roi_labels", "")
    return np.array(["" if (x is None or (isinstance(x, float) and np.isnan(x))) else str(x) for x in labels],
                    dtype=object)


def background(bg_map, mesh: Mesh):
    """Background map per mesh vertex.

    Parameters
    ----------
    bg_map : "sulc", None, False, or array, (n_mesh,) or (2 * n_hemi,)
        "sulc": the space's sulcal depth; None / False: uniform grey.
    mesh : jnecore.atlas.Mesh

    Returns
    -------
    bg : ndarray of float, (n_mesh,), or None
    """
    if isinstance(bg_map, str):
        if bg_map != "sulc":
            raise InputError("bg_map", "must be 'sulc', None or an array")
        return np.asarray(load_sulc(mesh.space, mesh.hemi), dtype=float)
    if bg_map is None or bg_map is False:
        return None
    return per_mesh(np.asarray(bg_map, dtype=float), mesh, None, "bg_map", np.nan).astype(float)


def prepare_surface_data(stat_map, *, space, surf_mesh, hemi, vertices=None, roi_labels=None, bg_map="sulc",
                         hover=None) -> SurfaceData:
    """Load the mesh and place the map, labels, background and hover rows on it.

    Parameters are those of :func:`plot_surface_map` (fsaverage is drawn on fsaverage5).

    Returns
    -------
    data : SurfaceData
    """
    space = normalize_space(space)
    stat_map = np.asarray(stat_map)
    if space == "fsaverage":
        stat_map, vertices, roi_labels, bg_map, hover = to_fsaverage5(stat_map, vertices, roi_labels, bg_map, hover)
        space = "fsaverage5"
    mesh = load_mesh(space, surf_mesh, hemi)
    values, row_of, rows = place_values(stat_map, vertices, mesh)
    hover_df = as_frame(hover, mesh.n_vertices if rows is None else rows[2],
                        "mesh vertices" if rows is None else "rows of vertices")
    labels = vertex_labels(roi_labels, mesh, rows)
    # ROI names of the hover "roi" column (e.g. NSD ROIs of a bundle), for spaces without an atlas
    # and for outline / highlight names the atlas does not know
    row_labels = None
    if hover_df is not None and "roi" in hover_df and roi_labels is not False:
        row_labels = np.full(mesh.n_vertices, "", dtype=object)
        has = row_of >= 0
        row_labels[has] = hover_df["roi"].astype(str).to_numpy()[row_of[has]]
    return SurfaceData(mesh, values, row_of, hover_df, labels, row_labels, background(bg_map, mesh))


class DrawnMesh(NamedTuple):
    """Geometry of the drawn vertices, named as ``nilearn.surface.InMemoryMesh``.

    Not ``InMemoryMesh`` itself: importing ``nilearn.surface`` loads scikit-learn and SciPy
    (~2 s and ~90 MB more on ``import jnecore.plotting``; fsLR32k maps need no nilearn at all).

    Attributes
    ----------
    coordinates : ndarray of float32, (n_drawn, 3)
    faces : ndarray of uint16 or int32, (n_faces, 3)
    """

    coordinates: np.ndarray
    faces: np.ndarray


def drawn_mesh(mesh: Mesh, in_patch=None):
    """The sub-mesh that is drawn: the vertices in at least one face (all but a flat patch's cut).

    Parameters
    ----------
    mesh : jnecore.atlas.Mesh, (n_mesh vertices, n_faces faces)
    in_patch : ndarray of bool, (n_mesh,), optional
        ``mesh.in_patch`` if already computed.

    Returns
    -------
    keep : ndarray of int64, (n_drawn,)
        Mesh vertex of each drawn vertex.
    drawn : DrawnMesh
        ``coordinates`` float32 (n_drawn, 3); ``faces`` (n_faces, 3) indexing them, uint16 when
        n_drawn < 65536 (a smaller figure), int32 otherwise.
    """
    keep = np.flatnonzero(mesh.in_patch if in_patch is None else in_patch)
    remap = np.full(mesh.n_vertices, -1, dtype=np.int64)
    remap[keep] = np.arange(len(keep))
    fdtype = np.uint16 if len(keep) <= np.iinfo(np.uint16).max else np.int32
    faces = remap[mesh.faces].astype(fdtype)
    return keep, DrawnMesh(np.asarray(mesh.coords[keep], dtype=np.float32), faces)
