"""Stage 1 of an analysis: split the stimuli, then z-score features and responses.

Pure functions on arrays; :class:`jnecore.analysis.JNEAnalysis` composes them.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..validation import InputError

__all__ = ["split_stimuli", "split_order", "standardize", "Standardized", "SPLITS"]

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
    data : ndarray of float32 (len(order), V)
        Rows ``order`` of the input, each column z-scored with the training rows' mean and std;
        unusable columns are 0.
    usable : ndarray of bool (V,)
        Columns that are finite everywhere and vary over the training rows.
    """

    data: np.ndarray
    usable: np.ndarray


def split_order(split) -> tuple:
    """Row order that makes each split contiguous, and the slice of each split in it.

    Parameters
    ----------
    split : array of str (N,)

    Returns
    -------
    order : ndarray of int (N,)
        The train rows, then the val rows, then the test rows, each in their original order.
    slices : {"train": slice, "val": slice, "test": slice}
        Where each split lies in ``order``.
    """
    split = np.asarray(split)
    parts = [np.flatnonzero(split == s) for s in SPLITS]
    bounds = np.cumsum([0] + [len(p) for p in parts])
    return np.concatenate(parts), {s: slice(int(bounds[i]), int(bounds[i + 1])) for i, s in enumerate(SPLITS)}


def _train_moments(A, train, rows_per: int):
    """Mean and M2 of the ``train`` rows per column, and whether each column is finite, by row
    blocks (Chan et al.'s pairwise combination; sums accumulate in float64, float32 blocks are not
    widened first)."""
    N, V = A.shape
    n, mean, m2 = 0, np.zeros(V), np.zeros(V)
    finite = np.ones(V, dtype=bool)
    for r0 in range(0, N, rows_per):
        blk = np.asarray(A[r0:r0 + rows_per])
        if blk.dtype.kind != "f":
            blk = blk.astype(np.float64)
        finite &= np.isfinite(blk).all(0)
        t = blk[train[r0:r0 + rows_per]]
        if not len(t):
            continue
        with np.errstate(invalid="ignore", over="ignore"):  # non-finite columns: unusable anyway
            nb = len(t)
            mb = t.sum(0, dtype=np.float64) / nb
            d = t - mb.astype(t.dtype)
            m2b = np.einsum("ij,ij->j", d, d, dtype=np.float64) if d.dtype == np.float64 else \
                np.square(d).sum(0, dtype=np.float64)
            m2b -= d.sum(0, dtype=np.float64) ** 2 / nb  # the rounding of mb to t's dtype, undone
            delta, tot = mb - mean, n + nb
            mean += delta * (nb / tot)
            m2 += m2b + delta ** 2 * (n * nb / tot)
        n = tot
    return n, mean, m2, finite


def standardize(A, train, *, order=None, block_bytes: int = _BLOCK_BYTES) -> Standardized:
    """z-score the columns of ``A`` with the mean and std of its ``train`` rows.

    One float32 result is the only full-size array made: statistics and scaling run over blocks
    of rows in float64, so a memory-mapped ``A`` is read twice, block by block, and never copied
    whole.

    Parameters
    ----------
    A : array-like (N, V)
        Any real dtype, possibly a read-only memory map; NaN / inf allowed (those columns are
        marked unusable).
    train : ndarray of bool (N,)
        The rows whose statistics are used.
    order : ndarray of int (n,), optional
        The rows to return, in this order (default all, in order); :func:`split_order` makes each
        split a contiguous block, so later stages take views instead of copies.

    Returns
    -------
    Standardized
    """
    N, V = A.shape
    train = np.asarray(train, dtype=bool)
    order = np.arange(N) if order is None else np.asarray(order)
    rows_per = max(1, block_bytes // (8 * max(V, 1)))
    n, mean, m2, usable = _train_moments(A, train, rows_per)
    std = np.sqrt(m2 / max(n, 1))
    usable &= std > 0
    work = np.result_type(A.dtype, np.float32)  # float32 data are scaled in float32, float64 in float64
    scale = np.where(usable, 1.0 / np.where(usable, std, 1.0), 0.0).astype(work)
    shift = np.where(usable, mean, 0.0).astype(work)
    out = np.empty((len(order), V), dtype=np.float32)
    bad = np.flatnonzero(~usable)
    direct = isinstance(A, np.ndarray) and A.dtype == np.float32
    for i0 in range(0, len(order), rows_per):
        idx = order[i0:i0 + rows_per]
        dst = out[i0:i0 + len(idx)]
        if direct:  # float32 rows straight into the result: no widened or reordered block
            np.take(A, idx, axis=0, out=dst)
            with np.errstate(invalid="ignore"):
                dst -= shift
                dst *= scale
        else:  # h5py-like readers need increasing indices; float64 data are scaled in float64
            blk = np.asarray(A[np.sort(idx)] if len(idx) > 1 else A[idx], dtype=work)
            blk = blk[np.argsort(np.argsort(idx))] if len(idx) > 1 else blk
            with np.errstate(invalid="ignore"):
                dst[:] = (blk - shift) * scale
        if len(bad):
            dst[:, bad] = 0.0
    return Standardized(out, usable)
