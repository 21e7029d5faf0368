"""Stage 1 of an analysis: split the stimuli, then z-score features and responses.

Pure functions on arrays; :class:`jnecore.analysis.JNEAnalysis` composes them.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..validation import InputError

__all__ = ["split_stimuli", "standardize", "Standardized", "SPLITS"]

SPLITS = ("train", "val", "test")
# columns z-scored per block: keeps the float64 working block near 64 MB whatever N and V are
_BLOCK_BYTES = 64 * 2**20


def split_stimuli(n: int, *, test_index=None, test_fraction: float = 0.1, val_fraction: float = 0.1111,
                  seed: int = 0) -> np.ndarray:
    """Label each stimulus "train", "val" or "test".

    Parameters
    ----------
    n : int
        Number of stimuli N.
    test_index : array of int (n_test,), optional
        Row indices of the test set (NSD's 1000 shared images); otherwise a seeded random
        ``test_fraction`` of the rows.
    test_fraction, val_fraction : float
        Test share of all rows; validation share of the rows that are not test (8000 / 1000 / 1000
        in the paper).
    seed : int

    Returns
    -------
    split : ndarray of str (n,)
    """
    rng = np.random.default_rng(seed)
    split = np.full(n, "train", dtype=object)
    if test_index is not None:
        idx = np.asarray(test_index)
        if idx.dtype.kind not in "iu" or idx.ndim != 1:
            raise InputError("test_index", "must be a one-column list of integer row indices")
        if len(idx) and (idx.min() < 0 or idx.max() >= n):
            raise InputError("test_index", f"indices must lie in [0, {n - 1}]")
        if len(np.unique(idx)) != len(idx):
            raise InputError("test_index", "repeats a row index")
        split[idx] = "test"
    else:
        split[rng.permutation(n)[:int(round(n * test_fraction))]] = "test"
    rest = np.flatnonzero(split == "train")
    split[rng.permutation(rest)[:int(round(len(rest) * val_fraction))]] = "val"
    counts = {s: int((split == s).sum()) for s in SPLITS}
    if counts["train"] < 2 or counts["val"] < 1 or counts["test"] < 3:
        raise InputError("Y", f"too few stimuli to split ({n} rows gave {counts}): "
                              "need at least 2 train, 1 val and 3 test rows")
    return split.astype(str)


class Standardized(NamedTuple):
    """What :func:`standardize` returns.

    Attributes
    ----------
    data : ndarray of float32 (N, V)
        Columns z-scored with the training rows' mean and std; unusable columns are 0.
    usable : ndarray of bool (V,)
        Columns that are finite everywhere and vary over the training rows.
    """

    data: np.ndarray
    usable: np.ndarray


def standardize(A, train, *, block_bytes: int = _BLOCK_BYTES) -> Standardized:
    """z-score the columns of ``A`` with the mean and std of its ``train`` rows.

    One float32 result is the only full-size array made: the statistics and the scaling run over
    blocks of columns in float64, so a memory-mapped ``A`` is read once and never copied whole.

    Parameters
    ----------
    A : array-like (N, V)
        Any real dtype, possibly a read-only memory map; NaN / inf allowed (those columns are
        marked unusable).
    train : ndarray of bool (N,)
        The rows whose statistics are used.

    Returns
    -------
    Standardized
    """
    N, V = A.shape
    train = np.asarray(train, dtype=bool)
    out = np.empty((N, V), dtype=np.float32)
    usable = np.zeros(V, dtype=bool)
    step = max(1, block_bytes // (8 * max(N, 1)))
    for j0 in range(0, V, step):
        j1 = min(V, j0 + step)
        blk = np.asarray(A[:, j0:j1], dtype=np.float64)
        ok = np.isfinite(blk).all(0)
        tr = blk[train][:, ok]
        mean, std = tr.mean(0), tr.std(0)
        ok[ok] = std > 0
        usable[j0:j1] = ok
        seg = out[:, j0:j1]
        seg[:, ~ok] = 0.0
        keep = std > 0
        seg[:, ok] = (blk[:, ok] - mean[keep]) / std[keep]
    return Standardized(out, usable)
