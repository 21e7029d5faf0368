"""Per-voxel encoding metrics: R^2, bootstrap significance with Benjamini-Hochberg FDR, noise ceiling.

Every function is vectorised over voxels (the last axis).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["r2_score", "bh_fdr", "bootstrap_significance", "Significance", "noise_ceiling"]


def _pair(y, yhat):
    y = np.asarray(y, dtype=np.float64)
    yhat = np.asarray(yhat, dtype=np.float64)
    if y.shape != yhat.shape:
        raise ValueError(f"y and yhat shapes differ: {y.shape} vs {yhat.shape}")
    if y.ndim == 1:
        y, yhat = y[:, None], yhat[:, None]
    if y.ndim != 2 or y.shape[0] < 2:
        raise ValueError(f"y must be (N, V) with N >= 2, got shape {y.shape}")
    return y, yhat


def r2_score(y, yhat) -> np.ndarray:
    """R^2_v = 1 - mean_i (y_iv - yhat_iv)^2 / var_i(y_iv) (population variance).

    y, yhat : (N, V) or (N,). Returns (V,) (a 1-element array for 1-D input). A constant voxel
    gives NaN.
    """
    y, yhat = _pair(y, yhat)
    var = y.var(0)
    mse = np.mean((y - yhat) ** 2, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(var > 0, 1.0 - mse / np.where(var > 0, var, 1.0), np.nan)


def bh_fdr(p) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q) for a 1-D array of p-values; NaN stays NaN."""
    p = np.asarray(p, dtype=np.float64)
    q = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    m = int(ok.sum())
    if m == 0:
        return q
    pv = p[ok]
    order = np.argsort(pv, kind="mergesort")
    ranked = pv[order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.clip(ranked, 0.0, 1.0)
    q[ok] = out
    return q


class Significance(NamedTuple):
    """Result of :func:`bootstrap_significance`; every field is (V,)."""

    r2: np.ndarray
    p: np.ndarray
    q: np.ndarray
    significant: np.ndarray


def bootstrap_significance(y, yhat, n_boot: int = 200, alpha: float = 0.05, seed: int = 0,
                           chunk: int = 50) -> Significance:
    """Bootstrap test of R^2 > 0 per voxel, then Benjamini-Hochberg FDR.

    Test rows are resampled with replacement ``n_boot`` times; p_v is the fraction of bootstrap
    R^2 below 0 and q_v its BH-adjusted value; ``significant = q < alpha``. Each resample is
    expressed as row counts, so all voxels of ``chunk`` resamples come from one matrix product.

    y, yhat : (N, V). Returns :class:`Significance` with arrays of shape (V,).
    """
    y, yhat = _pair(y, yhat)
    if n_boot < 1:
        raise ValueError("n_boot must be >= 1")
    n = y.shape[0]
    rng = np.random.default_rng(seed)
    err2 = (y - yhat) ** 2
    ysq = y ** 2
    below = np.zeros(y.shape[1])
    valid = np.zeros(y.shape[1])
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=b).astype(np.float64) / n  # (b, N)
        mse = counts @ err2
        mean = counts @ y
        var = counts @ ysq - mean ** 2
        with np.errstate(divide="ignore", invalid="ignore"):
            r2b = 1.0 - mse / var
        ok = var > 1e-12 * np.maximum(counts @ ysq, 1e-300)
        below += np.sum((r2b < 0) & ok, axis=0)
        valid += ok.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(valid > 0, below / valid, np.nan)
    r2 = r2_score(y, yhat)
    p = np.where(np.isfinite(r2), p, np.nan)
    q = bh_fdr(p)
    return Significance(r2=r2, p=p, q=q, significant=np.nan_to_num(q, nan=1.0) < alpha)


def noise_ceiling(repeats, n: int = 1) -> np.ndarray:
    """NSD noise ceiling (percent of explainable variance) per voxel.

    repeats : (n_images, n_repeats, V) z-scored single-trial responses; NaN marks a missing
        repeat. s2 is the across-repeat variance (ddof=1) averaged over images,
        ncsnr = sqrt(max(1 - s2, 0)) / sqrt(s2), NC = 100 * n ncsnr^2 / (1 + n ncsnr^2).
    n : int
        Number of trials averaged per image in the data being modelled.

    Returns (V,).
    """
    r = np.asarray(repeats, dtype=np.float64)
    if r.ndim == 2:
        r = r[:, :, None]
    if r.ndim != 3 or r.shape[1] < 2:
        raise ValueError(f"repeats must be (n_images, n_repeats >= 2, V), got shape {r.shape}")
    with np.errstate(invalid="ignore", divide="ignore"):
        s2 = np.nanmean(np.nanvar(r, axis=1, ddof=1), axis=0)
        ncsnr = np.sqrt(np.maximum(1.0 - s2, 0.0)) / np.sqrt(s2)
        snr2 = n * ncsnr ** 2
        # identical repeats (s2 == 0): ncsnr is infinite and the ceiling is its limit, 100
        return np.where(np.isposinf(snr2), 100.0, 100.0 * snr2 / (1.0 + snr2))
