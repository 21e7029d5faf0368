"""Multi-view surface figures: one hemisphere per scene, labelled L / R, one shared colour scale.

With both hemispheres in one scene the medial surfaces face each other and no camera sees them,
so a figure of both hemispheres is a grid of scenes (surfplot's and the paper's layout): by
default left lateral, left medial, right medial, right lateral, in a 1 x 4 row or a 2 x 2 grid.
Every panel is a :func:`plot_surface_map` of one hemisphere with the same ``vmin`` / ``vmax``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import plotly.graph_objects as go

from ..validation import InputError
from ._surface import plot_surface_map
from ._surface_colors import color_range, shown_vertices
from ._surface_figure import VIEWS, camera_for_view

#: default panels of a both-hemisphere figure: (hemi, view)
DEFAULT_PANELS = (("left", "lateral"), ("left", "medial"), ("right", "medial"), ("right", "lateral"))
LAYOUTS = {"1x4": (1, 4), "2x2": (2, 2), "4x1": (4, 1), "1x2": (1, 2), "2x1": (2, 1)}


def _panels(panels):
    out = []
    for p in panels:
        hemi, view = p.split() if isinstance(p, str) else p
        hemi = {"l": "left", "r": "right", "lh": "left", "rh": "right"}.get(hemi.lower(), hemi.lower())
        if hemi not in ("left", "right") or view not in VIEWS:
            raise InputError("panels", f"each panel is (hemi, view) with hemi left/right and view in {VIEWS}; got {p!r}")
        out.append((hemi, view))
    if not out:
        raise InputError("panels", "needs at least one panel")
    return out


def plot_surface_views(stat_map, *, panels=DEFAULT_PANELS, layout: str = "1x4", vmin=None, vmax=None,
                       threshold=None, symmetric_cmap: bool = False, title: str | None = None, **kwargs) -> go.Figure:
    """A grid of scenes, one hemisphere and named view each, labelled "L lateral", "R medial", ...

    Parameters
    ----------
    stat_map, threshold, symmetric_cmap, title, **kwargs
        As :func:`plot_surface_map` (``hemi`` and ``view`` come from ``panels``; ``stat_map`` is
        a both-hemisphere map or one value per row of ``vertices``).
    panels : sequence of (hemi, view) or of "left lateral"-style strings
    layout : {"1x4", "2x2", "4x1", "1x2", "2x1"}
        Rows x columns of the grid (panels fill it row by row).
    vmin, vmax : float, optional
        One colour range for every panel; default the range of all finite values (before
        ``threshold``), centred on 0 with ``symmetric_cmap``.

    Returns
    -------
    fig : go.Figure
        Scenes "scene", "scene2", ...; each panel's traces keep their names ("surface", "data",
        "outline", ...); one "colorbar" trace (the first panel's); ``layout.meta`` as
        :func:`plot_surface_map`'s plus ``panels`` [[hemi, view], ...].
    """
    panels = _panels(panels)
    if layout not in LAYOUTS:
        raise InputError("layout", f"must be one of {sorted(LAYOUTS)}, got {layout!r}")
    nr, nc = LAYOUTS[layout]
    if nr * nc < len(panels):
        raise InputError("layout", f"{layout} holds {nr * nc} panels; {len(panels)} given")
    vals = np.asarray(stat_map, dtype=float)
    if vmin is None or vmax is None:
        lo, hi = color_range(vals, shown_vertices(vals), vmin, vmax, symmetric=symmetric_cmap)
        vmin, vmax = (lo if vmin is None else vmin), (hi if vmax is None else vmax)
    fig = go.Figure()
    cache = {}
    gap = 0.01
    annotations = []
    meta = None
    for n, (hemi, view) in enumerate(panels):
        if hemi not in cache:
            cache[hemi] = plot_surface_map(stat_map, hemi=hemi, view=view, vmin=vmin, vmax=vmax, threshold=threshold,
                                           symmetric_cmap=symmetric_cmap, **kwargs)
        one = cache[hemi]
        meta = meta or dict(one.layout.meta)
        sid = "scene" if n == 0 else f"scene{n + 1}"
        for t in one.data:
            if t.name == "colorbar" and n > 0:
                continue
            t = go.Figure(t).data[0]  # a copy
            t.scene = sid
            fig.add_trace(t)
        r, c = divmod(n, nc)
        x0, x1 = c / nc + gap, (c + 1) / nc - gap
        y1, y0 = 1 - r / nr - gap, 1 - (r + 1) / nr + gap
        if True:
            x1 = x1 - (0.06 if c == nc - 1 else 0)  # room for the colour bar at the right
        scene = dict(one.layout.scene.to_plotly_json())
        cam = camera_for_view(view, hemi)
        cam["eye"] = {k: 1.45 * float(x) for k, x in cam["eye"].items()}  # one hemisphere per panel: whole, unclipped
        scene["camera"] = cam
        scene["domain"] = dict(x=[x0, x1], y=[y0, y1])
        fig.update_layout(**{sid: scene})
        annotations.append(dict(text=f"<b>{hemi[0].upper()}</b> {view}", x=(x0 + x1) / 2, y=y1, xref="paper",
                                yref="paper", xanchor="center", yanchor="top", showarrow=False,
                                font=dict(size=15, color="#222")))
    cb = next((t for t in fig.data if t.name == "colorbar"), None)
    if cb is not None:
        cb.marker.colorbar.update(x=1.0, xanchor="right", len=0.8 if nr > 1 else 0.9)
    meta["panels"] = [list(p) for p in panels]
    meta["hemi"], meta["view"] = "both", "panels"
    fig.update_layout(annotations=annotations, margin=dict(l=0, r=0, t=40 if title else 0, b=0), showlegend=False,
                      paper_bgcolor="white", hoverlabel=dict(align="left"),
                      title=dict(text=title, x=0.5) if title else None, meta=meta,
                      height=320 * nr if nc > 1 else 360 * nr, width=None)
    return fig


def _browser_path():
    for p in (os.environ.get("BROWSER_PATH"), shutil.which("chromium"), "/usr/bin/chromium",
              shutil.which("google-chrome"), shutil.which("chromium-browser")):
        if p and Path(p).exists():
            return p
    return None


def save_surface_figure(fig: go.Figure, out, *, width: int = 1600, height: int | None = None, dpi: int = 150) -> Path:
    """Write a figure as PNG, SVG or PDF with kaleido (the system's headless Chromium).

    Parameters
    ----------
    fig : go.Figure
    out : str or Path
        Ending .png, .svg or .pdf. In SVG and PDF the 3D scenes are raster images (WebGL) and the
        labels and colour bar are vector.
    width, height : int
        Size in CSS pixels (height: the figure's, else width / 4 per row).
    dpi : int
        Resolution: the page is rendered at ``dpi / 96`` device pixels per CSS pixel.

    Returns
    -------
    path : Path
    """
    out = Path(out)
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in ("png", "svg", "pdf"):
        raise InputError("out", f"must end in .png, .svg or .pdf, got {out.name!r}")
    try:
        import kaleido  # noqa: F401
    except ImportError:
        raise InputError("figure", "needs kaleido>=1 (pip install 'kaleido>=1') and a Chromium") from None
    browser = _browser_path()
    if browser is None:
        raise InputError("figure", "found no Chromium for kaleido; install chromium or set BROWSER_PATH")
    os.environ.setdefault("BROWSER_PATH", browser)
    height = height or int(fig.layout.height or width // 4)
    fig.write_image(str(out), format=fmt, width=width, height=height, scale=max(dpi, 24) / 96)
    return out


#: bundle metrics of :func:`bundle_figure`: (column or expression, label, units, diverging)
FIGURE_METRICS = {
    "jne": ("JNE", "a.u.", False), "r2_linear": ("R² linear", None, False),
    "r2_nonlinear": ("R² nonlinear", None, False), "r2_diff": ("R² nonlinear − linear", None, True),
    "noise_ceiling": ("noise ceiling", "%", False),
}


def bundle_figure(bundle, metric: str = "jne", *, layout: str = "1x4", surf_mesh: str = "inflated",
                  significant_only: bool = False, threshold=None, cmap=None, vmin=None, vmax=None) -> go.Figure:
    """The publication figure of a bundle's map: four views, one colour bar, ROI outlines.

    Parameters
    ----------
    bundle : jnecore.bundle.Bundle
        A surface bundle (fsLR32k, fsaverage5 or fsaverage).
    metric : {"jne", "r2_linear", "r2_nonlinear", "r2_diff", "noise_ceiling"}
    significant_only : bool
        Hide vertices that did not pass the R² test (JNE is computed on those only anyway).
    threshold, cmap, vmin, vmax, layout, surf_mesh : see :func:`plot_surface_views`

    Returns
    -------
    fig : go.Figure
    """
    if metric not in FIGURE_METRICS:
        raise InputError("metric", f"must be one of {sorted(FIGURE_METRICS)}, got {metric!r}")
    if bundle.space not in ("fsLR32k", "fsaverage5", "fsaverage"):
        raise InputError("bundle", f"space {bundle.space!r} has no cortical mesh; figures need a surface bundle")
    v = bundle.vertices
    if metric == "r2_diff":
        vals = (v["r2_nonlinear"] - v["r2_linear"]).to_numpy(dtype=float)
    elif metric in v:
        vals = v[metric].to_numpy(dtype=float)
    else:
        raise InputError("metric", f"{metric!r} is not in this bundle")
    label, units, diverging = FIGURE_METRICS[metric]
    note = None
    if significant_only:
        vals = np.where(v["significant"].to_numpy(dtype=bool), vals, np.nan)
        note = "significant vertices (q < 0.05)"
    cmap = cmap or ("RdBu_r" if diverging else "Plasma")
    fin = vals[np.isfinite(vals)]
    if fin.size and (vmin is None or vmax is None):  # robust range: 2nd-98th percentile of all finite values
        lo, hi = np.percentile(fin, [2, 98])
        vmin = float(lo) if vmin is None else vmin
        vmax = float(hi) if vmax is None else vmax
    return plot_surface_views(vals, vertices=v["vertex"].to_numpy(dtype=np.int64), space=bundle.space,
                              surf_mesh=surf_mesh, layout=layout, threshold=threshold, cmap=cmap, vmin=vmin, vmax=vmax,
                              symmetric_cmap=diverging, value_name=label, units=units, colorbar_note=note,
                              hover=None)
