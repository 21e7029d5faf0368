"""Encoding-performance figures: R^2 against the noise ceiling, R^2 per ROI, significant counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ..summaries import level_rank
from ._roi import _layout, _levels_present, _pearson, level_color

__all__ = ["ENCODERS", "encoders_present", "noise_ceiling_fraction", "plot_noise_ceiling_density", "plot_r2_by_roi",
           "plot_r2_distributions", "plot_r2_pair_scatter", "plot_significant_counts", "ridge_comparison",
           "significant_counts"]

#: the encoders a vertex table can score: name -> (R² column, colour). ``r2_ridge`` (the ridge
#: baseline) is there only when the run fitted it.
ENCODERS = {"linear": ("r2_linear", "#9ecae1"), "nonlinear": ("r2_nonlinear", "#08519c"),
            "ridge": ("r2_ridge", "#969696")}


def encoders_present(vertices: pd.DataFrame) -> list:
    """Names of the encoders whose R² column is in ``vertices``, in :data:`ENCODERS` order."""
    return [name for name, (col, _) in ENCODERS.items() if col in vertices]


def _selected(vertices: pd.DataFrame, significant_only: bool) -> pd.DataFrame:
    return vertices[vertices["significant"].astype(bool)] if significant_only else vertices


def noise_ceiling_fraction(vertices: pd.DataFrame, *, model: str = "nonlinear", fraction: float = 0.8,
                           significant_only: bool = False) -> tuple:
    """Share of vertices whose R^2 (in %) reaches ``fraction`` of their noise ceiling (in %).

    Returns (share, n) over vertices with finite R^2 and a positive noise ceiling.
    """
    v = _selected(vertices, significant_only)
    nc = v["noise_ceiling"].to_numpy(dtype=float)
    r2 = 100.0 * v[f"r2_{model}"].to_numpy(dtype=float)
    ok = np.isfinite(nc) & np.isfinite(r2) & (nc > 0)
    if not ok.any():
        return np.nan, 0
    return float(np.mean(r2[ok] >= fraction * nc[ok])), int(ok.sum())


def plot_noise_ceiling_density(vertices: pd.DataFrame, *, model: str = "nonlinear", significant_only: bool = False,
                               bins: int = 60, fraction: float = 0.8, title=None, cmap: str = "Viridis",
                               height: int = 480) -> go.Figure:
    """Density of vertices in (noise ceiling %, R^2 %) with the y = x and y = 0.8 x lines (Fig. 4c).

    Parameters
    ----------
    vertices : bundle vertex table with ``noise_ceiling`` (percent, 0-100) and ``r2_<model>``
    model : "nonlinear", "linear" or "ridge" (needs ``r2_ridge``)
    bins : histogram bins per axis

    Returns a figure: trace 0 a heatmap of log10(count) (NaN where empty; ``customdata`` holds the
    counts), trace 1 the line y = x, trace 2 the line y = ``fraction`` x. The title gives the share
    of vertices at or above ``fraction`` of their noise ceiling.
    """
    if "noise_ceiling" not in vertices:
        raise KeyError("the vertex table has no noise_ceiling column")
    v = _selected(vertices, significant_only)
    x = v["noise_ceiling"].to_numpy(dtype=float)
    y = 100.0 * v[f"r2_{model}"].to_numpy(dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    hi = float(max(np.max(x, initial=1.0), np.max(y, initial=1.0))) * 1.02
    lo = float(min(0.0, np.min(y, initial=0.0)))
    counts, xe, ye = np.histogram2d(x, y, bins=bins, range=[[0.0, hi], [lo, hi]])
    counts = counts.T  # rows = y bins
    with np.errstate(divide="ignore"):
        z = np.where(counts > 0, np.log10(np.maximum(counts, 1)), np.nan)
    xc = (xe[:-1] + xe[1:]) / 2
    yc = (ye[:-1] + ye[1:]) / 2
    fig = go.Figure(go.Heatmap(
        x=xc, y=yc, z=z, customdata=counts, colorscale=cmap, hoverongaps=False,
        colorbar=dict(title="vertices", tickvals=[0, 1, 2, 3, 4], ticktext=["1", "10", "100", "1k", "10k"]),
        hovertemplate="noise ceiling %{x:.1f}%<br>R² %{y:.1f}%<br>%{customdata:.0f} vertices<extra></extra>",
    ))
    fig.add_scatter(x=[0, hi], y=[0, hi], mode="lines", name="y = x", line=dict(color="black", width=1.5))
    fig.add_scatter(x=[0, hi], y=[0, fraction * hi], mode="lines", name=f"y = {fraction:g} x",
                    line=dict(color="black", width=1.5, dash="dash"))
    share, n = noise_ceiling_fraction(v, model=model, fraction=fraction)
    fig.update_xaxes(title="noise ceiling (%)", range=[0, hi])
    fig.update_yaxes(title=f"R² {model} encoder (%)", range=[lo, hi])
    default = (f"R² of the {model} encoder vs noise ceiling: {100 * share:.1f}% of {n} vertices reach "
               f"{100 * fraction:.0f}% of their ceiling") if n else f"R² of the {model} encoder vs noise ceiling"
    return _layout(fig, title if title is not None else default, height=height,
                   legend=dict(x=0.01, y=0.99, bgcolor="rgba(255,255,255,0.7)"))


def _roi_order(v: pd.DataFrame, by: str) -> list:
    s = v.groupby(["roi", "level"], observed=True)[by].mean().reset_index()
    s["_l"] = level_rank(s["level"])
    return s.sort_values(["_l", by])["roi"].astype(str).tolist()


def plot_r2_by_roi(vertices: pd.DataFrame, *, significant_only: bool = True, roi_order=None, title=None,
                   height: int = 420) -> go.Figure:
    """Mean ± SEM test R^2 of each encoder per ROI (grouped bars).

    ROIs are in ``roi_order`` when given (e.g. the hierarchy table's order), else ordered by level,
    then by mean nonlinear R^2. Trace 0 = linear, trace 1 = nonlinear, trace 2 = the ridge
    baseline when the table has ``r2_ridge``.
    """
    v = _selected(vertices, significant_only)
    present = set(v["roi"].astype(str))
    order = [str(r) for r in roi_order if str(r) in present] if roi_order is not None else _roi_order(v, "r2_nonlinear")
    fig = go.Figure()
    for name in encoders_present(v):
        col, color = ENCODERS[name]
        g = v.groupby("roi", observed=True)[col]
        mean = g.mean().reindex(order)
        sem = (g.std() / np.sqrt(g.count())).reindex(order)
        fig.add_bar(x=order, y=mean.to_numpy(dtype=float), name=name, marker_color=color,
                    error_y=dict(type="data", array=sem.to_numpy(dtype=float), visible=True, thickness=1),
                    hovertemplate="%{x}<br>" + name + " R² %{y:.3f}<extra></extra>")
    fig.update_xaxes(categoryorder="array", categoryarray=order, tickangle=-60 if len(order) > 12 else 0)
    fig.update_yaxes(title="test R² (mean ± SEM)")
    which = "significant vertices" if significant_only else "all vertices"
    return _layout(fig, title if title is not None else f"Test R² per ROI ({which})", height=height, barmode="group")


def plot_r2_distributions(vertices: pd.DataFrame, *, significant_only: bool = False, title=None,
                          height: int = 420) -> go.Figure:
    """Distribution over vertices of each encoder's test R^2 (violins with box and mean line).

    Parameters
    ----------
    vertices : bundle vertex table with ``r2_linear``, ``r2_nonlinear`` and, when the run fitted
        the ridge baseline, ``r2_ridge``

    Returns a figure with one violin per encoder present (:func:`encoders_present` order), each
    holding that encoder's finite R^2 values; the title gives their medians.
    """
    v = _selected(vertices, significant_only)
    fig = go.Figure()
    medians = []
    for name in encoders_present(v):
        col, color = ENCODERS[name]
        y = v[col].to_numpy(dtype=float)
        y = y[np.isfinite(y)]
        medians.append(f"{name} {np.median(y):.3f}" if y.size else f"{name} –")
        fig.add_violin(y=y, name=name, line_color=color, fillcolor=color, opacity=0.6, box_visible=True,
                       meanline_visible=True, points=False, hoverinfo="y+name")
    fig.update_yaxes(title="test R²")
    which = "significant vertices" if significant_only else "all vertices"
    default = f"Test R² per encoder ({which}); median: " + ", ".join(medians)
    return _layout(fig, title if title is not None else default, height=height, showlegend=False)


def plot_r2_pair_scatter(vertices: pd.DataFrame, *, x: str = "ridge", y: str = "linear",
                         significant_only: bool = False, max_points: int = 20000, seed: int = 0, title=None,
                         height: int = 460) -> go.Figure:
    """Test R^2 of encoder ``y`` against encoder ``x`` per vertex, coloured by level.

    Parameters
    ----------
    vertices : bundle vertex table holding both encoders' R² columns (see :data:`ENCODERS`)
    x, y : encoder names, e.g. ``x="ridge"`` (the baseline), ``y="linear"`` (the linear network)
    max_points : plot at most this many points (a seeded random subset); the title's numbers use all

    Returns a figure with one scatter trace per level and the identity line last (name "y = x");
    the title gives Pearson r and the share of vertices where ``y`` scores above ``x``.
    """
    cx, cy = ENCODERS[x][0], ENCODERS[y][0]
    if cx not in vertices or cy not in vertices:
        raise KeyError(f"the vertex table lacks {cx if cx not in vertices else cy}")
    v = _selected(vertices, significant_only)
    v = v[np.isfinite(v[cx].to_numpy(dtype=float)) & np.isfinite(v[cy].to_numpy(dtype=float))]
    r, _, n = _pearson(v[cx], v[cy])
    above = float(np.mean(v[cy].to_numpy(dtype=float) > v[cx].to_numpy(dtype=float))) if n else np.nan
    shown = v.sample(max_points, random_state=seed) if len(v) > max_points else v
    fig = go.Figure()
    for lv in _levels_present(shown["level"]):
        sub = shown[shown["level"].astype(str) == lv]
        fig.add_scattergl(x=sub[cx].to_numpy(dtype=float), y=sub[cy].to_numpy(dtype=float), mode="markers", name=lv,
                          marker=dict(color=level_color(lv), size=4, opacity=0.6),
                          customdata=sub["roi"].astype(str).to_numpy()[:, None],
                          hovertemplate=f"%{{customdata[0]}}<br>{x} %{{x:.3f}}<br>{y} %{{y:.3f}}<extra>{lv}</extra>")
    lo = float(min(v[cx].min(), v[cy].min(), 0.0)) if n else 0.0
    hi = float(max(v[cx].max(), v[cy].max(), 0.01)) if n else 1.0
    fig.add_scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="y = x", line=dict(color="black", dash="dash", width=1),
                    hoverinfo="skip")
    fig.update_xaxes(title=f"R² {x} encoder")
    fig.update_yaxes(title=f"R² {y} encoder", scaleanchor="x", scaleratio=1)
    default = (f"{y} vs {x} R²: Pearson r = {r:.3f}, {y} higher for {100 * above:.1f}% of {n} vertices"
               if np.isfinite(r) else f"{y} vs {x} R² (n = {n})")
    return _layout(fig, title if title is not None else default, height=height)


def ridge_comparison(vertices: pd.DataFrame, *, significant_only: bool = False) -> pd.DataFrame:
    """Each network encoder against the ridge baseline over the vertices where both are finite.

    Returns one row per network encoder present (linear, nonlinear): ``encoder``, ``n``,
    ``mean_r2``, ``mean_r2_ridge``, ``median_gain`` (median of R² − ridge R²) and
    ``share_above_ridge``. Raises ``KeyError`` without an ``r2_ridge`` column.
    """
    if "r2_ridge" not in vertices:
        raise KeyError("the vertex table has no r2_ridge column (the run did not fit the ridge baseline)")
    v = _selected(vertices, significant_only)
    ridge = v["r2_ridge"].to_numpy(dtype=float)
    rows = []
    for name in (e for e in encoders_present(v) if e != "ridge"):
        r2 = v[ENCODERS[name][0]].to_numpy(dtype=float)
        ok = np.isfinite(r2) & np.isfinite(ridge)
        gain = r2[ok] - ridge[ok]
        rows.append(dict(encoder=name, n=int(ok.sum()), mean_r2=float(np.mean(r2[ok])) if ok.any() else np.nan,
                         mean_r2_ridge=float(np.mean(ridge[ok])) if ok.any() else np.nan,
                         median_gain=float(np.median(gain)) if ok.any() else np.nan,
                         share_above_ridge=float(np.mean(gain > 0)) if ok.any() else np.nan))
    return pd.DataFrame(rows, columns=["encoder", "n", "mean_r2", "mean_r2_ridge", "median_gain", "share_above_ridge"])


def significant_counts(vertices: pd.DataFrame) -> pd.DataFrame:
    """Per ROI: level, n_vertices, n_significant, share_significant, n_excluded, in hierarchy order."""
    v = vertices.copy()
    v["significant"] = v["significant"].astype(bool)
    excl = v["excluded"].astype(bool) if "excluded" in v else pd.Series(False, index=v.index)
    v["_excl"] = excl
    out = v.groupby(["roi", "level"], observed=True).agg(n_vertices=("significant", "size"),
                                                          n_significant=("significant", "sum"),
                                                          n_excluded=("_excl", "sum")).reset_index()
    out["roi"] = out["roi"].astype(str)
    out["level"] = out["level"].astype(str)
    out["share_significant"] = out["n_significant"] / out["n_vertices"]
    out["_l"] = level_rank(out["level"])
    out = out.sort_values(["_l", "roi"]).drop(columns="_l").reset_index(drop=True)
    return out[["roi", "level", "n_vertices", "n_significant", "share_significant", "n_excluded"]]


def plot_significant_counts(counts: pd.DataFrame, *, title=None, height: int = 400) -> go.Figure:
    """Stacked bars per ROI of significant and not-significant vertices (table from
    :func:`significant_counts`). Trace 0 = significant (coloured by level), trace 1 = the rest."""
    x = counts["roi"].astype(str).tolist()
    sig = counts["n_significant"].to_numpy(dtype=float)
    rest = counts["n_vertices"].to_numpy(dtype=float) - sig
    fig = go.Figure()
    fig.add_bar(x=x, y=sig, name="significant (q < alpha)", marker_color=[level_color(lv) for lv in counts["level"]],
                customdata=100 * counts["share_significant"].to_numpy(dtype=float),
                hovertemplate="%{x}: %{y:.0f} significant (%{customdata:.0f}%)<extra></extra>")
    fig.add_bar(x=x, y=rest, name="not significant", marker_color="#d9d9d9",
                hovertemplate="%{x}: %{y:.0f} not significant<extra></extra>")
    fig.update_xaxes(categoryorder="array", categoryarray=x, tickangle=-60 if len(x) > 12 else 0)
    fig.update_yaxes(title="vertices")
    return _layout(fig, title if title is not None else "Significant vertices per ROI (bootstrap, BH-FDR)",
                   height=height, barmode="stack")
