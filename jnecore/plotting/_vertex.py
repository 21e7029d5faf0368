"""The selected vertex's JNE-SS profile: one bar per stimulus group, bootstrap CI whiskers."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ._selectivity import group_colors

__all__ = ["plot_vertex_profile"]


def plot_vertex_profile(profile, *, title: str | None = None, ci: float = 0.95) -> go.Figure:
    """Bars of mean JNE-SS per group with asymmetric error bars to the CI bounds; the axis starts at 0.

    Parameters
    ----------
    profile : DataFrame
        From :func:`jnecore.vertex_profile.vertex_profile` (group, n_stimuli, mean, lo, hi).
    title : str, optional
    ci : float
        The coverage of the intervals (stated in the axis title).

    Returns
    -------
    fig : go.Figure
        One Bar trace "profile"; ``customdata`` (n_groups, 3) = [n_stimuli, lo, hi].
    """
    p = profile
    mean = p["mean"].to_numpy(dtype=float)
    lo, hi = p["lo"].to_numpy(dtype=float), p["hi"].to_numpy(dtype=float)
    colors = group_colors(p["group"])
    fig = go.Figure(go.Bar(
        x=p["group"].astype(str), y=mean, name="profile",
        marker_color=[colors[str(g)] for g in p["group"]],
        error_y=dict(type="data", symmetric=False, array=np.nan_to_num(hi - mean), arrayminus=np.nan_to_num(mean - lo),
                     color="#333", thickness=1.5, width=6),
        customdata=np.stack([p["n_stimuli"].to_numpy(dtype=float), lo, hi], axis=1),
        hovertemplate="%{x}<br>mean JNE-SS %{y:.4g}<br>" + f"{ci:.0%} CI" +
                      " %{customdata[1]:.4g} to %{customdata[2]:.4g}<br>%{customdata[0]:d} stimuli<extra></extra>",
    ))
    top = np.nanmax(hi) if np.isfinite(hi).any() else 1.0
    fig.update_layout(title=dict(text=title) if title else None, height=300, margin=dict(l=50, r=10, t=40 if title else 10, b=40),
                      yaxis=dict(title=f"JNE-SS (mean, {ci:.0%} bootstrap CI)", range=[0, top * 1.1 if top > 0 else 1.0],
                                 rangemode="tozero"),
                      xaxis=dict(title="stimulus group"), showlegend=False, template="plotly_white")
    return fig
