"""Input checks, gathered in one place, raising one error type the CLI turns into one line.

An :class:`InputError` names the file (or option) and the problem, e.g.
``error: features.npy: 3 rows of 120 contain NaN or inf``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["InputError", "check_matrix", "check_same_rows", "check_labels", "check_choice"]


class InputError(ValueError):
    """Bad user input: ``str(err)`` is ``"<source>: <problem>"``."""

    def __init__(self, source, problem: str):
        self.source = str(source)
        self.problem = problem
        super().__init__(f"{self.source}: {problem}")


def check_matrix(a, source, *, name="array", finite=True, min_rows=1, min_cols=1) -> np.ndarray:
    """Return ``a`` as a float 2-D array (N, D), or raise :class:`InputError`.

    1-D input becomes one column. ``finite`` refuses NaN / inf anywhere.
    """
    a = np.asarray(a)
    if a.dtype == object or a.dtype.kind not in "biuf":
        raise InputError(source, f"{name} must be numeric, got dtype {a.dtype}")
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise InputError(source, f"{name} must be 2-D (rows x columns), got shape {a.shape}")
    if a.shape[0] < min_rows or a.shape[1] < min_cols:
        raise InputError(source, f"{name} has shape {a.shape}: need at least {min_rows} rows and {min_cols} columns")
    a = a.astype(np.float32, copy=False) if a.dtype != np.float64 else a
    if finite:
        bad = ~np.isfinite(a)
        if bad.any():
            rows = int(bad.any(1).sum())
            raise InputError(source, f"{name}: {rows} of {a.shape[0]} rows contain NaN or inf")
    return a


def check_same_rows(a, b, source_a, source_b):
    """Raise unless ``a`` and ``b`` have the same number of rows."""
    if len(a) != len(b):
        raise InputError(source_b, f"has {len(b)} rows but {source_a} has {len(a)}: one row per stimulus in both")


def check_labels(labels, n: int, source, *, what="labels", expected="rows") -> np.ndarray:
    """Return ``labels`` as a string array of length ``n``, or raise."""
    arr = np.asarray(labels).astype(str)
    if arr.ndim != 1:
        raise InputError(source, f"{what} must be one column, got shape {arr.shape}")
    if len(arr) != n:
        raise InputError(source, f"has {len(arr)} {what} but {n} {expected} were expected")
    return arr


def check_choice(value, choices, option: str):
    """Raise unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise InputError(option, f"unknown value {value!r}: use one of {', '.join(map(str, choices))}")
    return value
