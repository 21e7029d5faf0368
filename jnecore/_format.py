"""Numbers as the pages and tables show them: p and q values, and cells with no value.

- :func:`format_p`: a p or q value in scientific notation (``"3.1e-04"``). A bootstrap p from
  ``B`` resamples cannot be below ``1 / (B + 1)``: at that floor it reads
  ``"< 0.005 (200 resamples)"`` (the floor rounded up to one significant digit, so the statement
  stays true). An analytic p that underflowed to 0 reads ``"< 1e-300"``.
- :func:`display_table`: a copy of a table for display: p / q columns through :func:`format_p`,
  every missing cell (None, NaN, NaT, pd.NA) blank, so no cell ever reads "None" or "nan".

The raw table (CSV downloads) keeps the numbers; only what is drawn is formatted.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

__all__ = ["P_COLUMNS", "MISSING", "p_floor", "format_p", "display_table"]

#: columns formatted as p / q values by :func:`display_table`
P_COLUMNS = ("p", "q", "p_fdr", "p_value", "q_value")
#: what a cell with no value shows
MISSING = ""
#: what a p column cell with no value shows
P_MISSING = "n/a"
_UNDERFLOW = 1e-300


def p_floor(n_resamples: int) -> float:
    """The smallest p a bootstrap / permutation test with ``n_resamples`` resamples can give: 1 / (B + 1)."""
    n = int(n_resamples)
    if n < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples!r}")
    return 1.0 / (n + 1)


def _ceil_1sig(x: float) -> str:
    """``x`` (> 0) rounded *up* to one significant digit, as plain text (0.004975 -> "0.005")."""
    e = math.floor(math.log10(x))
    m = math.ceil(round(x / 10.0 ** e, 9))
    if m >= 10:
        m, e = 1, e + 1
    value = m * 10.0 ** e
    return f"{value:.{max(0, -e)}f}" if -6 <= e <= 0 else f"{value:.0e}"


def _missing(x) -> bool:
    if x is None or x is pd.NA or x is pd.NaT:
        return True
    try:
        return bool(isinstance(x, (float, np.floating)) and not np.isfinite(x)) or bool(pd.isna(x) is True)
    except (TypeError, ValueError):
        return False


def format_p(p, n_resamples: int | None = None, *, digits: int = 2) -> str:
    """A p or q value as text, in scientific notation, with the resampling floor stated.

    Parameters
    ----------
    p : float or None
    n_resamples : int, optional
        Bootstrap / permutation resamples behind ``p``: values at or below ``1 / (B + 1)`` read
        ``"< 0.005 (200 resamples)"``. None: an analytic p (no floor; 0 reads ``"< 1e-300"``).
    digits : significant digits (2: ``"1.2e-03"``)

    Returns
    -------
    text : str; ``"n/a"`` when p is missing or not finite.
    """
    if _missing(p):
        return P_MISSING
    p = float(p)
    if n_resamples is not None:
        floor = p_floor(n_resamples)
        if p <= floor * (1 + 1e-9):
            return f"< {_ceil_1sig(floor)} ({int(n_resamples)} resamples)"
    if p <= 0:
        return f"< {_UNDERFLOW:.0e}"
    return f"{p:.{max(0, digits - 1)}e}"


def _number(x) -> str:
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        return f"{float(x):.4g}"
    return str(x)


def display_table(table: pd.DataFrame, *, n_resamples: int | None = None, p_columns=P_COLUMNS) -> pd.DataFrame:
    """A copy of ``table`` for display: p / q columns as :func:`format_p` text, missing cells blank.

    Parameters
    ----------
    table : DataFrame, (n, k)
    n_resamples : resamples behind the table's p values (states the floor); None for analytic p
    p_columns : names of the p / q columns

    Returns
    -------
    DataFrame, (n, k), same columns and order. Columns without missing cells keep their dtype
    (so they still sort as numbers); a column with a missing cell becomes text with those cells
    blank; p / q columns become text.
    """
    out = table.copy()
    for col in out.columns:
        s = out[col]
        text = pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s)
        if str(col) in p_columns and (pd.api.types.is_numeric_dtype(s) or text):
            out[col] = [format_p(x, n_resamples) if not isinstance(x, str) else x for x in s]
            continue
        miss = s.isna().to_numpy()
        if text:
            miss = miss | np.array([_missing(x) or str(x) in ("None", "nan", "NaN") for x in s], dtype=bool)
        if miss.any():
            out[col] = [MISSING if m else _number(x) for x, m in zip(s, miss)]
    return out
