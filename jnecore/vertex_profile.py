"""One vertex of a bundle: its row, and its JNE-SS profile by stimulus category with bootstrap CIs.

The maps page shows this for a clicked vertex. The profile is the mean JNE-SS of the vertex over
each category's test stimuli, with a percentile bootstrap over those stimuli (resampled with
replacement within the category) for the confidence interval.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .validation import InputError

__all__ = ["bootstrap_mean_ci", "vertex_profile", "vertex_row"]


def bootstrap_mean_ci(x, *, n_boot: int = 2000, ci: float = 0.95, seed: int = 0) -> tuple:
    """Percentile bootstrap interval of the mean of ``x`` (resampled with replacement).

    Parameters
    ----------
    x : array of float, (n,)
        NaN entries are dropped.
    n_boot : int
        Resamples.
    ci : float
        Coverage, in (0, 1).
    seed : int

    Returns
    -------
    (mean, lo, hi) : tuple of float
        NaN for an empty ``x``; ``lo == hi == mean`` for one value.
    """
    if not 0 < ci < 1:
        raise InputError("ci", f"must lie in (0, 1), got {ci}")
    if n_boot < 1:
        raise InputError("n_boot", f"must be at least 1, got {n_boot}")
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    if not x.size:
        return (np.nan, np.nan, np.nan)
    m = float(x.mean())
    if x.size == 1:
        return (m, m, m)
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    for s in range(0, n_boot, 256):  # chunks bound the memory for many stimuli
        k = min(256, n_boot - s)
        means[s:s + k] = x[rng.integers(0, x.size, size=(k, x.size))].mean(axis=1)
    a = (1 - ci) / 2
    lo, hi = np.quantile(means, [a, 1 - a])
    return (m, float(lo), float(hi))


def vertex_profile(jne_ss_column, groups, *, n_boot: int = 2000, ci: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """JNE-SS of one vertex by stimulus group, with bootstrap CIs over each group's stimuli.

    Parameters
    ----------
    jne_ss_column : array of float, (n_test,)
        The vertex's JNE-SS on each test stimulus (a column of the bundle's ``jne_ss``; NaN where
        it was not computed).
    groups : array of str, (n_test,)
        Group (e.g. category) of each test stimulus.
    n_boot, ci, seed : see :func:`bootstrap_mean_ci` (each group gets seed + its position).

    Returns
    -------
    profile : DataFrame, one row per group (sorted)
        group, n_stimuli, mean, lo, hi (NaN when the vertex has no JNE-SS).
    """
    x = np.asarray(jne_ss_column, dtype=np.float64)
    g = np.asarray(groups).astype(str)
    if x.ndim != 1 or len(x) != len(g):
        raise InputError("groups", f"{len(g)} group labels for {x.shape} JNE-SS values")
    rows = []
    for k, name in enumerate(sorted(set(g))):
        sel = x[g == name]
        m, lo, hi = bootstrap_mean_ci(sel, n_boot=n_boot, ci=ci, seed=seed + k)
        rows.append(dict(group=name, n_stimuli=int(len(sel)), mean=m, lo=lo, hi=hi))
    return pd.DataFrame(rows, columns=["group", "n_stimuli", "mean", "lo", "hi"])


def vertex_row(vertices: pd.DataFrame, vertex: int):
    """(row position, row as a Series) of a vertex in a bundle's vertices table, or (None, None)."""
    hit = np.flatnonzero(vertices["vertex"].to_numpy() == int(vertex))
    if not hit.size:
        return None, None
    i = int(hit[0])
    return i, vertices.iloc[i]
