"""Volume results on the fsaverage5 surface (a visualisation aid, not a registration).

A bundle in space ``volume`` holds one row per modelled voxel (``voxel_i/j/k`` columns, the
affine and grid shape in ``manifest["volume"]``). When the volume is in MNI space
(``jne run --volume-space mni``, recorded as ``manifest["volume"]["space"] = "mni"``) its values
can be sampled onto the bundled fsaverage5 meshes with nilearn's ``vol_to_surf``.

The fsaverage5 pial / white meshes are in FreeSurfer's MNI305-like template coordinates, close to
but not identical with MNI152 (differences of a few mm): a projected map shows where the results
lie roughly, it is not a registration of the subject's cortex. Volumes in native (scanner) space
have no such correspondence and are shown as tables only.
"""

from __future__ import annotations

import numpy as np

from ..spaces import SURFACE_SPACES, space_size

__all__ = ["volume_to_fsaverage5", "volume_space", "surface_view_available", "VOLUME_SPACES"]

VOLUME_SPACES = ("native", "mni")
_MESH_SPACES = SURFACE_SPACES
_N5 = space_size("fsaverage5")


def volume_space(manifest: dict) -> str | None:
    """The space of a volume bundle's voxels: "mni" or "native" (older bundles without the
    record count as native); None when the bundle is not a volume."""
    if not isinstance(manifest, dict) or manifest.get("space") != "volume":
        return None
    vol = manifest.get("volume") or {}
    space = str(vol.get("space") or "native").lower() if isinstance(vol, dict) else "native"
    return space if space in VOLUME_SPACES else "native"


def surface_view_available(manifest: dict) -> bool:
    """Whether a bundle's results can be drawn on a cortical surface: surface spaces (fsLR32k,
    fsaverage5, fsaverage) always; volume bundles only when in MNI space with an affine and grid
    shape recorded; everything else (native volumes, space none) is shown as tables."""
    if not isinstance(manifest, dict):
        return False
    space = manifest.get("space")
    if space in _MESH_SPACES:
        return True
    if volume_space(manifest) != "mni":
        return False
    vol = manifest.get("volume") or {}
    try:
        affine = np.asarray(vol["affine"], dtype=float)
        shape = tuple(int(s) for s in vol["shape"])
    except (KeyError, TypeError, ValueError):
        return False
    return affine.shape == (4, 4) and len(shape) == 3


def volume_to_fsaverage5(values, ijk, affine, shape, *, radius=3.0, kind="line") -> np.ndarray:
    """Project per-voxel values onto the bundled fsaverage5 surface.

    The values are scattered into a 3-D grid (weight 1 in the given voxels with a finite value,
    0 elsewhere) and both the weighted values and the weights are sampled with
    ``nilearn.surface.vol_to_surf``; each vertex gets their ratio, i.e. the interpolation-weighted
    mean of the modelled voxels it samples. Vertices that sample no modelled voxel are NaN (shown
    as background), never 0.

    The fsaverage5 meshes are in MNI305-like coordinates: this is a visualisation aid for MNI
    volumes, not a registration.

    Parameters
    ----------
    values : array, (n_voxels,)
        One value per voxel; NaN = no value (the voxel counts as not modelled).
    ijk : int array, (n_voxels, 3)
        Voxel indices into the grid (the bundle's ``voxel_i``, ``voxel_j``, ``voxel_k``).
    affine : array, (4, 4)
        Voxel-to-mm affine of the grid.
    shape : sequence of 3 ints
        Grid shape.
    radius : float
        Sampling neighbourhood in mm for ``kind="ball"``.
    kind : {"line", "depth", "ball"}
        "line" / "depth": samples along the line joining each pial vertex to its white-matter
        vertex (nilearn's "depth" strategy with ``inner_mesh`` = white); "ball": samples in a
        ball of ``radius`` mm around each pial vertex.

    Returns
    -------
    texture : ndarray of float, (20484,)
        Left hemisphere's 10242 vertices then the right's.
    """
    import nibabel as nib
    from nilearn.surface import InMemoryMesh, vol_to_surf

    from ._meshes import load_mesh

    values = np.asarray(values, dtype=float).reshape(-1)
    ijk = np.asarray(ijk)
    shape = tuple(int(s) for s in shape)
    affine = np.asarray(affine, dtype=float)
    if ijk.ndim != 2 or ijk.shape[1] != 3 or len(ijk) != len(values):
        raise ValueError(f"ijk must be (n_voxels, 3) with n_voxels = {len(values)}, got {ijk.shape}")
    if len(shape) != 3 or affine.shape != (4, 4):
        raise ValueError(f"need a 3-D grid shape and a (4, 4) affine, got {shape} and {affine.shape}")
    if kind not in ("line", "depth", "ball"):
        raise ValueError(f"kind must be 'line', 'depth' or 'ball', got {kind!r}")
    ijk = ijk.astype(np.int64)
    inside = np.all((ijk >= 0) & (ijk < np.asarray(shape)), axis=1)
    ok = inside & np.isfinite(values)
    grid = np.zeros(shape + (2,), dtype=np.float32)
    i, j, k = ijk[ok].T
    grid[i, j, k, 0] = values[ok]
    grid[i, j, k, 1] = 1.0
    img = nib.Nifti1Image(grid, affine)
    out = np.full(2 * _N5, np.nan)
    if not ok.any():
        return out
    for h, hemi in enumerate(("left", "right")):
        pial = load_mesh("fsaverage5", "pial", hemi)
        mesh = InMemoryMesh(np.asarray(pial.coords, dtype=float), np.asarray(pial.faces))
        if kind == "ball":
            tex = vol_to_surf(img, mesh, radius=radius, kind="ball")
        else:
            white = load_mesh("fsaverage5", "white", hemi)
            inner = InMemoryMesh(np.asarray(white.coords, dtype=float), np.asarray(white.faces))
            tex = vol_to_surf(img, mesh, inner_mesh=inner, kind="depth")
        tex = np.asarray(tex, dtype=float).reshape(-1, 2)
        num, weight = tex[:, 0], tex[:, 1]
        with np.errstate(invalid="ignore", divide="ignore"):
            proj = np.where(weight > 1e-6, num / np.where(weight > 1e-6, weight, 1.0), np.nan)
        out[h * _N5:(h + 1) * _N5] = proj
    return out
