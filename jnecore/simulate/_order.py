"""Result I (b) over repeats: mean JNE per placement with CIs, paired differences, and the paper's
claimed order of placements against the measured one.

The paper claims, for a residual network, JNE(none) < JNE(Loc1) < JNE(Loc2) < JNE(both)
(:data:`PAPER_ORDER`). Every statistic here is over the repeats (random initialisations) of one
configuration: architecture x init x activation (the columns present among ``architecture``,
``init``, ``activation``).

- Mean JNE per placement with a two-sided Student t interval over repeats (``confidence``, 95% by
  default): mean +- t_{(1+c)/2, n-1} sd / sqrt(n).
- For each pair (P, Q) with P before Q in the claimed order, the paired difference
  d_r = JNE_r(Q) - JNE_r(P) (same draw of weights and inputs in repeat r) and its t interval. The
  pair ``supports`` the claim when the interval lies above 0, ``contradicts`` it when it lies below
  0, and is ``unresolved`` otherwise (or with fewer than two repeats).
- Verdict per configuration: ``agrees`` when every adjacent pair of the claimed order supports it
  (then every pair does: the mean of a sum of differences exceeds the sum of their half-widths);
  ``disagrees`` when any pair contradicts it; ``inconclusive`` otherwise. The intervals are
  per pair, not corrected for the several pairs and configurations looked at.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "PAPER_ORDER", "CONFIDENCE", "VERDICTS", "config_keys", "t_interval", "placement_summary",
    "placement_pairs", "placement_order", "placement_tables", "paper_order_holds", "order_report",
]

#: the paper's claimed order of placements, lowest JNE first
PAPER_ORDER = ("none", "Loc1", "Loc2", "both")
CONFIDENCE = 0.95
VERDICTS = ("agrees", "disagrees", "inconclusive")
_KEYS = ("architecture", "init", "activation")


def config_keys(df: pd.DataFrame) -> list[str]:
    """The configuration columns ``df`` has, of ``architecture``, ``init``, ``activation``."""
    return [k for k in _KEYS if k in df.columns]


def t_interval(x, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """Mean of ``x`` (1-D) and its two-sided Student t confidence interval.

    Returns
    -------
    (mean, low, high)
        low = high = mean when ``x`` is constant; NaN bounds with fewer than two values (NaN
        everything for none).
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    if x.size == 0:
        return float("nan"), float("nan"), float("nan")
    m = float(x.mean())
    if x.size < 2:
        return m, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + confidence / 2.0, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size))
    return m, m - half, m + half


def _groups(df: pd.DataFrame):
    keys = config_keys(df)
    if not keys:
        yield (), df
        return
    for key, g in df.groupby(keys, sort=False):
        yield (key if isinstance(key, tuple) else (key,)), g


def placement_summary(df: pd.DataFrame, confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Mean JNE per configuration and placement over repeats, with its t interval.

    Parameters
    ----------
    df : DataFrame
        One row per repeat: the configuration columns, ``placement``, ``repeat``, ``jne`` (what
        :func:`jnecore.simulate.network_placement` returns).

    Returns
    -------
    DataFrame, one row per configuration and placement: the configuration columns, ``placement``,
    ``mean``, ``std`` (ddof=1; 0 for one repeat), ``sem``, ``n``, ``ci_low``, ``ci_high``, ``rank``
    (of the mean within the configuration, 1 = lowest, ties share the lowest rank).
    """
    keys = config_keys(df)
    rows = []
    for key, g in _groups(df):
        for p, gp in g.groupby("placement", sort=False):
            x = gp["jne"].to_numpy(np.float64)
            m, lo, hi = t_interval(x, confidence)
            sd = float(x.std(ddof=1)) if x.size > 1 else 0.0
            rows.append({**dict(zip(keys, key)), "placement": p, "mean": m, "std": sd, "sem": sd / np.sqrt(x.size),
                         "n": int(x.size), "ci_low": lo, "ci_high": hi})
    out = pd.DataFrame(rows)
    rank = out.groupby(keys, sort=False)["mean"] if keys else out["mean"]
    out["rank"] = rank.rank(method="min").astype(np.int64)
    return out


def _pair_row(wide: pd.DataFrame, lower: str, upper: str, confidence: float) -> dict:
    both = wide[[lower, upper]].dropna()
    d = (both[upper] - both[lower]).to_numpy(np.float64)
    m, lo, hi = t_interval(d, confidence)
    result = "supports" if lo > 0 else "contradicts" if hi < 0 else "unresolved"
    return {"lower": lower, "upper": upper, "mean_diff": m, "ci_low": lo, "ci_high": hi,
            "fraction_lower": float((both[lower] < both[upper]).mean()) if len(both) else float("nan"),
            "n": int(d.size), "result": result}


def placement_pairs(df: pd.DataFrame, claimed: Sequence[str] = PAPER_ORDER,
                    confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Paired differences JNE(upper) - JNE(lower) over repeats for every pair of the claimed order.

    Parameters
    ----------
    df : DataFrame
        Per-repeat JNE, as for :func:`placement_summary`.
    claimed : sequence of str
        The claimed order, lowest first; placements not in ``df`` are skipped.

    Returns
    -------
    DataFrame, one row per configuration and pair (lower before upper in ``claimed``): the
    configuration columns, ``lower``, ``upper``, ``adjacent`` (neighbours in the claimed order),
    ``mean_diff``, ``ci_low``, ``ci_high`` (t interval of the paired difference), ``fraction_lower``
    (share of repeats with JNE(lower) < JNE(upper)), ``n`` (repeats), ``result`` (``supports``,
    ``contradicts`` or ``unresolved``; see the module docstring).
    """
    keys = config_keys(df)
    rows = []
    for key, g in _groups(df):
        wide = g.pivot(index="repeat", columns="placement", values="jne")
        present = [p for p in claimed if p in wide.columns]
        for i, lower in enumerate(present):
            for j in range(i + 1, len(present)):
                rows.append({**dict(zip(keys, key)), **_pair_row(wide, lower, present[j], confidence),
                             "adjacent": j == i + 1})
    cols = keys + ["lower", "upper", "adjacent", "mean_diff", "ci_low", "ci_high", "fraction_lower", "n", "result"]
    return pd.DataFrame(rows, columns=cols)


def _measured_text(g: pd.DataFrame) -> str:
    """'none < Loc2 < ...' by mean, claimed-order position breaking ties; '=' for equal means."""
    means = dict(zip(g["placement"], g["mean"]))
    rank = {p: i for i, p in enumerate(PAPER_ORDER)}
    ranked = sorted(means, key=lambda p: (means[p], rank.get(p, len(rank))))
    text = ranked[0]
    for prev, cur in zip(ranked, ranked[1:]):
        text += (" = " if means[cur] == means[prev] else " < ") + cur
    return text


def _pair_text(row, confidence: float) -> str:
    return (f"{row.upper} - {row.lower} = {row.mean_diff:.4g} ({confidence:.0%} CI {row.ci_low:.4g} to "
            f"{row.ci_high:.4g}; {row.lower} < {row.upper} in {row.fraction_lower:.0%} of {row.n} repeats)")


def _verdict(pairs: pd.DataFrame, confidence: float) -> tuple[str, str]:
    """(verdict, reason) for one configuration's pairs."""
    adjacent = pairs[pairs["adjacent"]]
    bad = pairs[pairs["result"] == "contradicts"]
    if len(bad):
        bad = bad.sort_values("adjacent", ascending=False, kind="stable")
        return "disagrees", "; ".join(_pair_text(r, confidence) for r in bad.itertuples(index=False))
    if len(adjacent) and (adjacent["result"] == "supports").all():
        return "agrees", "every adjacent paired difference is above 0"
    open_ = adjacent[adjacent["result"] != "supports"]
    return "inconclusive", "unresolved: " + "; ".join(_pair_text(r, confidence) for r in open_.itertuples(index=False))


def _label(keys, key) -> str:
    parts = dict(zip(keys, key))
    out = [parts[k] if k != "init" else f"init={parts[k]}" for k in keys]
    return ", ".join(out)


def placement_order(summary: pd.DataFrame, pairs: pd.DataFrame, claimed: Sequence[str] = PAPER_ORDER,
                    confidence: float = CONFIDENCE) -> pd.DataFrame:
    """The claimed order next to the measured one, with a verdict, per configuration.

    Parameters
    ----------
    summary, pairs : DataFrame
        What :func:`placement_summary` and :func:`placement_pairs` return for the same runs.

    Returns
    -------
    DataFrame, one row per configuration: the configuration columns, ``claimed_order``,
    ``measured_order`` (by mean JNE), ``verdict`` (``agrees`` / ``disagrees`` / ``inconclusive``),
    ``reason`` (the contradicting or unresolved pairs with their CIs), ``n_repeats``, ``line``
    (``"<configuration>: paper <order> | measured <order> | <verdict>"``).
    """
    keys = config_keys(summary)
    claimed_text = " < ".join(p for p in claimed if p in set(summary["placement"]))
    pair_groups = dict(_groups(pairs))
    rows = []
    for key, g in _groups(summary):
        verdict, reason = _verdict(pair_groups.get(key, pairs.iloc[:0]), confidence)
        measured = _measured_text(g)
        line = f"{_label(keys, key)}: paper {claimed_text} | measured {measured} | {verdict}"
        rows.append({**dict(zip(keys, key)), "claimed_order": claimed_text, "measured_order": measured,
                     "verdict": verdict, "reason": reason, "n_repeats": int(g["n"].max()), "line": line})
    return pd.DataFrame(rows)


def placement_tables(df: pd.DataFrame, claimed: Sequence[str] = PAPER_ORDER,
                     confidence: float = CONFIDENCE) -> dict:
    """{"summary", "pairs", "order"}: the three tables above for per-repeat JNE ``df``."""
    summary = placement_summary(df, confidence)
    pairs = placement_pairs(df, claimed, confidence)
    return {"summary": summary, "pairs": pairs, "order": placement_order(summary, pairs, claimed, confidence)}


def paper_order_holds(order: pd.DataFrame) -> list[str]:
    """The configurations whose verdict is ``agrees``: one string per architecture x init listing
    its activations (e.g. ``"residual, init=normal: relu, gelu"``); empty when there are none.

    Parameters
    ----------
    order : DataFrame
        What :func:`placement_order` returns.
    """
    ok = order[order["verdict"] == "agrees"]
    outer = [k for k in config_keys(order) if k != "activation"]
    acts = (lambda g: ", ".join(g["activation"].astype(str))) if "activation" in ok else (lambda g: "agrees")
    if not outer or ok.empty:
        return [acts(ok)] if len(ok) else []
    return [f"{_label(outer, key if isinstance(key, tuple) else (key,))}: {acts(g)}"
            for key, g in ok.groupby(outer, sort=False)]


def order_report(order: pd.DataFrame) -> list[str]:
    """Readable lines: one per configuration (paper order | measured order | verdict, and why when
    it does not agree), then which configurations give the paper's order."""
    lines = [r.line if r.verdict == "agrees" else f"{r.line} ({r.reason})" for r in order.itertuples(index=False)]
    claimed = order["claimed_order"].iloc[0] if len(order) else " < ".join(PAPER_ORDER)
    holds = paper_order_holds(order)
    if holds:
        lines.append(f"the paper's order ({claimed}) holds in: " + "; ".join(holds))
    else:
        lines.append(f"the paper's order ({claimed}) holds in none of the configurations run")
    return lines
