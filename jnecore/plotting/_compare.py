"""Comparing two result bundles A and B: per-ROI scatter and per-vertex differences."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from scipy import stats

from ..summaries import level_rank, roi_summary
from ._roi import _label, _layout, _levels_present, level_color

__all__ = ["compare_rois", "vertex_difference", "plot_roi_comparison"]


def compare_rois(vertices_a: pd.DataFrame, vertices_b: pd.DataFrame, metric: str = "jne", *,
                 significant_only: bool = True) -> pd.DataFrame:
    """Per-ROI mean of ``metric`` in bundle A and bundle B, for the ROIs both have.

    Returns columns roi, level, n_a, mean_a, sem_a, n_b, mean_b, sem_b, diff (= mean_b - mean_a),
    in hierarchy order (A's levels).
    """
    a = roi_summary(vertices_a, metric, significant_only=significant_only)
    b = roi_summary(vertices_b, metric, significant_only=significant_only)
    a = a[["roi", "level", "n", "mean", "sem"]].rename(columns={"n": "n_a", "mean": "mean_a", "sem": "sem_a"})
    b = b[["roi", "n", "mean", "sem"]].rename(columns={"n": "n_b", "mean": "mean_b", "sem": "sem_b"})
    a["roi"] = a["roi"].astype(str)
    b["roi"] = b["roi"].astype(str)
    out = a.merge(b, on="roi", how="inner")
    out["diff"] = out["mean_b"] - out["mean_a"]
    out["_l"] = level_rank(out["level"])
    return out.sort_values(["_l", "mean_a"]).drop(columns="_l").reset_index(drop=True)


def vertex_difference(vertices_a: pd.DataFrame, vertices_b: pd.DataFrame, metric: str = "jne") -> pd.DataFrame:
    """Per-vertex ``metric`` of A and B on their shared vertices (matched on ``vertex``).

    Returns columns vertex, hemi, roi, level (from A), a, b, diff (= b - a); NaN where either is
    NaN. Only vertices present in both tables are kept.
    """
    cols = ["vertex", "hemi", "roi", "level", metric]
    a = vertices_a[cols].rename(columns={metric: "a"})
    b = vertices_b[["vertex", metric]].rename(columns={metric: "b"})
    out = a.merge(b, on="vertex", how="inner")
    out["a"] = out["a"].astype(float)
    out["b"] = out["b"].astype(float)
    out["diff"] = out["b"] - out["a"]
    return out.reset_index(drop=True)


def plot_roi_comparison(table: pd.DataFrame, *, label_a: str = "A", label_b: str = "B", metric: str = "jne",
                        highlight_roi=None, title=None, height: int = 480) -> go.Figure:
    """Scatter of per-ROI means, A (x) against B (y), coloured by level, with the identity line.

    table : from :func:`compare_rois`. Returns one marker trace per level (``text`` = ROI names),
    then the identity line (name "y = x"); the title gives Pearson r across ROIs.
    """
    t = table[np.isfinite(table["mean_a"].astype(float)) & np.isfinite(table["mean_b"].astype(float))]
    r = float(stats.pearsonr(t["mean_a"], t["mean_b"])[0]) if len(t) > 2 and t["mean_a"].std() > 0 and t["mean_b"].std() > 0 else np.nan
    fig = go.Figure()
    for lv in _levels_present(t["level"]):
        sub = t[t["level"].astype(str) == lv]
        sizes = [14 if highlight_roi is not None and str(x) == str(highlight_roi) else 9 for x in sub["roi"]]
        fig.add_scatter(
            x=sub["mean_a"].to_numpy(float), y=sub["mean_b"].to_numpy(float), mode="markers+text", name=lv,
            text=sub["roi"].astype(str).tolist(), textposition="top center", textfont=dict(size=9),
            marker=dict(color=level_color(lv), size=sizes, line=dict(color="black", width=0.5)),
            error_x=dict(type="data", array=sub["sem_a"].to_numpy(float), visible=True, thickness=0.8) if "sem_a" in sub else None,
            error_y=dict(type="data", array=sub["sem_b"].to_numpy(float), visible=True, thickness=0.8) if "sem_b" in sub else None,
            hovertemplate="%{text}<br>" + label_a + " %{x:.4g}<br>" + label_b + " %{y:.4g}<extra>" + lv + "</extra>",
        )
    vals = np.concatenate([t["mean_a"].to_numpy(float), t["mean_b"].to_numpy(float)]) if len(t) else np.array([0.0, 1.0])
    lo, hi = float(np.nanmin(vals)), float(np.nanmax(vals))
    pad = 0.05 * (hi - lo if hi > lo else 1.0)
    fig.add_scatter(x=[lo - pad, hi + pad], y=[lo - pad, hi + pad], mode="lines", name="y = x",
                    line=dict(color="black", dash="dash", width=1), hoverinfo="skip")
    m = _label(metric)
    fig.update_xaxes(title=f"{m}: {label_a}")
    fig.update_yaxes(title=f"{m}: {label_b}")
    rtxt = f"Pearson r = {r:.3f}" if np.isfinite(r) else "r not defined"
    return _layout(fig, title if title is not None else f"Per-ROI mean {m}: {label_a} vs {label_b} ({rtxt}, {len(t)} ROIs)",
                   height=height, legend_title_text="level")
