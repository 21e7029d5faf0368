"""Neuroimaging file readers (nibabel): GIfTI, FreeSurfer MGH/MGZ, annot and label, CIFTI-2, NIfTI.

Each function reads one file and returns plain numpy arrays; every failure is an
:class:`~jnecore.validation.InputError` naming the file. Which function applies is decided by
:func:`file_kind` from the (double) extension, and the content is checked against it.

Conventions
-----------
- Responses come out as (N samples, n vertices or voxels) float32.
- A surface label map comes out as an int array (n_vertices,) plus a ``{value: name}`` table
  when the file carries one (GIfTI label table, FreeSurfer annot colour table, CIFTI label table).
- Hemisphere hints come from the file name (``lh.*``, ``rh.*``, ``*.L.*``, ``*.R.*``,
  ``hemi-L`` / ``hemi-R``, ``left`` / ``right``) or from GIfTI metadata
  (``AnatomicalStructurePrimary`` = ``CortexLeft`` / ``CortexRight``).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..validation import InputError
from ._limits import check_image_claim
from ._readers import check_file, describe_kind, sniff

__all__ = ["file_kind", "hemi_from_name", "read_gifti_data", "read_gifti_oriented", "read_mgh_data",
           "read_cifti_cortex", "read_volume", "read_lookup", "read_label_image", "read_surface_labels",
           "read_cifti_labels", "label_base_name", "UNLABELLED_NAMES"]

# label names that mean "no ROI" (compared lower-case)
UNLABELLED_NAMES = {"", "unknown", "???", "none", "medial_wall", "medial wall", "background", "unlabelled",
                    "unlabeled", "nan", "corpuscallosum"}

_KINDS = (
    (".dscalar.nii", "cifti"), (".dtseries.nii", "cifti"), (".dlabel.nii", "cifti-label"),
    (".label.gii.gz", "gifti-label"), (".label.gii", "gifti-label"), (".gii.gz", "gifti"), (".gii", "gifti"),
    (".nii.gz", "nifti"), (".nii", "nifti"), (".mgz", "mgh"), (".mgh", "mgh"),
    (".annot", "annot"), (".label", "label"),
    (".npy", "array"), (".npz", "array"), (".h5", "array"), (".hdf5", "array"),
    (".parquet", "table"), (".csv", "table"), (".tsv", "table"), (".txt", "table"),
)
_CONTENT = {"cifti": ("nifti", "gzip"), "cifti-label": ("nifti", "gzip"), "gifti": ("xml", "gzip"),
            "gifti-label": ("xml", "gzip"), "nifti": ("nifti", "gzip"), "mgh": ("mgh", "gzip")}
_FORMAT_NAMES = {"cifti": "CIFTI-2", "cifti-label": "CIFTI-2 label", "gifti": "GIfTI", "gifti-label": "GIfTI label",
                 "nifti": "NIfTI", "mgh": "FreeSurfer MGH/MGZ", "annot": "FreeSurfer annot",
                 "label": "FreeSurfer label"}


def file_kind(path) -> str:
    """The reader for ``path`` from its extension: cifti, cifti-label, gifti, gifti-label, nifti,
    mgh, annot, label, array, table, or ``""`` when unknown. A ``FILE:key`` suffix is ignored."""
    name = str(path).lower()
    for suffix in (".npz:", ".h5:", ".hdf5:"):
        i = name.find(suffix)
        if i >= 0:
            return "array"
    for suffix, kind in _KINDS:
        if name.endswith(suffix):
            return kind
    return ""


def _check(path, kind) -> Path:
    path = check_file(path)
    got = sniff(path)
    if got == "pickle":
        raise InputError(path, "holds a Python pickle, which is refused (loading it can run code)")
    if kind in _CONTENT and got not in _CONTENT[kind]:
        raise InputError(path, f"is not a {_FORMAT_NAMES[kind]} file: its content looks like {describe_kind(got)}")
    if kind == "mgh" and str(path).lower().endswith(".mgh") and got != "mgh":
        raise InputError(path, f"is not an MGH file: its content looks like {describe_kind(got)}")
    return path


def _load(path, kind):
    import nibabel as nib

    path = _check(path, kind)
    try:
        img = nib.load(str(path))
    except Exception as exc:  # nibabel raises ImageFileError, EOFError, ExpatError, zlib errors...
        msg = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise InputError(path, f"not a readable {_FORMAT_NAMES.get(kind, kind)} file, truncated or damaged ({msg})") from None
    if kind in ("nifti", "mgh", "cifti", "cifti-label"):  # header parsed, data not read yet
        check_image_claim(img, path)
    return img


def _get_data(img, path, dtype=np.float32):
    try:
        return np.asarray(img.get_fdata(dtype=dtype)) if dtype is not None else np.asanyarray(img.dataobj)
    except Exception as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(path, f"is truncated or damaged: its data cannot be read ({msg})") from None


_LEFT = re.compile(r"(^(lh|l)[._-])|([._-](lh|l)[._-])|hemi-(l|left)([._-]|$)|(^|[._-])left([._-]|$)|cortexleft")
_RIGHT = re.compile(r"(^(rh|r)[._-])|([._-](rh|r)[._-])|hemi-(r|right)([._-]|$)|(^|[._-])right([._-]|$)|cortexright")


def hemi_from_name(path) -> str | None:
    """"left", "right" or None from a file name (lh.*, rh.*, *.L.*, hemi-R, ...)."""
    name = Path(str(path)).name.lower()
    left, right = bool(_LEFT.search(name)), bool(_RIGHT.search(name))
    if left == right:
        return None
    return "left" if left else "right"


def _gifti_hemi(img) -> str | None:
    metas = [getattr(img, "meta", None)] + [getattr(d, "meta", None) for d in img.darrays[:1]]
    for meta in metas:
        if meta is None:
            continue
        try:
            value = dict(meta).get("AnatomicalStructurePrimary", "")
        except Exception:
            value = ""
        value = str(value).lower()
        if "left" in value:
            return "left"
        if "right" in value:
            return "right"
    return None


def _n(k: int, word: str) -> str:
    return f"{k} {word}" if k == 1 else f"{k} {word}s"


#: GIfTI intents of mesh geometry (nibabel.nifti1.intent_codes): coordinates and triangles, not data
_MESH_INTENTS = {1008: "pointset (vertex coordinates)", 1009: "triangle"}


def read_gifti_data(path, *, known_sizes=()) -> tuple:
    """A GIfTI functional file (.gii or .gii.gz) as (data (N, n_vertices) float32, hemi hint or None).

    See :func:`read_gifti_oriented`, which also says how the data arrays were oriented.
    """
    data, hint, _ = read_gifti_oriented(path, known_sizes=known_sizes)
    return data, hint


def read_gifti_oriented(path, *, known_sizes=()) -> tuple:
    """A GIfTI functional file as (data (N, n_vertices) float32, hemi hint or None, assumed).

    The orientation comes from the data arrays' intents and the mesh, not from the shape alone:

    - arrays with a mesh intent (pointset, triangle) are refused: a surface, not data;
    - several data arrays are samples, one per array ((V,) or (V, 1) each);
    - one 2-D array (a, b) has vertices along the axis whose length is a mesh size in
      ``known_sizes``; when neither or both are, along the first axis, GIfTI's convention
      (Dim0 indexes vertices, for time series, shapes and plain values alike). So a single map
      (V, 1) is one sample of V vertices.

    ``assumed`` says in words which reading was taken (the callers add it to their errors).
    """
    img = _load(path, "gifti")
    darrays = list(getattr(img, "darrays", []))
    if not darrays:
        raise InputError(path, "holds no data arrays")
    mesh = sorted({_MESH_INTENTS[d.intent] for d in darrays if getattr(d, "intent", 0) in _MESH_INTENTS})
    if mesh:
        raise InputError(path, f"holds a surface mesh ({', '.join(mesh)} arrays), not vertex values: "
                               "give a functional GIfTI (.func.gii / .shape.gii)")
    try:
        arrays = [np.asarray(d.data) for d in darrays]
    except Exception as exc:
        raise InputError(path, f"is truncated or damaged ({type(exc).__name__})") from None
    known = set(int(k) for k in known_sizes)
    if len(arrays) == 1 and arrays[0].ndim == 2:
        a = arrays[0]
        r, c = a.shape
        if c in known and r not in known:
            data, assumed = a, f"one ({r}, {c}) array read as {_n(r, 'sample')} of {c} vertices ({c} is a mesh size)"
        else:
            why = f"{r} is a mesh size" if r in known else "GIfTI's first dimension indexes vertices"
            data, assumed = a.T, f"one ({r}, {c}) array read as {_n(c, 'sample')} of {r} vertices ({why})"
    else:
        arrays = [a.reshape(-1) if a.ndim == 2 and 1 in a.shape else a for a in arrays]
        shapes = {a.shape for a in arrays}
        if len(shapes) != 1 or arrays[0].ndim != 1:
            raise InputError(path, f"its data arrays have shapes {sorted(shapes)[:3]}: expected one 1-D array of "
                                   "vertex values per sample, or one (n_vertices, N) array")
        data = np.stack(arrays, 0)
        assumed = (f"{_n(len(arrays), 'data array')} read as {_n(len(arrays), 'sample')} of {data.shape[1]} "
                   "vertices")
    if data.dtype.kind not in "biuf":
        raise InputError(path, f"holds {data.dtype} data, not numbers")
    return data.astype(np.float32, copy=False), _gifti_hemi(img) or hemi_from_name(path), assumed


def read_mgh_data(path) -> tuple:
    """A FreeSurfer .mgh/.mgz file as ("surface", data (N, n_vertices)) for a surface overlay
    (shape (n_vertices, 1, 1[, N])), or ("volume", image) for a volume."""
    img = _load(path, "mgh")
    shape = img.shape
    if len(shape) >= 3 and shape[1] == 1 and shape[2] == 1:
        data = _get_data(img, path)
        n = shape[0]
        return "surface", data.reshape(n, -1).T
    return "volume", img


def read_cifti_cortex(path, kind="cifti") -> dict:
    """The cortical part of a CIFTI-2 dense file (dscalar / dtseries / dlabel).

    Keeps the CIFTI_STRUCTURE_CORTEX_LEFT / RIGHT brain models only; their vertex indices come
    from the brain model (so a cortex subset such as the 29696 + 29716 of the 91282
    grayordinates maps to the fs_LR 32k mesh exactly).

    Returns dict with data (N, n_cortex) (float32; for dlabel the int keys), vertex (n_cortex,)
    int64 (left + right concatenated: right indices offset by the left mesh size), hemi
    (n_cortex,) str, n_per_hemi (mesh vertices per hemisphere), img.
    """
    from nibabel import cifti2

    img = _load(path, kind)
    if not isinstance(img, cifti2.Cifti2Image):
        raise InputError(path, "is a NIfTI file without a CIFTI-2 header (expected a dense CIFTI file)")
    try:
        bm_axis = img.header.get_axis(1)
    except Exception as exc:
        raise InputError(path, f"has an unreadable CIFTI-2 header ({type(exc).__name__})") from None
    if not isinstance(bm_axis, cifti2.BrainModelAxis):
        raise InputError(path, "is not a dense CIFTI file (its columns are not brain models)")
    data = _get_data(img, path)
    if data.ndim != 2 or data.shape[1] != len(bm_axis):
        raise InputError(path, f"data shape {data.shape} does not match its {len(bm_axis)} brain-model columns")
    cols, verts, hemis = [], [], []
    sizes = {}
    for name, sl, bm in bm_axis.iter_structures():
        short = name.replace("CIFTI_STRUCTURE_", "")
        if short not in ("CORTEX_LEFT", "CORTEX_RIGHT"):
            continue
        hemi = "left" if short == "CORTEX_LEFT" else "right"
        sizes[hemi] = int(bm_axis.nvertices[name])
        idx = np.arange(len(bm_axis))[sl]
        cols.append(idx)
        verts.append(np.asarray(bm.vertex, dtype=np.int64))
        hemis.append(np.full(len(idx), hemi))
    if not cols:
        raise InputError(path, "has no CORTEX_LEFT / CORTEX_RIGHT brain models: no surface data to model")
    if len(set(sizes.values())) != 1:
        raise InputError(path, f"its hemispheres have different mesh sizes {sizes}")
    n = next(iter(sizes.values()))
    hemi = np.concatenate(hemis)
    vertex = np.concatenate(verts) + np.where(hemi == "right", n, 0)
    col = np.concatenate(cols)
    return dict(data=data[:, col], vertex=vertex, hemi=hemi, n_per_hemi=n, img=img)


def read_cifti_labels(path) -> tuple:
    """A CIFTI-2 dlabel file as (keys over the concatenated L+R mesh (2n,) int, {key: name}, n).

    Vertices outside the cortex brain models get key -1. The first label map is used.
    """
    from nibabel import cifti2

    d = read_cifti_cortex(path, kind="cifti-label")
    axis0 = d["img"].header.get_axis(0)
    if not isinstance(axis0, cifti2.LabelAxis):
        raise InputError(path, "is not a CIFTI-2 label (dlabel) file")
    table = {int(k): str(v[0]) for k, v in axis0.label[0].items()}
    n = d["n_per_hemi"]
    keys = np.full(2 * n, -1, dtype=np.int64)
    keys[d["vertex"]] = np.rint(d["data"][0]).astype(np.int64)
    return keys, table, n


def read_volume(path, mask_path, *, kind="nifti") -> dict:
    """A 4-D NIfTI (or MGH volume) restricted to a 3-D mask.

    Returns dict with data (N, n_voxels) float32 (voxels in C order of the mask), ijk
    (n_voxels, 3) int64, xyz (n_voxels, 3) float (scanner / template mm from the affine),
    affine (4, 4), shape (3,).
    """
    img = read_mgh_data(path)[1] if kind == "mgh" else _load(path, "nifti")
    from nibabel import cifti2

    if isinstance(img, cifti2.Cifti2Image):
        raise InputError(path, "is a CIFTI-2 file: name it .dscalar.nii or .dtseries.nii")
    if mask_path is None:
        raise InputError(path, "is a volume: give `mask` (a 3-D NIfTI of the voxels to model)")
    shape = tuple(img.shape)
    if len(shape) not in (3, 4):
        raise InputError(path, f"must be a 4-D volume (x, y, z, samples), got shape {shape}")
    mimg = _load(mask_path, file_kind(mask_path) if file_kind(mask_path) in ("nifti", "mgh") else "nifti")
    mshape = tuple(mimg.shape)
    if len(mshape) == 4 and mshape[3] == 1:
        mshape = mshape[:3]
    if mshape != shape[:3]:
        raise InputError(mask_path, f"has shape {mshape} but the responses' volume {Path(path).name} is {shape[:3]}")
    if not np.allclose(mimg.affine, img.affine, atol=1e-3):
        raise InputError(mask_path, f"its affine differs from that of {Path(path).name}: resample the mask to the data grid")
    m = _get_data(mimg, mask_path).reshape(mshape)
    mask = np.isfinite(m) & (m != 0)
    if not mask.any():
        raise InputError(mask_path, "selects no voxel (all zero)")
    data = _get_data(img, path)
    if data.ndim == 3:
        data = data[..., None]
    ijk = np.argwhere(mask).astype(np.int64)
    values = data[mask].T  # (N, n_voxels)
    xyz = ijk @ np.asarray(img.affine)[:3, :3].T + np.asarray(img.affine)[:3, 3]
    return dict(data=np.ascontiguousarray(values, dtype=np.float32), ijk=ijk, xyz=xyz,
                affine=np.asarray(img.affine, dtype=float), shape=shape[:3])


def read_lookup(path) -> dict:
    """A lookup table from integer label values to names: {int: name}.

    Formats: FreeSurfer colour tables / NSD ``*.ctab`` (lines ``<int> <name> [r g b a]``, ``#``
    comments), and .tsv / .csv tables with an integer column and a name column (with a header:
    ``index`` / ``value`` / ``key`` / ``label`` and ``name`` / ``roi``; or two unnamed columns).
    """
    path = check_file(path, what="lookup table")
    if sniff(path) != "text":
        raise InputError(path, f"is not a text lookup table: its content looks like {describe_kind(sniff(path))}")
    suffix = path.suffix.lower()
    text = path.read_text(errors="replace")
    table = {}
    if suffix in (".tsv", ".csv"):
        import pandas as pd

        from ._readers import read_table

        df = read_table(path)
        cols = {str(c).lower(): c for c in df.columns}
        key = next((cols[c] for c in ("index", "value", "key", "label", "id", "int") if c in cols), None)
        name = next((cols[c] for c in ("name", "roi", "label_name", "labelname") if c in cols and cols[c] != key), None)
        if key is None or name is None:
            if df.shape[1] >= 2:
                key, name = df.columns[0], df.columns[1]
            else:
                raise InputError(path, "needs an integer column and a name column")
        keys = pd.to_numeric(df[key], errors="coerce")
        if keys.isna().any() or (keys != keys.round()).any():
            raise InputError(path, f"column {key!r} must hold integer label values")
        return {int(k): str(v).strip() for k, v in zip(keys, df[name])}
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) < 2:
            raise InputError(path, f"line {lineno}: expected '<integer> <name> [r g b a]', got {line[:40]!r}")
        try:
            k = int(parts[0])
        except ValueError:
            raise InputError(path, f"line {lineno}: {parts[0]!r} is not an integer label value") from None
        table[k] = parts[1]
    if not table:
        raise InputError(path, "holds no '<integer> <name>' lines")
    return table


def read_label_image(path, kind) -> tuple:
    """An integer label image (.mgz / .mgh / .nii[.gz]) as (values, affine).

    ``values`` is (n_vertices,) for a surface map (shape (n, 1, 1) or (n,)) or (x, y, z) for a
    volume; non-finite values become -1.
    """
    img = _load(path, kind)
    data = _get_data(img, path)
    if data.ndim >= 1 and all(s == 1 for s in data.shape[1:]):
        data = data.reshape(-1)
    elif data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    elif data.ndim != 3:
        raise InputError(path, f"label image has shape {data.shape}: expected (n_vertices,) or (x, y, z)")
    finite = np.isfinite(data)
    if finite.any() and np.any(np.abs(data[finite] - np.rint(data[finite])) > 1e-3):
        raise InputError(path, "holds non-integer values: a label image holds integer ROI values")
    return np.where(finite, np.rint(data), -1).astype(np.int64), np.asarray(img.affine, dtype=float)


def label_base_name(path) -> str:
    """``lh.prf-visualrois.mgz`` -> ``prf-visualrois``; ``L.aparc.label.gii`` -> ``aparc``."""
    name = Path(str(path)).name
    low = name.lower()
    for suffix in (".label.gii.gz", ".label.gii", ".dlabel.nii", ".nii.gz", ".nii", ".mgz", ".mgh", ".annot", ".label",
                   ".gii.gz", ".gii"):
        if low.endswith(suffix):
            name = name[: -len(suffix)]
            break
    name = re.sub(r"^(lh|rh|l|r)[._-]", "", name, flags=re.I)
    name = re.sub(r"[._-](lh|rh|l|r)$", "", name, flags=re.I)
    name = re.sub(r"[._-]?hemi-(l|r|left|right)", "", name, flags=re.I)
    return name


def read_surface_labels(path, kind, n_vertices=None) -> tuple:
    """One hemisphere's surface labels.

    Returns (values (n,) int64 or None, names (n,) object array or None, table {int: name} or
    None, hemi hint). Exactly one of ``values`` / ``names`` is given: ``values`` are integer
    keys to be named through ``table`` (or a lookup); ``names`` are final label names
    (FreeSurfer ``.label``: the ROI named by the file, over ``n_vertices``).
    """
    import nibabel as nib

    hemi = hemi_from_name(path)
    if kind == "annot":
        path = check_file(path)
        try:
            labels, ctab, names = nib.freesurfer.read_annot(str(path))
        except Exception as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(path, f"not a readable FreeSurfer annot file, truncated or damaged ({msg})") from None
        table = {i: (n.decode(errors="replace") if isinstance(n, bytes) else str(n)) for i, n in enumerate(names)}
        return np.asarray(labels, dtype=np.int64), None, table, hemi
    if kind == "label":
        path = check_file(path)
        if sniff(path) != "text":
            raise InputError(path, f"is not a FreeSurfer .label file: its content looks like {describe_kind(sniff(path))}")
        try:
            idx = np.asarray(nib.freesurfer.read_label(str(path)), dtype=np.int64)
        except Exception as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(path, f"not a readable FreeSurfer .label file ({msg})") from None
        if n_vertices is None:
            raise InputError(path, "a .label file needs responses on a known surface mesh")
        if idx.size and (idx.min() < 0 or idx.max() >= n_vertices):
            raise InputError(path, f"lists vertex {int(idx.max())}, beyond the mesh's {n_vertices} vertices per hemisphere")
        names = np.full(n_vertices, None, dtype=object)
        names[idx] = label_base_name(path)
        return None, names, None, hemi
    if kind == "gifti-label":
        img = _load(path, "gifti")
        if not img.darrays:
            raise InputError(path, "holds no data arrays")
        values = np.asarray(img.darrays[0].data).ravel()
        if values.dtype.kind not in "iuf":
            raise InputError(path, f"holds {values.dtype} data, not integer labels")
        table = None
        lt = getattr(img, "labeltable", None)
        if lt is not None and lt.labels:
            table = {int(k): str(v) for k, v in lt.get_labels_as_dict().items()}
        return np.rint(values).astype(np.int64), None, table, _gifti_hemi(img) or hemi
    if kind in ("mgh", "nifti"):
        values, _ = read_label_image(path, kind)
        if values.ndim != 1:
            raise InputError(path, f"is a volume of shape {values.shape}, not a surface label map")
        return values, None, None, hemi
    raise InputError(path, f"is not a label file this reader knows ({kind or Path(path).suffix})")
