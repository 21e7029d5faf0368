"""Array, table and label readers chosen by file extension and checked against the file's content.

Every failure is an :class:`~jnecore.validation.InputError` naming the file and the problem.
Nothing here ever unpickles: ``.npy`` / ``.npz`` are read with ``allow_pickle=False`` and pickle
files (``.pkl``, ``.pickle``, or any file whose bytes are a pickle stream) are refused.

Formats
-------
arrays (:func:`read_array`)
    ``.npy``; ``.npz`` (``FILE:key``, the key may be left out when the archive holds one array);
    ``.h5`` / ``.hdf5`` (``FILE:dataset``, likewise; a ``jne features`` file: ``FILE.h5:layer``);
    ``.parquet``, ``.csv`` and ``.tsv`` tables
    whose columns are all numeric (a CSV without a header row is recognised: every header cell
    parses as a number).
labels (:func:`read_labels`)
    one-column ``.csv`` / ``.tsv`` (with a header row) or ``.parquet``; ``.txt`` (one label a
    line); 1-D ``.npy`` / ``.npz`` / ``.h5`` arrays.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from ..validation import InputError
from ._limits import check_h5_dataset, check_npz_member, npy_header, read_parquet

__all__ = ["read_array", "read_labels", "read_table", "read_table_matrix", "split_key", "sniff", "check_file",
           "ARRAY_SUFFIXES", "TABLE_SUFFIXES"]

ARRAY_SUFFIXES = (".npy", ".npz", ".h5", ".hdf5", ".parquet", ".csv", ".tsv")
TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet")
PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".pt", ".pth", ".ckpt")

# what each extension's content must look like (see :func:`sniff`)
_EXPECTED = {
    ".npy": ("npy",), ".npz": ("zip",), ".h5": ("hdf5",), ".hdf5": ("hdf5",), ".parquet": ("parquet",),
    ".csv": ("text",), ".tsv": ("text",), ".txt": ("text",),
}
_KIND_WORDS = {
    "npy": "a NumPy .npy array", "zip": "a zip archive (.npz?)", "hdf5": "an HDF5 file", "parquet": "a Parquet table",
    "gzip": "gzip-compressed data", "xml": "XML text (GIfTI?)", "text": "plain text (CSV?)",
    "pickle": "a Python pickle", "nifti": "a NIfTI image", "mgh": "a FreeSurfer MGH image", "binary": "binary data",
    "empty": "nothing",
}


def split_key(spec: str):
    """``"file.npz:key"`` -> (Path("file.npz"), "key"); no key -> (path, None)."""
    spec = str(spec)
    for suffix in (".npz:", ".h5:", ".hdf5:"):
        i = spec.lower().find(suffix)
        if i >= 0:
            return Path(spec[: i + len(suffix) - 1]), spec[i + len(suffix):] or None
    return Path(spec), None


def sniff(path) -> str:
    """What the bytes of ``path`` look like: npy, zip, hdf5, parquet, gzip, xml, text, pickle,
    nifti, mgh, binary or empty (from the first bytes only)."""
    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(2048)
    if not head:
        return "empty"
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "hdf5"
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
        return "pickle"
    if len(head) >= 348 and (head[:4] in (b"\x5c\x01\x00\x00", b"\x00\x00\x01\x5c") and head[344:347] in (b"n+1", b"ni1")):
        return "nifti"
    if len(head) >= 16 and head[:4] in (b"\x1c\x02\x00\x00", b"\x00\x00\x02\x1c") and head[4:7] == b"n+2":
        return "nifti"
    if head[:4] == b"\x00\x00\x00\x01" and len(head) >= 284:
        return "mgh"
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"<?xml") or stripped.startswith(b"<GIFTI") or stripped.startswith(b"<!DOCTYPE"):
        return "xml"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # the 2048-byte cut may split a multi-byte character
        try:
            text = head[:-4].decode("utf-8")
        except UnicodeDecodeError:
            return "binary"
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
    return "text" if printable >= 0.98 * max(len(text), 1) else "binary"


def describe_kind(kind: str) -> str:
    return _KIND_WORDS.get(kind, kind)


def check_file(path, *, what="file") -> Path:
    """Raise unless ``path`` is an existing, non-empty regular file (and not a pickle)."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "no such file")
    if path.is_dir():
        raise InputError(path, f"is a directory, expected a {what}")
    if path.stat().st_size == 0:
        raise InputError(path, "is empty")
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise InputError(path, "pickle files are refused (loading them can run code): "
                               "save a plain array (.npy, .npz, .h5) or a table (.csv, .parquet)")
    return path


def _check_content(path: Path, suffix: str):
    kind = sniff(path)
    if kind == "pickle":
        raise InputError(path, "holds a Python pickle, which is refused (loading it can run code): "
                               "save a plain array (.npy, .npz, .h5) or a table (.csv, .parquet)")
    expected = _EXPECTED.get(suffix)
    if expected and kind not in expected:
        hint = ""
        if kind == "text" and suffix in (".npy", ".npz", ".h5", ".hdf5", ".parquet"):
            hint = " (rename it to .csv if it is a table)"
        elif kind in ("npy", "zip", "hdf5", "parquet") and suffix in (".csv", ".tsv", ".txt"):
            hint = " (give it the right extension)"
        raise InputError(path, f"is not a {suffix} file: its content looks like {describe_kind(kind)}{hint}")
    return kind


def _load_npy(path: Path):
    """A .npy array, memory-mapped read-only when it can be (plain numeric data: the responses of a
    whole-brain run are then read block by block, never copied whole). The header's size claim is
    checked against the file first (:func:`jnecore.io._limits.npy_header`)."""
    npy_header(path)
    try:
        return np.load(path, allow_pickle=False, mmap_mode="r")
    except (ValueError, OSError):
        pass  # object arrays, truncated files, odd headers: the plain read below names the problem
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        msg = str(exc)
        if "pickle" in msg.lower():
            raise InputError(path, "holds pickled Python objects, which are refused (they can run code): "
                                   "save a plain numeric array with np.save") from None
        if any(w in msg for w in ("reshape", "buffer", "size", "read all data", "not fully written")):
            raise InputError(path, "is truncated or damaged: the data are shorter than its header says") from None
        raise InputError(path, f"not a readable .npy file ({msg.splitlines()[0]})") from None
    except (OSError, EOFError) as exc:
        raise InputError(path, f"not a readable .npy file ({str(exc).splitlines()[0]})") from None


def _load_npz(path: Path, key):
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = list(z.keys())
            if key is None:
                if len(keys) != 1:
                    raise InputError(path, f"holds {len(keys)} arrays ({', '.join(keys) or 'none'}): name one as FILE:key")
                key = keys[0]
            if key not in keys:
                raise InputError(path, f"has no array {key!r} (it has {', '.join(keys) or 'none'})")
            names = z.zip.namelist()
            check_npz_member(z.zip, f"{key}.npy" if f"{key}.npy" in names else key, path)
            return z[key]
    except InputError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise InputError(path, "holds pickled Python objects, which are refused: save plain numeric arrays") from None
        raise InputError(path, f"not a readable .npz file ({str(exc).splitlines()[0]})") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError, KeyError, RuntimeError) as exc:
        raise InputError(path, f"not a readable .npz file, truncated or damaged ({_first_line(exc)})") from None


def _load_h5(path: Path, key):
    import h5py

    try:
        with h5py.File(path, "r") as fh:
            layers = fh.attrs.get("layers") if fh.attrs.get("format") == "jne-features" else None
            if layers is not None:  # a `jne features` file: FILE.h5:layer
                import json

                layers = json.loads(layers)
                if key is None or key not in layers:
                    what = "name one as FILE.h5:layer" if key is None else f"has no layer {key!r}"
                    raise InputError(path, f"{what} (its layers: {', '.join(layers)})")
                check_h5_dataset(fh[key], path)
                return fh[key][()]
            names = []
            fh.visititems(lambda n, obj: names.append(n) if isinstance(obj, h5py.Dataset) else None)
            if key is None:
                if len(names) != 1:
                    raise InputError(path, f"holds {len(names)} datasets ({', '.join(names[:5]) or 'none'}): name one as FILE:dataset")
                key = names[0]
            if key not in fh or not isinstance(fh[key], h5py.Dataset):
                raise InputError(path, f"has no dataset {key!r} (it has {', '.join(names[:5]) or 'none'})")
            check_h5_dataset(fh[key], path)
            return fh[key][()]
    except InputError:
        raise
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as exc:  # RuntimeError: h5py on a damaged heap
        raise InputError(path, f"not a readable HDF5 file, truncated or damaged ({str(exc).splitlines()[0]})") from None


def _first_line(exc) -> str:
    s = str(exc).strip()
    return f"{type(exc).__name__}: {s.splitlines()[0]}" if s else type(exc).__name__


def read_table(path, *, header="infer"):
    """Read a .csv / .tsv / .parquet / .txt table as a DataFrame of strings or numbers.

    A CSV / TSV whose header cells all parse as numbers is re-read without a header.
    """
    import pandas as pd

    path = check_file(path, what="table")
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise InputError(path, f"unsupported extension {suffix!r} for a table: use {', '.join(TABLE_SUFFIXES)}")
    _check_content(path, suffix)
    try:
        if suffix == ".parquet":
            return read_parquet(path)  # rows and decoded size bounded before any column is decoded
        sep = "\t" if suffix == ".tsv" else ","
        if suffix == ".txt":
            sep = r"\s+"
        df = pd.read_csv(path, sep=sep, header=0 if header == "infer" else header, keep_default_na=False,
                         engine="python" if sep == r"\s+" else "c")
        if header == "infer" and len(df.columns) and all(_is_number(c) for c in df.columns) \
                and not _is_default_header(df.columns):
            df = pd.read_csv(path, sep=sep, header=None, keep_default_na=False,
                             engine="python" if sep == r"\s+" else "c")
        return df
    except InputError:
        raise
    except Exception as exc:  # pandas / pyarrow raise many types for a broken table
        raise InputError(path, f"not a readable table ({_first_line(exc)})") from None


def _is_default_header(columns) -> bool:
    """pandas' default header of an unnamed frame: 0, 1, ..., D-1 (D > 1)."""
    return len(columns) > 1 and [str(c).strip() for c in columns] == [str(i) for i in range(len(columns))]


def _is_number(x) -> bool:
    try:
        float(str(x))
        return True
    except ValueError:
        return False


def read_table_matrix(path, *, key_columns=()):
    """A numeric table (.csv / .tsv / .parquet) as (matrix (N, D) float, keys (N,) str or None).

    ``key_columns``: column names accepted as row keys (the first present is used and dropped).
    Every other column must be numeric.
    """
    import pandas as pd

    df = read_table(path)
    keys = None
    lower = {str(c).lower(): c for c in df.columns}
    for k in key_columns:
        if k.lower() in lower:
            col = lower[k.lower()]
            keys = df[col].astype(str).str.strip().to_numpy()
            df = df.drop(columns=[col])
            break
    if df.shape[1] == 0:
        raise InputError(path, "has no data columns")
    bad = []
    cols = {}
    types = {}
    if Path(path).suffix.lower() == ".parquet":  # name a column's type as the file stores it
        import pyarrow.parquet as pq

        schema = pq.read_schema(path)
        types = dict(zip(schema.names, map(str, schema.types)))
    for c in df.columns:
        s = df[c]
        if s.dtype.kind in "biuf":
            cols[c] = s.to_numpy(dtype=np.float64)
            continue
        if s.dtype.kind in "mMc" or isinstance(s.dtype, pd.CategoricalDtype) or s.dtype.kind == "V":
            bad.append(f"{c} ({types.get(c, s.dtype)})")  # dates, durations, complex, categories: never numbers
            continue
        try:
            conv = pd.to_numeric(s.replace("", np.nan), errors="coerce")
        except (TypeError, ValueError):  # lists, dicts, bytes in a cell (parquet nested types)
            bad.append(f"{c} ({types.get(c) or pd.api.types.infer_dtype(s, skipna=True)})")
            continue
        if conv.isna().sum() > s.replace("", np.nan).isna().sum():
            bad.append(f"{c} ({types.get(c) or pd.api.types.infer_dtype(s, skipna=True)})")
        cols[c] = conv.to_numpy(dtype=np.float64)
    if bad:
        raise InputError(path, f"column{'s' if len(bad) > 1 else ''} {', '.join(map(str, bad[:5]))} "
                               f"{'are' if len(bad) > 1 else 'is'} not numeric: features must be numbers")
    mat = np.column_stack([cols[c] for c in df.columns]) if cols else np.empty((len(df), 0))
    return mat, keys


def read_array(spec) -> np.ndarray:
    """Read a numeric array from .npy, .npz (``FILE:key``), .h5/.hdf5 (``FILE:dataset``),
    or a numeric .parquet / .csv / .tsv table (rows x columns)."""
    path, key = split_key(spec)
    check_file(path)
    suffix = path.suffix.lower()
    if suffix not in ARRAY_SUFFIXES:
        raise InputError(path, f"unsupported extension {suffix!r}: use {', '.join(ARRAY_SUFFIXES)}")
    _check_content(path, suffix)
    if suffix == ".npy":
        arr = _load_npy(path)
    elif suffix == ".npz":
        arr = _load_npz(path, key)
    elif suffix in (".h5", ".hdf5"):
        arr = _load_h5(path, key)
    else:
        arr, _ = read_table_matrix(path)
    if arr.dtype == object:
        raise InputError(path, "holds Python objects, not numbers")
    if arr.dtype.names:  # a structured array or HDF5 compound type: a table, not a matrix
        kinds = ", ".join(f"{n} ({arr.dtype.fields[n][0]})" for n in arr.dtype.names[:5])
        raise InputError(path, f"holds a compound type with fields {kinds}: store a plain numeric array "
                               "(one column per feature)")
    return arr


def read_labels(path, n=None, *, unique=False) -> np.ndarray:
    """Read a one-column table of labels as a string array (n,).

    .csv / .tsv with a header row and .parquet use their only column; .txt is one label a line;
    .npy / .npz / .h5 must hold a 1-D array. A .csv / .tsv whose first line and values are all
    numbers (``np.savetxt`` output) has no header row; when ``n`` (an int or a tuple of
    acceptable lengths) is given and only the other reading has an acceptable length, that
    reading is used (a pandas Series saved with its default header ``0``, for instance); with
    ``unique`` (e.g. row indices), a first line that repeats a value is a header.
    """
    spec = path
    path, key = split_key(path)
    check_file(path, what="table")
    suffix = path.suffix.lower()
    if suffix in (".npy", ".npz", ".h5", ".hdf5"):
        arr = read_array(spec)
        if arr.ndim == 2 and 1 in arr.shape:
            arr = arr.ravel()
        if arr.ndim != 1:
            raise InputError(path, f"must hold a 1-D array of labels, got shape {arr.shape}")
        if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        return arr.astype(str)
    if suffix not in TABLE_SUFFIXES:
        raise InputError(path, f"unsupported extension {suffix!r}: use {', '.join(TABLE_SUFFIXES)}")
    _check_content(path, suffix)
    if suffix == ".txt":
        try:
            lines = path.read_text().splitlines()
        except UnicodeDecodeError:
            raise InputError(path, "is not a text file") from None
        return np.asarray([ln.strip() for ln in lines if ln.strip() != ""], dtype=str)
    import pandas as pd

    try:
        if suffix == ".parquet":
            df = read_parquet(path)
        else:
            df = pd.read_csv(path, sep="," if suffix == ".csv" else "\t", dtype=str, keep_default_na=False)
    except InputError:
        raise
    except Exception as exc:  # pandas raises many types for a broken table
        raise InputError(path, f"not a readable table ({_first_line(exc)})") from None
    if df.shape[1] != 1:
        raise InputError(path, f"must have exactly one column, it has {df.shape[1]} ({', '.join(map(str, df.columns[:5]))})")
    values = df.iloc[:, 0].astype(str).to_numpy()
    head = str(df.columns[0])
    if suffix != ".parquet" and _is_number(head) and all(_is_number(v) for v in values):
        ok = (n,) if isinstance(n, (int, np.integer)) else tuple(n or ())
        repeats = unique and float(head) in {float(v) for v in values}
        if not repeats and not (ok and len(values) in ok and len(values) + 1 not in ok):
            values = np.concatenate([[head], values])  # no header row: the first line is a value
    return values
