"""Per-voxel encoding metrics: R^2, bootstrap significance with Benjamini-Hochberg FDR, noise ceiling.

Every function is vectorised over voxels (the last axis).
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
from scipy import stats

__all__ = ["r2_score", "bh_fdr", "bootstrap_significance", "Significance", "noise_ceiling", "ncsnr_from_repeats",
           "ncsnr_from_sums", "ncsnr_from_trials"]


def _check_pair(y, yhat):
    """``y`` and ``yhat`` as (N, V) arrays of the same shape with N >= 2 (1-D input: one column);
    no copy is made."""
    y, yhat = np.asarray(y), np.asarray(yhat)
    if y.shape != yhat.shape:
        raise ValueError(f"y and yhat shapes differ: {y.shape} vs {yhat.shape}")
    if y.ndim == 1:
        y, yhat = y[:, None], yhat[:, None]
    if y.ndim != 2 or y.shape[0] < 2:
        raise ValueError(f"y must be (N, V) with N >= 2, got shape {y.shape}")
    return y, yhat


def _pair(y, yhat):
    """:func:`_check_pair`, as float64."""
    y, yhat = _check_pair(y, yhat)
    return y.astype(np.float64, copy=False), yhat.astype(np.float64, copy=False)


def r2_score(y, yhat, *, block_bytes: int = 64 * 2**20) -> np.ndarray:
    """R^2_v = 1 - mean_i (y_iv - yhat_iv)^2 / var_i(y_iv) (population variance).

    y, yhat : (N, V) or (N,). Returns (V,) (a 1-element array for 1-D input). A constant voxel
    gives NaN. Computed in float64 over blocks of about ``block_bytes`` of columns, so float32
    inputs are never copied whole.
    """
    y, yhat = _check_pair(y, yhat)
    out = np.empty(y.shape[1])
    step = max(1, block_bytes // (8 * max(y.shape[0], 1)))
    for j in range(0, out.size, step):
        yb, pb = _pair(y[:, j:j + step], yhat[:, j:j + step])
        var = yb.var(0)
        mse = np.mean((yb - pb) ** 2, axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[j:j + step] = np.where(var > 0, 1.0 - mse / np.where(var > 0, var, 1.0), np.nan)
    return out


def bh_fdr(p) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q), by :func:`scipy.stats.false_discovery_control`.

    p : array of p-values in [0, 1], any shape (treated as one family); NaN or inf marks a
        missing value: it stays NaN in q and does not count in the number of tests m.

    Returns q with the shape of ``p``. Needs scipy >= 1.11.
    """
    p = np.asarray(p, dtype=np.float64)
    q = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if not ok.any():
        return q
    if np.any((p[ok] < 0) | (p[ok] > 1)):
        raise ValueError("p must hold p-values in [0, 1] (NaN for a missing one)")
    q[ok] = stats.false_discovery_control(p[ok], method="bh")
    return q


class Significance(NamedTuple):
    """Result of :func:`bootstrap_significance`; every field is (V,)."""

    r2: np.ndarray
    p: np.ndarray
    q: np.ndarray
    significant: np.ndarray


def _bootstrap_below(y, yhat, weights, chunk: int):
    """Per column: how many resamples give R^2 < 0, and how many are valid (non-zero variance).

    y, yhat : (n, v) float64; weights : (n_boot, n) resample weights (counts / n).
    """
    err2, ysq = (y - yhat) ** 2, y ** 2
    below, valid = np.zeros(y.shape[1]), np.zeros(y.shape[1])
    for start in range(0, len(weights), chunk):
        counts = weights[start:start + chunk]
        mse, mean, msq = counts @ err2, counts @ y, counts @ ysq
        var = msq - mean ** 2
        with np.errstate(divide="ignore", invalid="ignore"):
            r2b = 1.0 - mse / var
        ok = var > 1e-12 * np.maximum(msq, 1e-300)
        below += np.sum((r2b < 0) & ok, axis=0)
        valid += ok.sum(0)
    return below, valid


def bootstrap_significance(y, yhat, n_boot: int = 200, alpha: float = 0.05, seed: int = 0,
                           chunk: int = 50, block_bytes: int = 64 * 2**20) -> Significance:
    """Bootstrap test of R^2 > 0 per voxel, then Benjamini-Hochberg FDR.

    Test rows are resampled with replacement ``n_boot`` times; p_v is the fraction of bootstrap
    R^2 below 0 and q_v its BH-adjusted value; ``significant = q < alpha``. Each resample is
    expressed as row counts, so all voxels of ``chunk`` resamples come from one matrix product.
    The voxels are taken in blocks of about ``block_bytes`` of float64 test rows, so memory does
    not grow with V beyond the inputs.

    y, yhat : (N, V). Returns :class:`Significance` with arrays of shape (V,).
    """
    y, yhat = _check_pair(y, yhat)
    if n_boot < 1:
        raise ValueError("n_boot must be >= 1")
    n, V = y.shape
    rng = np.random.default_rng(seed)
    weights = np.concatenate([rng.multinomial(n, np.full(n, 1.0 / n), size=min(chunk, n_boot - s))
                              for s in range(0, n_boot, chunk)]).astype(np.float64) / n  # (n_boot, n)
    below, valid, r2 = np.zeros(V), np.zeros(V), np.empty(V)
    step = max(1, block_bytes // (8 * n))
    for j in range(0, V, step):
        yb, pb = _pair(y[:, j:j + step], yhat[:, j:j + step])
        below[j:j + step], valid[j:j + step] = _bootstrap_below(yb, pb, weights, chunk)
        r2[j:j + step] = r2_score(yb, pb)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(valid > 0, below / valid, np.nan)
    p = np.where(np.isfinite(r2), p, np.nan)
    q = bh_fdr(p)
    return Significance(r2=r2, p=p, q=q, significant=np.nan_to_num(q, nan=1.0) < alpha)


def _ncsnr_from_s2(s2) -> np.ndarray:
    """ncsnr = sqrt(max(1 - s2, 0)) / sqrt(s2) for z-scored responses with noise variance s2."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sqrt(np.maximum(1.0 - s2, 0.0)) / np.sqrt(s2)


def ncsnr_from_sums(total, total_sq, counts, *, chunk: int = 1024) -> np.ndarray:
    """NSD's noise-ceiling SNR per voxel from per-image sums of z-scored single trials.

    s2 is the across-repeat variance (ddof=1) averaged over the images with two or more trials
    (a variance below 0 from rounding counts as 0), ncsnr = sqrt(max(1 - s2, 0)) / sqrt(s2).

    Parameters
    ----------
    total : (n_images, V) sum of each image's trials
    total_sq : (n_images, V) sum of their squares
    counts : (n_images,) trials per image
    chunk : images per block (the variances are formed in float64 one block at a time)

    Returns
    -------
    (V,) float64; NaN when no image has two trials, inf when the repeats are identical.
    """
    total, total_sq = np.asarray(total), np.asarray(total_sq)
    counts = np.asarray(counts)
    if total.ndim != 2 or total_sq.shape != total.shape or counts.shape != total.shape[:1]:
        raise ValueError(f"total, total_sq must be (n_images, V) and counts (n_images,), got shapes "
                         f"{total.shape}, {total_sq.shape}, {counts.shape}")
    rep = np.flatnonzero(counts >= 2)
    acc = np.zeros(total.shape[1])
    for start in range(0, len(rep), chunk):
        i = rep[start:start + chunk]
        n = counts[i, None].astype(np.float64)
        t = total[i].astype(np.float64)
        acc += np.clip((total_sq[i] - t * t / n) / (n - 1), 0.0, None).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _ncsnr_from_s2(acc / len(rep))


def ncsnr_from_trials(betas, images) -> np.ndarray:
    """:func:`ncsnr_from_sums` of single trials grouped by image.

    betas : (n_trials, V) or (n_trials,) z-scored single-trial responses
    images : (n_trials,) the image (any hashable label) of each trial

    Returns (V,).
    """
    b = np.asarray(betas, dtype=np.float64)
    b = b[:, None] if b.ndim == 1 else b
    images = np.asarray(images)
    if b.ndim != 2 or images.shape != b.shape[:1]:
        raise ValueError(f"betas must be (n_trials, V) and images (n_trials,), got shapes {b.shape}, {images.shape}")
    _, rows = np.unique(images, return_inverse=True)
    rows = rows.ravel()
    n_img = int(rows.max()) + 1 if len(rows) else 0
    total, total_sq = np.zeros((n_img, b.shape[1])), np.zeros((n_img, b.shape[1]))
    np.add.at(total, rows, b)
    np.add.at(total_sq, rows, b * b)
    return ncsnr_from_sums(total, total_sq, np.bincount(rows, minlength=n_img))


def ncsnr_from_repeats(repeats) -> np.ndarray:
    """NSD's noise-ceiling SNR per voxel from repeats stacked per image.

    repeats : (n_images, n_repeats >= 2, V) or (n_images, n_repeats) z-scored single-trial
        responses; NaN marks a missing repeat. s2 is the across-repeat variance (ddof=1) averaged
        over the images with two or more repeats, ncsnr = sqrt(max(1 - s2, 0)) / sqrt(s2).

    Returns (V,).
    """
    r = np.asarray(repeats, dtype=np.float64)
    if r.ndim == 2:
        r = r[:, :, None]
    if r.ndim != 3 or r.shape[1] < 2:
        raise ValueError(f"repeats must be (n_images, n_repeats >= 2, V), got shape {r.shape}")
    with warnings.catch_warnings():  # images with fewer than 2 repeats: NaN variance, left out
        warnings.simplefilter("ignore", RuntimeWarning)
        s2 = np.nanmean(np.nanvar(r, axis=1, ddof=1), axis=0)
    return _ncsnr_from_s2(s2)


def _mean_inverse(n) -> float:
    n = np.asarray(n, dtype=np.float64)
    if n.ndim > 1 or n.size == 0 or not np.all(np.isfinite(n)) or np.any(n < 1):
        raise ValueError(f"n must be a number of trials >= 1 or a 1-D array of per-image trial counts >= 1, got {n!r}")
    return float(np.mean(1.0 / n))


def noise_ceiling(repeats=None, n=1, *, ncsnr=None) -> np.ndarray:
    """NSD noise ceiling (percent of explainable variance) per voxel.

    NC = 100 ncsnr^2 / (ncsnr^2 + mean_i 1 / n_i), NSD's formula for responses averaged over n_i
    trials per image; with n_i = n for every image it is 100 n ncsnr^2 / (1 + n ncsnr^2).

    Parameters
    ----------
    repeats : (n_images, n_repeats, V) or (n_images, n_repeats), optional
        z-scored single-trial responses, NaN = a missing repeat; ncsnr from
        :func:`ncsnr_from_repeats`. Give either ``repeats`` or ``ncsnr``.
    n : int or (n_images,) array
        Trials averaged per image in the data being modelled: one number for all images, or the
        trial count of each (test) image, whose mean of 1 / n is used.
    ncsnr : (V,), optional
        A precomputed SNR (:func:`ncsnr_from_sums`, :func:`ncsnr_from_trials`).

    Returns
    -------
    (V,): 100 where ncsnr is infinite (identical repeats), 0 where s2 >= 1.
    """
    if (repeats is None) == (ncsnr is None):
        raise ValueError("give either repeats or ncsnr")
    snr = ncsnr_from_repeats(repeats) if ncsnr is None else np.asarray(ncsnr, dtype=np.float64)
    inv_n = _mean_inverse(n)
    with np.errstate(invalid="ignore", divide="ignore"):
        snr2 = snr ** 2
        # identical repeats (s2 == 0): ncsnr is infinite and the ceiling is its limit, 100
        return np.where(np.isposinf(snr2), 100.0, 100.0 * snr2 / (snr2 + inv_n))
