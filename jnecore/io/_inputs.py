"""Reading a run's inputs: responses in any supported format, ROI labels, categories, and the
checks that tie them to a space (mesh or volume).

Responses (:func:`read_responses`), chosen by extension and checked against the content:

- one array file (.npy, .npz[:key], .h5[:dataset], numeric .parquet / .csv): (N, V); the space is
  ``--space`` (default ``none``); ``--vertices`` gives each column's mesh vertex.
- GIfTI functional files, one per hemisphere (``lh.*.func.gii rh.*.func.gii``; the hemisphere
  comes from the GIfTI metadata or the file name, else the first file is left and the second
  right): data arrays are samples, or one (N, n_vertices) array.
- FreeSurfer .mgh / .mgz surface overlays (n_vertices, 1, 1, N), e.g. NSD's fsaverage betas:
  several files are sessions, concatenated in the order given, per hemisphere (lh.* / rh.*);
  the number of files and samples must agree between hemispheres.
- CIFTI-2 .dscalar.nii / .dtseries.nii: only the CORTEX_LEFT / CORTEX_RIGHT brain models are
  kept; vertex indices come from the brain models (fs_LR 32k for the standard 91282
  grayordinates).
- a 4-D NIfTI (or MGH volume) with ``--mask``: space ``volume``; vertex = the voxel's position
  among the mask's voxels (C order); voxel_i/j/k and x/y/z (mm, from the affine) are added as
  vertex columns and the affine, shape and mask go into the manifest.

The space is inferred from the vertices per hemisphere (32492 fsLR32k, 10242 fsaverage5,
163842 fsaverage); a given ``--space`` that does not fit the data is an error naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..validation import InputError
from ._neuro import (UNLABELLED_NAMES, file_kind, hemi_from_name, label_base_name, read_cifti_cortex,
                     read_cifti_labels, read_gifti_oriented, read_label_image, read_lookup, read_mgh_data,
                     read_surface_labels, read_volume)
from ..spaces import SURFACE_SPACES, space_size
from ._readers import read_array, read_labels, read_table

__all__ = ["Responses", "read_responses", "apply_vertices", "check_space", "read_rois", "read_categories",
           "MESH_SIZES", "UNLABELLED"]

#: vertices per hemisphere of each surface space (from the registry, :mod:`jnecore.spaces`)
MESH_SIZES = {name: space_size(name) for name in SURFACE_SPACES}
_SIZE_SPACE = {n: s for s, n in MESH_SIZES.items()}
UNLABELLED = "unlabelled"
SURFACE_KINDS = ("gifti", "mgh", "cifti")


@dataclass
class Responses:
    """Responses read from disk, with where each column lives.

    Attributes
    ----------
    data : ndarray (N, V) float32
    space : str, one of fsLR32k, fsaverage5, fsaverage, volume, none
    vertex : ndarray (V,) int64 or None (index into the space's mesh, L then R; voxel position
        in the mask for volumes)
    hemi : ndarray (V,) str or None ("left" / "right")
    kind : str, the reader used (array, gifti, mgh, cifti, volume)
    source : str, the file(s) for messages
    volume : dict or None (affine, shape, mask) for volume data
    extra_columns : {name: (V,) array} for vertices.parquet (voxel coordinates)
    warnings : list of str
    """

    data: np.ndarray
    space: str
    vertex: np.ndarray | None = None
    hemi: np.ndarray | None = None
    kind: str = "array"
    source: str = ""
    volume: dict | None = None
    extra_columns: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)

    @property
    def n_per_hemi(self) -> int | None:
        return MESH_SIZES.get(self.space)


def _space_for(n: int, given, source, *, kind: str) -> str:
    """The mesh space of surface data with ``n`` vertices per hemisphere."""
    if given in (None, "", "auto"):
        return _SIZE_SPACE.get(n, "none")
    if given in MESH_SIZES:
        if n != MESH_SIZES[given]:
            raise InputError(source, f"has {n} vertices per hemisphere but `space` {given} has {MESH_SIZES[given]}"
                                     + (f" (these look like {_SIZE_SPACE[n]} data)" if n in _SIZE_SPACE else ""))
        return given
    if given == "volume":
        raise InputError(source, f"holds surface data ({kind}) but `space` is volume")
    return given  # "none": tables only


def _pair_hemis(paths, hints, kind):
    """Group files into (left list, right list), keeping the given order within each."""
    if all(h is None for h in hints):
        if len(paths) == 1:
            return [paths[0]], []
        if len(paths) == 2:
            return [paths[0]], [paths[1]]
        raise InputError(paths[0], f"cannot tell the hemispheres of {len(paths)} {kind} files: "
                                   "name them lh.* / rh.* (or *.L.* / *.R.*)")
    missing = [p for p, h in zip(paths, hints) if h is None]
    if missing:
        raise InputError(missing[0], "cannot tell its hemisphere: name it lh.* / rh.* (or *.L.* / *.R.*)")
    left = [p for p, h in zip(paths, hints) if h == "left"]
    right = [p for p, h in zip(paths, hints) if h == "right"]
    if left and right and len(left) != len(right):
        raise InputError(right[0] if len(right) < len(left) else left[0],
                         f"{len(left)} left-hemisphere and {len(right)} right-hemisphere files: give lh/rh pairs")
    return left, right


def _surface(paths, space, kind) -> Responses:
    per_file = []
    assumed = {}
    for p in paths:
        if kind == "gifti":
            data, hint, assumed[p] = read_gifti_oriented(p, known_sizes=tuple(_SIZE_SPACE))
        else:
            what, data = read_mgh_data(p)
            if what == "volume":
                raise InputError(p, f"is an MGH volume of shape {tuple(int(s) for s in data.shape)}: surface overlays are "
                                    "(n_vertices, 1, 1, N); for a volume give `mask`")
            hint = hemi_from_name(p)
        per_file.append((p, data, hint))
    hints = [h for _, _, h in per_file]
    if len(per_file) == 1 and hints[0] is None:
        hints = ["left"]  # one file, one hemisphere: call it left
    left, right = _pair_hemis([p for p, _, _ in per_file], hints, kind)
    data_of = {p: d for p, d, _ in per_file}
    sizes = {p: d.shape[1] for p, d in data_of.items()}
    first = next(iter(sizes))
    def read_as(q):  # what was assumed about a GIfTI file's orientation, for the errors below
        return f" (its {assumed[q]})" if q in assumed else ""

    for p, n in sizes.items():
        if n != sizes[first]:
            raise InputError(p, f"has {n} vertices{read_as(p)} but {Path(first).name} has {sizes[first]}: "
                                "all files must be on one mesh")
    n = sizes[first]
    try:
        sp = _space_for(n, space, first, kind="GIfTI" if kind == "gifti" else "MGH")
    except InputError as exc:
        raise InputError(exc.source, exc.problem + read_as(first)) from None
    for lp, rp in zip(left, right):
        if data_of[lp].shape[0] != data_of[rp].shape[0]:
            raise InputError(rp, f"has {data_of[rp].shape[0]} samples but its left-hemisphere partner "
                                 f"{Path(lp).name} has {data_of[lp].shape[0]}")
    blocks, verts, hemis = [], [], []
    for hemi, files in (("left", left), ("right", right)):
        if not files:
            continue
        blocks.append(np.concatenate([data_of[p] for p in files], axis=0))
        verts.append(np.arange(n, dtype=np.int64) + (n if hemi == "right" else 0))
        hemis.append(np.full(n, hemi))
    data = np.concatenate(blocks, axis=1) if len(blocks) > 1 else blocks[0]
    warnings = []
    if sp == "none" and n not in _SIZE_SPACE:
        warnings.append(f"{Path(first).name}: {n} vertices per hemisphere is not a known mesh "
                        f"(fsLR32k, fsaverage5, fsaverage): space 'none', tables only{read_as(first)}")
    return Responses(data=data, space=sp, vertex=np.concatenate(verts), hemi=np.concatenate(hemis), kind=kind,
                     source=" ".join(map(str, paths)), warnings=warnings)


def read_responses(paths, *, space=None, mask=None) -> Responses:
    """Read responses from one array file or from neuroimaging files (see the module docstring).

    Parameters
    ----------
    paths : str or list of str
    space : None / "auto" (infer), or fsLR32k, fsaverage5, fsaverage, volume, none
    mask : path of a 3-D NIfTI mask, for volume responses
    """
    paths = [str(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)]
    if not paths:
        raise InputError("responses", "give at least one file")
    kinds = [file_kind(p) for p in paths]
    if len(set(kinds)) > 1:
        raise InputError(paths[kinds.index(kinds[-1])], f"mixes formats ({', '.join(sorted(set(k or '?' for k in kinds)))}): "
                                                        "give files of one format")
    kind = kinds[0]
    if kind in ("array", "table"):
        if len(paths) > 1:
            raise InputError(paths[1], "one array file holds all responses (N x V): give a single file")
        if mask is not None:
            raise InputError("mask", "applies to NIfTI volume responses only")
        sp = "none" if space in (None, "", "auto") else space
        return Responses(data=read_array(paths[0]), space=sp, kind="array", source=paths[0])
    if mask is not None and kind not in ("nifti", "mgh"):
        raise InputError("mask", "applies to NIfTI volume responses only")
    if kind in ("gifti", "mgh") and not (kind == "mgh" and mask is not None):
        return _surface(paths, space, kind)
    if kind == "cifti":
        if len(paths) > 1:
            raise InputError(paths[1], "one CIFTI file holds both hemispheres: give a single file")
        d = read_cifti_cortex(paths[0])
        sp = _space_for(d["n_per_hemi"], space, paths[0], kind="CIFTI")
        return Responses(data=d["data"], space=sp, vertex=d["vertex"], hemi=d["hemi"], kind="cifti", source=paths[0])
    if kind in ("nifti", "mgh"):
        if space not in (None, "", "auto", "volume"):
            raise InputError(paths[0], f"holds volume data but `space` is {space}: use `space` volume")
        if len(paths) > 1:
            raise InputError(paths[1], "give one 4-D volume file (concatenate runs beforehand)")
        d = read_volume(paths[0], mask, kind=kind)
        extra = {"voxel_i": d["ijk"][:, 0], "voxel_j": d["ijk"][:, 1], "voxel_k": d["ijk"][:, 2],
                 "x": d["xyz"][:, 0], "y": d["xyz"][:, 1], "z": d["xyz"][:, 2]}
        vol = {"affine": d["affine"].tolist(), "shape": list(d["shape"]), "mask": str(mask),
               "n_voxels": int(len(d["ijk"])), "vertex": "position of the voxel among the mask's voxels (C order)"}
        return Responses(data=d["data"], space="volume", vertex=np.arange(len(d["ijk"]), dtype=np.int64),
                         kind="volume", source=paths[0], volume=vol, extra_columns=extra)
    raise InputError(paths[0], f"unsupported extension {Path(paths[0]).suffix!r} for responses: use .npy, .npz, .h5, "
                               ".parquet, .csv, .func.gii, .mgh/.mgz, .dscalar.nii/.dtseries.nii or .nii[.gz] with `mask`")


def apply_vertices(resp: Responses, spec) -> Responses:
    """Set the mesh vertex of each column of array responses from a one-column table."""
    if resp.kind != "array":
        raise InputError("vertices", f"applies to array responses only: the vertices of {resp.source} come from the file")
    V = resp.data.shape[1]
    raw = read_labels(spec, n=V)
    if len(raw) != V:
        raise InputError(spec, f"has {len(raw)} vertex indices but {V} response columns were expected")
    try:
        resp.vertex = raw.astype(np.int64)
    except ValueError:
        raise InputError(spec, "vertex indices must be integers") from None
    return resp


def check_space(resp: Responses, *, vertices_source=None) -> Responses:
    """Check that the columns fit the space; fill ``vertex`` and ``hemi`` for mesh spaces.

    Mesh spaces need either 2 x n columns (both hemispheres, vertex = column) or a vertex index
    per column in [0, 2n) without repeats; ``hemi`` follows from the index.
    """
    V = resp.data.shape[1]
    src = vertices_source or resp.source
    if resp.space in MESH_SIZES:
        n = MESH_SIZES[resp.space]
        if resp.vertex is None:
            if V != 2 * n:
                raise InputError(resp.source, f"has {V} columns but `space` {resp.space} has {n} vertices per "
                                              f"hemisphere: give all {2 * n} (left then right), or `vertices` "
                                              "with the mesh vertex of each column")
            resp.vertex = np.arange(2 * n, dtype=np.int64)
        v = resp.vertex
        if len(v) and (v.min() < 0 or v.max() >= 2 * n):
            raise InputError(src, f"vertex indices must lie in [0, {2 * n}) for {resp.space} "
                                  f"({n} per hemisphere, left then right), got {int(v.min())}..{int(v.max())}")
        if len(np.unique(v)) != len(v):
            raise InputError(src, "repeats a vertex index")
        resp.hemi = np.where(v < n, "left", "right")
    elif resp.vertex is not None:
        v = resp.vertex
        if len(v) and v.min() < 0:
            raise InputError(src, "vertex indices must be >= 0")
        if len(np.unique(v)) != len(v):
            raise InputError(src, "repeats a vertex index")
    return resp


# ---------------------------------------------------------------- ROI labels


def _pick_lookup(path, lookups: dict):
    """The lookup table for label file ``path``: the only one given, one named like it, or a
    sibling ``<name>.ctab`` file."""
    if len(lookups) == 1:
        return next(iter(lookups.values()))
    base = label_base_name(path).lower()
    for lp, table in lookups.items():
        stem = Path(lp).name.lower()
        for suffix in (".ctab", ".txt", ".tsv", ".csv", ".lut"):
            if stem.endswith(suffix):
                stem = stem[: -len(suffix)]
        for suffix in (".mgz", ".mgh", ".nii.gz", ".nii"):
            if stem.endswith(suffix):
                stem = stem[: -len(suffix)]
        if stem == base:
            return table
    p = Path(path)
    for cand in (p.with_name(p.name + ".ctab"), p.parent / f"{label_base_name(p)}{''.join(p.suffixes[-1:])}.ctab",
                 p.parent / f"{label_base_name(p)}.ctab"):
        if cand.is_file():
            return read_lookup(cand)
    return None


def _name(values, table, path, warnings):
    """Integer label values -> names (object array; None = unlabelled)."""
    out = np.full(values.shape, None, dtype=object)
    if table is None:
        ok = values > 0
        if ok.any():
            warnings.append(f"{Path(path).name}: no lookup table (`lookups`, or a .ctab beside it): "
                            "ROIs are named by their integer values")
        out[ok] = values[ok].astype(str)
        return out
    unknown = sorted(set(np.unique(values[values > 0]).tolist()) - set(table))
    if unknown:
        raise InputError(path, f"holds label value{'s' if len(unknown) > 1 else ''} {', '.join(map(str, unknown[:5]))} "
                               "missing from its lookup table")
    for k, name in table.items():
        if str(name).strip().lower() in UNLABELLED_NAMES or (k <= 0 and str(name).strip().lower() in ("", "0")):
            continue
        out[values == k] = str(name).strip()
    return out


def read_rois(specs, resp: Responses, *, lookups=()) -> tuple:
    """ROI label of every response column: (labels (V,) str, warnings).

    ``specs``: one one-column table (V labels, or one per mesh vertex of the space) or label
    files: FreeSurfer .annot / .label, GIfTI .label.gii, .mgz / .mgh / .nii surface or volume
    label images (named through ``lookups``, NSD ``*.ctab`` files or .tsv tables, or a sibling
    ``<name>.ctab``), CIFTI .dlabel.nii. Where several files label one vertex the first wins
    (counted in the warnings). Vertices with no ROI are labelled ``"unlabelled"``.
    """
    specs = [str(s) for s in ([specs] if isinstance(specs, (str, Path)) else specs)]
    V = resp.data.shape[1]
    warnings = []
    tables = {str(p): read_lookup(p) for p in lookups}
    kinds = [file_kind(s) for s in specs]
    if all(k in ("table", "array") for k in kinds):
        if len(specs) > 1:
            raise InputError(specs[1], "give one ROI table (or label files per hemisphere)")
        n = resp.n_per_hemi
        labels = read_labels(specs[0], n=(V, 2 * n) if n else V)
        if len(labels) == V:
            return labels.astype(str), warnings
        if n and resp.vertex is not None and len(labels) == 2 * n:
            return labels[resp.vertex].astype(str), warnings
        expect = f"{V} response columns" + (f" (or {2 * n}, one per {resp.space} vertex)" if n else "")
        raise InputError(specs[0], f"has {len(labels)} ROI labels but {expect} were expected")
    if any(k in ("table", "array") for k in kinds):
        raise InputError(specs[kinds.index("table") if "table" in kinds else kinds.index("array")],
                         "mixes an ROI table with label files: give one or the other")
    for s, k in zip(specs, kinds):
        if k not in ("annot", "label", "gifti-label", "mgh", "nifti", "cifti-label"):
            raise InputError(s, f"unsupported ROI file {Path(s).name!r}: use .annot, .label, .label.gii, .mgz, "
                                ".nii[.gz], .dlabel.nii or a one-column table")
    if resp.space == "volume":
        if resp.volume is None:
            raise InputError(specs[0], "a label image needs volume responses read from a NIfTI with `mask`: "
                                       "for array responses give a one-column ROI table")
        full = np.full(resp.volume["shape"], None, dtype=object)
        for s, k in zip(specs, kinds):
            if k not in ("mgh", "nifti"):
                raise InputError(s, "is a surface label file but the responses are a volume")
            values, affine = read_label_image(s, k)
            if values.shape != tuple(resp.volume["shape"]):
                raise InputError(s, f"has shape {values.shape} but the responses' volume is {tuple(resp.volume['shape'])}")
            if not np.allclose(affine, np.asarray(resp.volume["affine"]), atol=1e-3):
                raise InputError(s, "its affine differs from the responses': resample it to the data grid")
            names = _name(values, _pick_lookup(s, tables), s, warnings)
            _merge(full, names, s, warnings)
        ijk = np.stack([resp.extra_columns[c] for c in ("voxel_i", "voxel_j", "voxel_k")], 1)
        labels = full[ijk[:, 0], ijk[:, 1], ijk[:, 2]]
        return _finish(labels), warnings
    n = resp.n_per_hemi
    if n is None or resp.vertex is None:
        raise InputError(specs[0], f"is a surface label file but the responses' space is {resp.space!r}: "
                                   "give `space` (and `vertices`) for a known mesh, or an ROI table")
    full = np.full(2 * n, None, dtype=object)
    only = set(resp.hemi.tolist()) if resp.hemi is not None else {"left", "right"}
    for s, k in zip(specs, kinds):
        if k == "cifti-label":
            keys, table, nn = read_cifti_labels(s)
            if nn != n:
                raise InputError(s, f"is on a mesh of {nn} vertices per hemisphere but the responses' space "
                                    f"{resp.space} has {n}")
            _merge(full, _name(keys, table, s, warnings), s, warnings)
            continue
        values, names, table, hemi = read_surface_labels(s, k, n_vertices=n)
        if hemi is None:
            if len(only) == 1:
                hemi = next(iter(only))
            else:
                raise InputError(s, "cannot tell its hemisphere: name it lh.* / rh.* (or *.L.* / *.R.*)")
        if names is None:
            if len(values) != n:
                raise InputError(s, f"has {len(values)} vertices but the responses' space {resp.space} has {n} "
                                    "per hemisphere")
            names = _name(values, table or _pick_lookup(s, tables), s, warnings)
        block = np.full(2 * n, None, dtype=object)
        sl = slice(0, n) if hemi == "left" else slice(n, 2 * n)
        block[sl] = names
        _merge(full, block, s, warnings)
    return _finish(full[resp.vertex]), warnings


def _merge(full, names, source, warnings):
    has = names != None  # noqa: E711 (object arrays)
    taken = full != None  # noqa: E711
    clash = has & taken & (full != names)
    if clash.any():
        warnings.append(f"{Path(source).name}: {int(clash.sum())} vertices already have an ROI from an earlier "
                        "file; the earlier label is kept")
    put = has & ~taken
    full[put] = names[put]


def _finish(labels) -> np.ndarray:
    out = np.asarray([UNLABELLED if x is None else str(x) for x in labels], dtype=object)
    return out.astype(str)


# ---------------------------------------------------------------- categories

_KEY_COLUMNS = ("stimulus", "stimulus_id", "stim", "id", "nsdid", "nsd_id", "image", "image_id")
_CAT_COLUMNS = ("category", "supercategory", "label", "group", "class")


def _norm_key(x) -> str:
    s = str(x).strip()
    try:
        f = float(s)
        if np.isfinite(f) and f == int(f):
            return str(int(f))
    except ValueError:
        pass
    return s


def read_categories(spec, n: int, stimulus_ids=None) -> np.ndarray:
    """Category of each of ``n`` stimuli: (n,) str.

    ``spec``: a one-column table in row order (n labels), or a table keyed by stimulus id with
    a key column (stimulus / stimulus_id / id / nsdId / image) and a category column
    (category / supercategory / label / group / class). Keys are compared as text, integers
    without leading zeros (``"007"`` matches ``"7"``). ``stimulus_ids`` default to the row
    numbers 0..n-1.
    """
    df = read_table(spec)
    if df.shape[1] == 1:
        values = read_labels(spec, n=n)
        if len(values) != n:
            raise InputError(spec, f"has {len(values)} categories but {n} stimuli were expected")
        return values.astype(str)
    cols = {str(c).lower(): c for c in df.columns}
    key = next((cols[c] for c in _KEY_COLUMNS if c in cols), None)
    cat = next((cols[c] for c in _CAT_COLUMNS if c in cols), None)
    if key is None or cat is None:
        raise InputError(spec, f"has {df.shape[1]} columns ({', '.join(map(str, df.columns[:5]))}): give one column "
                               "of categories in row order, or a 'stimulus' column and a 'category' column")
    keys = [_norm_key(k) for k in df[key]]
    values = df[cat].astype(str).str.strip().to_numpy()
    lut = {}
    for k, v in zip(keys, values):
        if k in lut and lut[k] != v:
            raise InputError(spec, f"gives stimulus {k!r} two categories ({lut[k]!r} and {v!r})")
        lut[k] = v
    ids = [_norm_key(i) for i in (stimulus_ids if stimulus_ids is not None else range(n))]
    if len(ids) != n:
        raise InputError(spec, f"{len(ids)} stimulus ids for {n} stimuli")
    missing = [i for i in ids if i not in lut]
    if missing:
        raise InputError(spec, f"has no category for {len(missing)} of {n} stimuli (e.g. stimulus {missing[0]!r})")
    return np.asarray([lut[i] for i in ids], dtype=str)
