"""Result I figures from a bundle's ``simulations/`` tables (see :mod:`jnecore.simulate`).

- :func:`plot_single_neuron`: JNE and |phi''| along the input axis, one panel per activation,
  with their Pearson r (paper Fig. 2a).
- :func:`plot_placement`: mean JNE per activation and placement with CI / SD / SEM bars (Fig. 2b),
  one panel per architecture x initialisation.
- :func:`plot_placement_pairs`: the paired differences between neighbours in the paper's claimed
  order (none < Loc1 < Loc2 < both) with their CIs, a panel per configuration and pair; above 0
  agrees with the paper.
- :func:`plot_sample_size`: correlation of JNE with |phi''| against the number of samples N (Fig. 2c).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ._roi import _layout

__all__ = ["PLACEMENT_COLORS", "RESULT_SYMBOLS", "plot_single_neuron", "plot_placement", "plot_placement_pairs",
           "plot_sample_size"]

PLACEMENT_COLORS = {"none": "#bdbdbd", "Loc1": "#6baed6", "Loc2": "#2171b5", "both": "#08306b"}
#: marker symbol of a paired difference by its result (see jnecore.simulate.placement_pairs)
RESULT_SYMBOLS = {"supports": "circle", "contradicts": "x", "unresolved": "circle-open"}
_RESULT_COLORS = {"supports": "#009E73", "contradicts": "#D55E00", "unresolved": "#7f7f7f"}
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


def _panels(df: pd.DataFrame):
    """[(title, rows of df)] per architecture x init (one untitled panel without those columns),
    laid out architectures down, inits across; returns (panels, n_rows, n_cols)."""
    archs = list(dict.fromkeys(df["architecture"].astype(str))) if "architecture" in df else [None]
    inits = list(dict.fromkeys(df["init"].astype(str))) if "init" in df else [None]
    panels = []
    for arch in archs:
        for init in inits:
            sel = np.ones(len(df), bool)
            if arch is not None:
                sel &= df["architecture"].astype(str).to_numpy() == arch
            if init is not None:
                sel &= df["init"].astype(str).to_numpy() == init
            title = ", ".join(t for t in (arch, None if init is None else f"init={init}") if t)
            panels.append((title, df[sel]))
    return panels, len(archs), len(inits)


def _verdict_note(order: pd.DataFrame | None, sub: pd.DataFrame) -> str:
    if order is None or sub.empty or "verdict" not in order:
        return ""
    keys = [k for k in ("architecture", "init") if k in order and k in sub]
    o = order
    for k in keys:
        o = o[o[k].astype(str) == str(sub[k].iloc[0])]
    n_ok = int((o["verdict"] == "agrees").sum())
    return f" — paper's order in {n_ok}/{len(o)}"


def _bar_errors(sub: pd.DataFrame, error: str) -> dict:
    if error == "ci":
        m = sub["mean"].to_numpy(float)
        return dict(type="data", symmetric=False, array=sub["ci_high"].to_numpy(float) - m,
                    arrayminus=m - sub["ci_low"].to_numpy(float), visible=True)
    return dict(type="data", array=sub[error].to_numpy(float), visible=True)


def plot_placement(summary: pd.DataFrame, *, error: str = "ci", order: pd.DataFrame | None = None, title=None,
                   height: int | None = None) -> go.Figure:
    """Mean JNE per activation (x) and placement of the nonlinearity (colour), with error bars; one
    panel per architecture x initialisation (rows x columns) when the table has those columns.

    Parameters
    ----------
    summary : placement_summary.parquet: [architecture, init,] activation, placement, mean, std,
        sem, n[, ci_low, ci_high]
    error : "ci" (the t interval of the mean, needs ci_low / ci_high), "std" (the paper's bars) or
        "sem"
    order : placement_order.parquet; when given, each panel's title says in how many activations
        the paper's order holds

    Returns one bar trace per panel and placement (none, Loc1, Loc2, both order within a panel);
    ``x`` = activations. Panels have their own y axes (the inits differ by orders of magnitude).
    """
    if error == "ci" and not {"ci_low", "ci_high"} <= set(summary.columns):
        raise ValueError("error='ci' needs the summary's ci_low and ci_high columns")
    s = summary.copy()
    s["activation"] = s["activation"].astype(str)
    s["placement"] = s["placement"].astype(str)
    acts = list(dict.fromkeys(s["activation"]))
    places = [p for p in PLACEMENT_COLORS if p in set(s["placement"])] + \
        [p for p in dict.fromkeys(s["placement"]) if p not in PLACEMENT_COLORS]
    panels, n_rows, n_cols = _panels(s)
    fig = make_subplots(rows=n_rows, cols=n_cols, subplot_titles=[t + _verdict_note(order, sub) for t, sub in panels]
                        if any(t for t, _ in panels) else None, vertical_spacing=0.12, horizontal_spacing=0.08)
    for i, (ptitle, psub) in enumerate(panels):
        row, col = i // n_cols + 1, i % n_cols + 1
        for p in places:
            sub = psub[psub["placement"] == p].set_index("activation").reindex(acts)
            fig.add_bar(x=acts, y=sub["mean"].to_numpy(float), name=p, legendgroup=p, showlegend=i == 0,
                        marker_color=PLACEMENT_COLORS.get(p, "#999999"), error_y=_bar_errors(sub, error),
                        customdata=sub["n"].to_numpy() if "n" in sub else None, row=row, col=col,
                        hovertemplate=(ptitle + "<br>" if ptitle else "") + "%{x}, " + p +
                        "<br>mean JNE %{y:.4g}<br>n = %{customdata}<extra></extra>")
    label = {"ci": "95% CI of the mean" if "ci_low" in s else "CI", "std": "SD", "sem": "SEM"}[error]
    fig.update_yaxes(title_text=f"JNE (mean, {label} over initialisations)", col=1)
    fig.update_xaxes(title_text="activation", row=n_rows)
    return _layout(fig, title if title is not None else "Placement of the nonlinearity: mean JNE per placement",
                   height=height or 140 + 300 * n_rows, barmode="group", legend_title_text="placement")


def plot_placement_pairs(pairs: pd.DataFrame, *, adjacent_only: bool = True, title=None,
                         height: int | None = None) -> go.Figure:
    """Paired differences JNE(upper) - JNE(lower) over repeats with their CIs: one panel per
    configuration (row: architecture x init) and pair of the claimed order (column), activations
    along x, each panel on its own y scale with a dashed line at 0 (above it: the paper's order).

    Parameters
    ----------
    pairs : placement_pairs.parquet: [architecture, init,] activation, lower, upper, adjacent,
        mean_diff, ci_low, ci_high, result
    adjacent_only : only neighbours in the claimed order (the ones the verdict rests on)

    Returns scatter traces, one per panel and result (``supports`` / ``contradicts`` /
    ``unresolved``, coloured and shaped by :data:`RESULT_SYMBOLS`), ``x`` = activations, ``y`` =
    mean_diff, error bars to ci_low / ci_high; each trace's ``meta`` is {"config", "pair"}.
    """
    p = pairs[pairs["adjacent"].astype(bool)] if adjacent_only else pairs
    p = p.assign(activation=p["activation"].astype(str),
                 label=p["upper"].astype(str) + " − " + p["lower"].astype(str))
    acts = list(dict.fromkeys(p["activation"]))
    labels = list(dict.fromkeys(p["label"]))
    panels, _, _ = _panels(p)
    fig = make_subplots(rows=len(panels), cols=max(1, len(labels)), column_titles=labels,
                        row_titles=[t for t, _ in panels] if any(t for t, _ in panels) else None,
                        vertical_spacing=0.25 / max(1, len(panels)), horizontal_spacing=0.07)
    shown = set()
    for i, (ptitle, psub) in enumerate(panels, start=1):
        for j, lab in enumerate(labels, start=1):
            sub = psub[psub["label"] == lab].set_index("activation").reindex(acts).dropna(subset=["mean_diff"])
            for res, symbol in RESULT_SYMBOLS.items():
                r = sub[sub["result"] == res]
                if r.empty:
                    continue
                m = r["mean_diff"].to_numpy(float)
                fig.add_scatter(x=r.index.tolist(), y=m, mode="markers", name=res, legendgroup=res,
                                showlegend=res not in shown, meta={"config": ptitle, "pair": lab},
                                marker=dict(color=_RESULT_COLORS[res], symbol=symbol, size=9),
                                error_y=dict(type="data", symmetric=False, array=r["ci_high"].to_numpy(float) - m,
                                             arrayminus=m - r["ci_low"].to_numpy(float), visible=True),
                                hovertemplate=(ptitle + "<br>" if ptitle else "") + "%{x}: " + lab +
                                " = %{y:.4g}<br>" + res + "<extra></extra>", row=i, col=j)
                shown.add(res)
            fig.add_hline(y=0, line=dict(color="#555555", dash="dash", width=1), row=i, col=j)
    fig.update_yaxes(title_text="paired difference", col=1)
    return _layout(fig, title if title is not None else
                   "The paper's order pair by pair: JNE(upper) − JNE(lower) over repeats, with CIs (> 0 agrees)",
                   height=height or 120 + 230 * len(panels), legend_title_text="pair")


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
