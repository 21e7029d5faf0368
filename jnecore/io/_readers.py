"""Array and label readers chosen by file extension. Every failure is an :class:`InputError`."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..validation import InputError

__all__ = ["read_array", "read_labels", "split_key"]

ARRAY_SUFFIXES = (".npy", ".npz", ".h5", ".hdf5")
TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet")


def split_key(spec: str):
    """``"file.npz:key"`` -> (Path("file.npz"), "key"); no key -> (path, None)."""
    spec = str(spec)
    for suffix in (".npz:", ".h5:", ".hdf5:"):
        i = spec.find(suffix)
        if i >= 0:
            return Path(spec[: i + len(suffix) - 1]), spec[i + len(suffix):] or None
    return Path(spec), None


def _load_npy(path: Path):
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise InputError(path, "holds pickled Python objects, which are refused (they can run code): "
                                   "save a plain numeric array with np.save") from None
        raise InputError(path, f"not a readable .npy file ({exc})") from None
    except (OSError, EOFError) as exc:
        raise InputError(path, f"not a readable .npy file ({exc})") from None


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
            return z[key]
    except InputError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise InputError(path, "holds pickled Python objects, which are refused: save plain numeric arrays") from None
        raise InputError(path, f"not a readable .npz file ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(path, f"not a readable .npz file ({exc})") from None


def _load_h5(path: Path, key):
    import h5py

    try:
        with h5py.File(path, "r") as fh:
            names = []
            fh.visititems(lambda n, obj: names.append(n) if isinstance(obj, h5py.Dataset) else None)
            if key is None:
                if len(names) != 1:
                    raise InputError(path, f"holds {len(names)} datasets ({', '.join(names[:5]) or 'none'}): name one as FILE:dataset")
                key = names[0]
            if key not in fh or not isinstance(fh[key], h5py.Dataset):
                raise InputError(path, f"has no dataset {key!r} (it has {', '.join(names[:5]) or 'none'})")
            return fh[key][()]
    except InputError:
        raise
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(path, f"not a readable HDF5 file ({exc})") from None


def read_array(spec) -> np.ndarray:
    """Read a numeric array from .npy, .npz (``FILE:key``) or .h5/.hdf5 (``FILE:dataset``)."""
    path, key = split_key(spec)
    if not path.exists():
        raise InputError(path, "no such file")
    if path.is_dir():
        raise InputError(path, "is a directory, expected a file")
    if path.stat().st_size == 0:
        raise InputError(path, "is empty")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        arr = _load_npy(path)
    elif suffix == ".npz":
        arr = _load_npz(path, key)
    elif suffix in (".h5", ".hdf5"):
        arr = _load_h5(path, key)
    elif suffix in (".pkl", ".pickle"):
        raise InputError(path, "pickle files are refused (they can run code): save a .npy, .npz or .h5 array")
    else:
        raise InputError(path, f"unsupported extension {suffix!r}: use {', '.join(ARRAY_SUFFIXES)}")
    if arr.dtype == object:
        raise InputError(path, "holds Python objects, not numbers")
    return arr


def read_labels(path) -> np.ndarray:
    """Read a one-column table of labels (.csv, .tsv, .txt, .parquet) as a string array.

    CSV/TSV with a header row use their only column; a .txt file is one label a line.
    """
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise InputError(path, "no such file")
    if path.stat().st_size == 0:
        raise InputError(path, "is empty")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            df = pd.read_parquet(path)
        elif suffix in (".csv", ".tsv"):
            df = pd.read_csv(path, sep="," if suffix == ".csv" else "\t", dtype=str, keep_default_na=False)
        elif suffix == ".txt":
            lines = path.read_text().splitlines()
            return np.asarray([ln.strip() for ln in lines if ln.strip() != ""], dtype=str)
        else:
            raise InputError(path, f"unsupported extension {suffix!r}: use {', '.join(TABLE_SUFFIXES)}")
    except InputError:
        raise
    except Exception as exc:  # pandas raises many types for a broken table
        raise InputError(path, f"not a readable table ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    if df.shape[1] != 1:
        raise InputError(path, f"must have exactly one column, it has {df.shape[1]} ({', '.join(map(str, df.columns[:5]))})")
    return df.iloc[:, 0].astype(str).to_numpy()
