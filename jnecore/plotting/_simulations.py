"""Result I figures from a bundle's ``simulations/`` tables (see :mod:`jnecore.simulate`).

- :func:`plot_single_neuron`: JNE and |phi''| along the input axis, one panel per activation,
  with their Pearson r (paper Fig. 2a).
- :func:`plot_placement`: mean ± SD JNE per activation and placement (Fig. 2b).
- :func:`plot_sample_size`: correlation of JNE with |phi''| against the number of samples N (Fig. 2c).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ._roi import _layout

__all__ = ["PLACEMENT_COLORS", "plot_single_neuron", "plot_placement", "plot_sample_size"]

PLACEMENT_COLORS = {"none": "#bdbdbd", "Loc1": "#6baed6", "Loc2": "#2171b5", "both": "#08306b"}
_JNE_COLOR = "#D55E00"
_PHI_COLOR = "#0072B2"


def _norm(a):
    a = np.asarray(a, dtype=float)
    m = np.nanmax(np.abs(a)) if a.size else 0.0
    return a / m if m > 0 else a


def plot_single_neuron(curves: pd.DataFrame, summary: pd.DataFrame | None = None, *, normalise: bool = True,
                       title=None, height: int = 360) -> go.Figure:
    """JNE and |phi''| against the window centre, one panel per activation.

    Parameters
    ----------
    curves : single_neuron.parquet: activation, centre, jne, abs_second_derivative (one row per
        activation and centre)
    summary : single_neuron_summary.parquet (activation, pearson_r); computed from ``curves`` when
        None
    normalise : divide each curve by its maximum so both share one axis

    Returns a figure with two traces per activation, in the activations' order of appearance:
    ``JNE`` then ``|phi''|``; the panel titles carry Pearson r.
    """
    acts = list(dict.fromkeys(curves["activation"].astype(str)))
    r = {}
    if summary is not None and "pearson_r" in summary:
        r = dict(zip(summary["activation"].astype(str), summary["pearson_r"].astype(float)))
    for a in acts:
        if a not in r:
            sub = curves[curves["activation"].astype(str) == a]
            x, y = sub["jne"].to_numpy(float), sub["abs_second_derivative"].to_numpy(float)
            ok = np.isfinite(x) & np.isfinite(y)
            r[a] = float(np.corrcoef(x[ok], y[ok])[0, 1]) if ok.sum() > 2 and x[ok].std() > 0 and y[ok].std() > 0 else np.nan
    fig = make_subplots(rows=1, cols=max(1, len(acts)), shared_yaxes=normalise,
                        subplot_titles=[f"{a}: r = {r[a]:.3f}" for a in acts], horizontal_spacing=0.04)
    for i, a in enumerate(acts, start=1):
        sub = curves[curves["activation"].astype(str) == a].sort_values("centre")
        x = sub["centre"].to_numpy(float)
        jne = sub["jne"].to_numpy(float)
        phi = sub["abs_second_derivative"].to_numpy(float)
        if normalise:
            jne, phi = _norm(jne), _norm(phi)
        fig.add_scatter(x=x, y=jne, mode="lines", name="JNE", line=dict(color=_JNE_COLOR, width=2), legendgroup="jne",
                        showlegend=i == 1, row=1, col=i)
        fig.add_scatter(x=x, y=phi, mode="lines", name="|φ''|", line=dict(color=_PHI_COLOR, width=1.5, dash="dot"),
                        legendgroup="phi", showlegend=i == 1, row=1, col=i)
        fig.update_xaxes(title="window centre c", row=1, col=i)
    fig.update_yaxes(title="normalised to max" if normalise else "value", row=1, col=1)
    return _layout(fig, title if title is not None else "Single neuron y = φ(x): JNE tracks |φ''| (Pearson r per activation)",
                   height=height)


def plot_placement(summary: pd.DataFrame, *, error: str = "std", title=None, height: int = 400) -> go.Figure:
    """Mean JNE per activation (x) and placement of the nonlinearity (colour), with error bars.

    Parameters
    ----------
    summary : placement_summary.parquet: activation, placement, mean, std, sem, n
    error : "std" (the paper's bars) or "sem"

    Returns one bar trace per placement (none, Loc1, Loc2, both order); ``x`` = activations.
    """
    s = summary.copy()
    s["activation"] = s["activation"].astype(str)
    s["placement"] = s["placement"].astype(str)
    acts = list(dict.fromkeys(s["activation"]))
    places = [p for p in PLACEMENT_COLORS if p in set(s["placement"])] + \
        [p for p in dict.fromkeys(s["placement"]) if p not in PLACEMENT_COLORS]
    fig = go.Figure()
    for p in places:
        sub = s[s["placement"] == p].set_index("activation").reindex(acts)
        fig.add_bar(x=acts, y=sub["mean"].to_numpy(float), name=p, marker_color=PLACEMENT_COLORS.get(p, "#999999"),
                    error_y=dict(type="data", array=sub[error].to_numpy(float), visible=True),
                    customdata=sub["n"].to_numpy() if "n" in sub else None,
                    hovertemplate="%{x}, " + p + "<br>mean JNE %{y:.4g}<br>n = %{customdata}<extra></extra>")
    fig.update_xaxes(title="activation")
    fig.update_yaxes(title=f"JNE (mean ± {'SD' if error == 'std' else 'SEM'} over initialisations)")
    return _layout(fig, title if title is not None else "Placement of the nonlinearity in a residual network",
                   height=height, barmode="group", legend_title_text="placement")


def plot_sample_size(table: pd.DataFrame, *, title=None, height: int = 380) -> go.Figure:
    """Correlation of JNE with |phi''| against the number of samples per window (log x axis).

    table : sample_size.parquet: n_samples, pearson_r[, spearman_r]. Trace 0 = Pearson r,
    trace 1 = Spearman r (when present).
    """
    t = table.sort_values("n_samples")
    fig = go.Figure()
    fig.add_scatter(x=t["n_samples"].to_numpy(), y=t["pearson_r"].to_numpy(float), mode="lines+markers",
                    name="Pearson r", line=dict(color=_JNE_COLOR))
    if "spearman_r" in t:
        fig.add_scatter(x=t["n_samples"].to_numpy(), y=t["spearman_r"].to_numpy(float), mode="lines+markers",
                        name="Spearman r", line=dict(color=_PHI_COLOR, dash="dot"))
    fig.update_xaxes(type="log", title="samples per window N", tickvals=t["n_samples"].tolist(),
                     ticktext=[str(int(n)) for n in t["n_samples"]], minor=dict(showgrid=False, ticks=""))
    fig.update_yaxes(title="correlation of JNE with |φ''|")
    return _layout(fig, title if title is not None else "JNE needs enough samples: r(JNE, |φ''|) vs N  (φ = |sin x|)",
                   height=height)
