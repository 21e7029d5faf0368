"""Result I (c): how many samples does JNE need to track |phi''|?

The model is the 1-D function phi(x) = |sin x|. Away from its kinks (the multiples of pi) it is
smooth with phi''(x) = -|sin x|, so |phi''(c)| = |sin c|; at a kink phi' jumps from -1 to +1.

For each sample size N and each window centre c in -limit, -limit + step, ..., limit (the grid of
the single-neuron experiment), N points are drawn uniformly at random (seeded) from
[c - half_width, c + half_width] and JNE(c) is the JNE of phi over those N points. To first order
JNE(c) = |sin c| * std_i |u_i - mean u| with u_i the drawn offsets, so the curve's shape is exact
and only the random scale factor std_i |u_i - mean u| varies from window to window; it is what
small N makes noisy. Reported per N: Pearson r and Spearman rho between JNE(c) and |sin c| over
the centres whose window contains no kink (where |phi''| is defined); the kink windows are
counted and their JNE kept in the curve table but left out of the correlation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from ._common import Windows, child_seed, correlation, derivative_jne

__all__ = ["sample_size", "sample_size_summary", "SAMPLE_SIZES", "abs_sin"]

SAMPLE_SIZES = (10, 20, 50, 100, 200, 500, 1000)

_STREAM = 3  # seed stream of this experiment (see child_seed)


def abs_sin(x: torch.Tensor) -> torch.Tensor:
    """phi(x) = |sin x|, elementwise."""
    return torch.sin(x).abs()


def sample_size(sizes: Sequence[int] = SAMPLE_SIZES, *, seed: int = 0, windows: Windows = Windows(), device="cpu",
                dtype=torch.float64) -> pd.DataFrame:
    """JNE of phi = |sin x| on windows of N random points, for each sample size N.

    Parameters
    ----------
    sizes : sequence of int
        The sample sizes N (each >= 2).
    seed : int
        Draws for size N come from their own stream, ``child_seed(seed, 3, N)``, so adding or
        removing sizes leaves the others' draws unchanged.
    windows : Windows
        Window centres -limit, -limit + step, ..., limit; windows [c - half_width, c + half_width].

    Returns
    -------
    DataFrame, one row per (N, centre), columns
        ``n_samples``, ``centre``, ``jne``, ``abs_second_derivative`` (|phi''(c)| = |sin c|, NaN on
        kink windows), ``kink`` (the window contains a multiple of pi).
    """
    half_width = windows.half_width
    centres, _ = windows.grid()
    k = np.round(centres / np.pi)
    kink = np.abs(centres - k * np.pi) <= half_width
    d2 = np.where(kink, np.nan, np.abs(np.sin(centres)))
    curves = []
    for n in sizes:
        n = int(n)
        if n < 2:
            raise ValueError(f"sample sizes must be >= 2, got {n}")
        rng = np.random.default_rng(child_seed(seed, _STREAM, n))
        u = rng.uniform(-half_width, half_width, size=(centres.size, n))
        jne = derivative_jne(abs_sin, centres[:, None] + u, device=device, dtype=dtype)
        curves.append(pd.DataFrame({"n_samples": n, "centre": centres, "jne": jne,
                                    "abs_second_derivative": d2, "kink": kink}))
    return pd.concat(curves, ignore_index=True)


def sample_size_summary(curve: pd.DataFrame) -> pd.DataFrame:
    """Per sample size: how well JNE(c) tracks |phi''(c)| over the kink-free windows.

    Parameters
    ----------
    curve : DataFrame
        What :func:`sample_size` returns.

    Returns
    -------
    DataFrame, one row per N, columns
        ``n_samples``, ``pearson_r``, ``spearman_r`` (JNE vs |sin c| over kink-free windows),
        ``n_windows`` (used), ``n_kink_windows`` (left out), ``jne_mean`` (kink-free windows),
        ``kink_jne_mean`` (mean JNE of the kink windows, NaN if none).
    """
    rows = []
    for n, g in curve.groupby("n_samples", sort=True):
        kink = g["kink"].to_numpy(bool)
        jne = g["jne"].to_numpy()
        r, rho = correlation(jne[~kink], g["abs_second_derivative"].to_numpy()[~kink])
        rows.append({
            "n_samples": int(n),
            "pearson_r": r,
            "spearman_r": rho,
            "n_windows": int((~kink).sum()),
            "n_kink_windows": int(kink.sum()),
            "jne_mean": float(jne[~kink].mean()),
            "kink_jne_mean": float(jne[kink].mean()) if kink.any() else float("nan"),
        })
    return pd.DataFrame(rows)
