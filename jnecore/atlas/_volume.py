"""Volume results on a cortical surface.

A bundle in space ``volume`` holds one row per modelled voxel (``voxel_i/j/k`` columns, the
affine and grid shape in ``manifest["volume"]``). It can be drawn on a surface two ways
(:func:`surface_route`):

- ``"nsd"``: an NSD func1pt8mm bundle (``jne nsd-prepare --space func1pt8mm``) whose manifest
  records the subject's NSD transforms folder, when that folder is at hand: the values are carried
  to fsaverage through NSD's own transforms (:func:`jnecore.atlas.nsd_volume_to_fsaverage`: the
  subject's cortical depths, then white-to-fsaverage), a registration, not a projection.
- ``"mni"``: when the volume is in MNI space
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

__all__ = ["volume_to_fsaverage5", "volume_space", "surface_view_available", "surface_route", "nsd_transforms_dir",
           "VOLUME_SPACES"]

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


def _grid_ok(vol: dict) -> bool:
    try:
        affine = np.asarray(vol["affine"], dtype=float)
        shape = tuple(int(s) for s in vol["shape"])
    except (KeyError, TypeError, ValueError):
        return False
    return affine.shape == (4, 4) and len(shape) == 3


def nsd_transforms_dir(manifest: dict):
    """The NSD transforms folder a func1pt8mm volume bundle records (``manifest["volume"]["nsd"]
    ["transforms_dir"]``), when it holds every file :func:`~jnecore.atlas.nsd_volume_to_fsaverage`
    reads (``{lh,rh}.func1pt8-to-layerB{1,2,3}.mgz`` and ``{lh,rh}.white-to-fsaverage.mgz``);
    else None.

    Returns
    -------
    pathlib.Path or None
    """
    from pathlib import Path

    from ._nsd_transforms import NSD_LAYERS

    if volume_space(manifest) is None:
        return None
    vol = manifest.get("volume")
    nsd = vol.get("nsd") if isinstance(vol, dict) else None
    tdir = nsd.get("transforms_dir") if isinstance(nsd, dict) else None
    if not isinstance(tdir, str) or not tdir or not _grid_ok(vol):
        return None
    d = Path(tdir)
    names = [f"{h}.func1pt8-to-{layer}.mgz" for h in ("lh", "rh") for layer in NSD_LAYERS]
    names += [f"{h}.white-to-fsaverage.mgz" for h in ("lh", "rh")]
    return d if all((d / n).is_file() for n in names) else None


def surface_route(manifest: dict) -> str | None:
    """How a bundle's results reach a cortical surface.

    Returns
    -------
    "surface" (fsLR32k, fsaverage5, fsaverage bundles), "nsd" (a volume bundle with its NSD
    transforms at hand: :func:`nsd_transforms_dir`), "mni" (an MNI volume with affine and grid:
    projected onto fsaverage5), or None (native volumes without transforms, space none: tables).
    """
    if not isinstance(manifest, dict):
        return None
    if manifest.get("space") in _MESH_SPACES:
        return "surface"
    if nsd_transforms_dir(manifest) is not None:
        return "nsd"
    if volume_space(manifest) == "mni" and _grid_ok(manifest.get("volume") or {}):
        return "mni"
    return None


def surface_view_available(manifest: dict) -> bool:
    """Whether a bundle's results can be drawn on a cortical surface (:func:`surface_route` is not
    None): surface spaces always; volume bundles with their NSD transforms at hand or in MNI space;
    everything else (native volumes without transforms, space none) is shown as tables."""
    return surface_route(manifest) is not None


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
