"""NSD's own transforms between its subject volumes, native surfaces and fsaverage.

The Natural Scenes Dataset ships, per subject, in ``nsddata/ppdata/subjXX/transforms/``:

- ``{lh,rh}.white-to-fsaverage.mgz``: for each fsaverage vertex (163842 per hemisphere), the
  1-based index of its nearest vertex on the subject's native (white) surface. Native surface
  maps (ROI labels, results) are carried to fsaverage by nearest neighbour:
  ``fsaverage_value[v] = native_value[index[v] - 1]``.
- ``{lh,rh}.func1pt8-to-layerB{1,2,3}.mgz``: for each native vertex, its position in the
  func1pt8mm volume at three cortical depths (layer B1 near the pial surface to B3 near the
  white surface), as 1-based decimal voxel (matrix) coordinates in the array order of the
  volume as nibabel reads it; 9999 marks a vertex without a position.

A volume map is carried to fsaverage as NSD does for its surface betas: sample it at each depth,
average the depths, then take each fsaverage vertex's nearest native vertex.

Why not NSD's ``nsdcode`` package (``nsd_mapdata``; PyPI nsdcode 1.1.dev260054000, read here)?
It pins scikit-learn 0.23.2 and nibabel 3.1.0, uses ``np.int`` (gone since NumPy 1.24) in its
surface-to-fsaverage path, checks the volume bounds on coordinates it has already made 0-based
(points within the first voxel plane count as outside, points up to a voxel past the last one
as inside), and turns NaN voxels into zeros before interpolating, so voxels outside a result's
mask pull the sampled values towards 0. The few lines it takes are written here on nibabel and
:func:`scipy.ndimage.map_coordinates` instead, with sampling restricted to the modelled voxels.

Sampling is linear (``nsd_mapdata`` defaults to cubic; linear keeps a masked map's values within
the range of the voxels it samples): each point gets the interpolation-weighted mean of the
modelled voxels among its 8 neighbours (voxels outside the map or with a non-finite value have
weight 0); a point with no modelled neighbour (or 9999, or wholly outside the grid) gets NaN.
The depth average is over the depths with a value.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..validation import InputError

__all__ = ["NSD_NO_COORDINATE", "FSAVERAGE_N", "NSD_LAYERS", "read_white_to_fsaverage", "read_layer_coords",
           "carry_to_fsaverage", "sample_volume", "sample_depths", "nsd_volume_to_fsaverage"]

#: NSD's marker for "no coordinate" in the func1pt8-to-layerB transforms
NSD_NO_COORDINATE = 9999
#: vertices per hemisphere of fsaverage
FSAVERAGE_N = 163842
#: NSD's three cortical depths
NSD_LAYERS = ("layerB1", "layerB2", "layerB3")


def _read_surface_array(path) -> np.ndarray:
    """(n_vertices, k) float64 of an NSD surface file (.mgz of shape (n, 1, 1[, k]) or (n, k))."""
    from ..io._neuro import _get_data, _load

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file (an NSD transform: set `transforms_dir`)")
    img = _load(path, "mgh" if path.name.lower().endswith((".mgz", ".mgh")) else "nifti")
    data = _get_data(img, path, dtype=np.float64)
    return data.reshape(data.shape[0], -1, order="F")


def read_white_to_fsaverage(path, *, n_native: int | None = None, n_fsaverage: int | None = FSAVERAGE_N) -> np.ndarray:
    """The 0-based native vertex nearest to each fsaverage vertex, from NSD's
    ``{hemi}.white-to-fsaverage.mgz`` (stored 1-based).

    Parameters
    ----------
    path : the transform file
    n_native : vertices of the native map it will index (checked when given)
    n_fsaverage : vertices it must have (163842; None = any)

    Returns
    -------
    index : ndarray of int64, (n_fsaverage,)
    """
    a = _read_surface_array(path)
    if a.shape[1] != 1:
        raise InputError(path, f"has {a.shape[1]} values per vertex: a white-to-fsaverage transform has one "
                               "(the 1-based native vertex)")
    a = a[:, 0]
    if n_fsaverage is not None and len(a) != n_fsaverage:
        raise InputError(path, f"has {len(a)} entries but the target mesh has {n_fsaverage} vertices per hemisphere "
                               "(fsaverage: 163842): not a white-to-fsaverage transform for it")
    if not np.all(np.isfinite(a)) or np.any(a != np.round(a)) or a.min() < 1:
        raise InputError(path, "must hold positive integers (1-based native vertex indices)")
    if n_native is not None and a.max() > n_native:
        raise InputError(path, f"points at native vertex {int(a.max())} but the native map has {n_native} vertices: "
                               "it belongs to another subject or surface")
    return a.astype(np.int64) - 1


def read_layer_coords(path, *, n_native: int | None = None) -> np.ndarray:
    """0-based voxel coordinates of each native vertex at one depth, from NSD's
    ``{hemi}.func1pt8-to-layerB{1,2,3}.mgz`` (stored 1-based; 9999 = none).

    Returns
    -------
    coords : ndarray of float64, (n_native, 3); NaN rows where the file has 9999 or a non-finite value
    """
    a = _read_surface_array(path)
    if a.shape[1] != 3:
        raise InputError(path, f"has {a.shape[1]} values per vertex: a volume-to-surface transform has 3 "
                               "(voxel coordinates)")
    if n_native is not None and len(a) != n_native:
        raise InputError(path, f"has {len(a)} vertices but the other transforms of this hemisphere have {n_native}")
    bad = ~np.all(np.isfinite(a), axis=1) | np.any(a == NSD_NO_COORDINATE, axis=1)
    out = a - 1.0
    out[bad] = np.nan
    return out


def carry_to_fsaverage(values, index) -> np.ndarray:
    """Native-surface values on fsaverage by nearest neighbour: ``values[index]``.

    Parameters
    ----------
    values : array, (n_native, ...) ; index : int array, (n_fsaverage,) 0-based (from
        :func:`read_white_to_fsaverage`)

    Returns
    -------
    ndarray, (n_fsaverage, ...)
    """
    values, index = np.asarray(values), np.asarray(index, dtype=np.int64)
    if len(index) and (index.min() < 0 or index.max() >= len(values)):
        raise ValueError(f"index points past the {len(values)} native values")
    return values[index]


def _check_voxels(values, ijk, shape):
    """(V, K) float64 values, (V, 3) int64 voxel indices and the grid shape, checked."""
    values = np.asarray(values, dtype=np.float64)
    values = values[:, None] if values.ndim == 1 else values
    ijk = np.asarray(ijk, dtype=np.int64)
    shape = tuple(int(s) for s in shape)
    if ijk.ndim != 2 or ijk.shape[1] != 3 or len(ijk) != len(values):
        raise ValueError(f"ijk must be (n_voxels, 3) with n_voxels = {len(values)}, got {ijk.shape}")
    if len(shape) != 3 or (len(ijk) and (ijk.min() < 0 or np.any(ijk.max(0) >= np.asarray(shape)))):
        raise ValueError(f"ijk must index a 3-D grid of shape {shape}")
    return values, ijk, shape


def sample_volume(values, ijk, shape, coords) -> np.ndarray:
    """Linear interpolation of voxel values at points, over the modelled voxels only.

    Parameters
    ----------
    values : array, (V,) or (V, K)
        One value (or K values) per modelled voxel; non-finite = not modelled (for that column).
    ijk : int array, (V, 3)
        The voxels' indices into the grid.
    shape : 3 ints
        The grid's shape.
    coords : array, (n_points, 3)
        0-based decimal voxel coordinates; NaN rows = no position.

    Returns
    -------
    ndarray of float64, (n_points,) or (n_points, K)
        The interpolation-weighted mean of the modelled voxels among each point's 8 neighbours;
        NaN where none has weight (no position, outside the grid, no modelled neighbour).
    """
    from scipy.ndimage import map_coordinates

    flat = np.ndim(values) == 1
    values, ijk, shape = _check_voxels(values, ijk, shape)
    coords = np.asarray(coords, dtype=np.float64).reshape(-1, 3)
    ok = np.all(np.isfinite(coords), axis=1)
    out = np.full((len(coords), values.shape[1]), np.nan)
    pts = coords[ok].T
    for c in range(values.shape[1]):
        fin = np.isfinite(values[:, c])
        num, den = np.zeros(shape), np.zeros(shape)
        i, j, k = ijk[fin].T
        num[i, j, k], den[i, j, k] = values[fin, c], 1.0
        top = map_coordinates(num, pts, order=1, mode="grid-constant", cval=0.0)
        bottom = map_coordinates(den, pts, order=1, mode="grid-constant", cval=0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[ok, c] = np.where(bottom > 1e-9, top / np.where(bottom > 1e-9, bottom, 1.0), np.nan)
    return out[:, 0] if flat else out


def sample_depths(values, ijk, shape, coords_by_depth) -> np.ndarray:
    """:func:`sample_volume` at each depth, then the mean over the depths with a value.

    Parameters
    ----------
    values, ijk, shape : as for :func:`sample_volume`
    coords_by_depth : sequence of arrays, each (n_native, 3) (0-based; NaN = none)

    Returns
    -------
    ndarray of float64, (n_native,) or (n_native, K); NaN where no depth has a value
    """
    samples = np.stack([sample_volume(values, ijk, shape, c) for c in coords_by_depth])
    with np.errstate(invalid="ignore"):
        n = np.isfinite(samples).sum(0)
        total = np.nansum(samples, axis=0)
        return np.where(n > 0, total / np.maximum(n, 1), np.nan)


def nsd_volume_to_fsaverage(values, ijk, shape, transforms_dir, *, layers=NSD_LAYERS,
                            volume_pattern: str = "{hemi}.func1pt8-to-{layer}.mgz",
                            surface_pattern: str = "{hemi}.white-to-fsaverage.mgz") -> np.ndarray:
    """Carry func1pt8mm voxel values to fsaverage through a subject's NSD transforms.

    For each hemisphere: sample at the native vertices' positions at each depth
    (``{hemi}.func1pt8-to-layerB{1,2,3}.mgz``, :func:`sample_depths`), then give each fsaverage
    vertex the value of its nearest native vertex (``{hemi}.white-to-fsaverage.mgz``).

    Parameters
    ----------
    values : array, (V,) or (V, K)
        Values of the modelled voxels (NaN = none), e.g. a volume bundle's JNE column.
    ijk : int array, (V, 3)
        Their voxel indices in the func1pt8mm grid (a bundle's ``voxel_i/j/k``).
    shape : 3 ints
        The func1pt8mm grid's shape (NSD: (81, 104, 83) for subject 1).
    transforms_dir : path
        ``nsddata/ppdata/subjXX/transforms``.
    layers : depths to average; volume_pattern, surface_pattern : the file names

    Returns
    -------
    ndarray of float64, (2 * 163842,) or (2 * 163842, K)
        Left hemisphere then right; NaN where no modelled voxel is sampled.
    """
    d = Path(transforms_dir)
    out = []
    for hemi in ("lh", "rh"):
        coords = [read_layer_coords(d / volume_pattern.format(hemi=hemi, layer=layer)) for layer in layers]
        n_native = len(coords[0])
        for layer, c in zip(layers[1:], coords[1:]):
            if len(c) != n_native:
                raise InputError(d / volume_pattern.format(hemi=hemi, layer=layer),
                                 f"has {len(c)} vertices but {volume_pattern.format(hemi=hemi, layer=layers[0])} "
                                 f"has {n_native}")
        index = read_white_to_fsaverage(d / surface_pattern.format(hemi=hemi), n_native=n_native)
        out.append(carry_to_fsaverage(sample_depths(values, ijk, shape, coords), index))
    return np.concatenate(out)
