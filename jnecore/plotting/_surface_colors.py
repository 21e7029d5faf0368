"""Colour mapping for :func:`~jnecore.plotting.plot_surface_map`: values to uint8 colour codes.

One ``intensity`` per vertex on a two-part colour scale (cmin 0, cmax 255): codes 0..126 are greys
for the background (dark = deep sulcus), codes 128..255 the colormap for values in [vmin, vmax]
(clipped). nilearn's own colour helpers (``nilearn.plotting.js_plotting_utils.colorscale``) build
matplotlib RGBA per vertex; plotly's named scales and one byte per vertex keep the figure small.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import plotly.colors as pcolors

from ..validation import InputError

BG_LIGHT, BG_DARK, BG_FLAT = "rgb(228,228,228)", "rgb(125,125,125)", "rgb(190,190,190)"
BG_MAX, DATA_MIN = 126, 128  # uint8 intensity codes: 0..BG_MAX background, DATA_MIN..255 data


def colormaps() -> list:
    """Names accepted by ``cmap``: plotly's named colour scales, each also reversed with "_r".

    Matching is case-insensitive (``"Hot"``, ``"hot"`` and ``"HOT"`` are the same scale).

    Returns
    -------
    names : list of str, (2 * n_scales,)
        Lower-case names, the reversed ("_r") ones after the others.
    """
    names = sorted(pcolors.named_colorscales())
    return names + [n + "_r" for n in names]


def colorscale(cmap) -> list:
    """(pos, colour) stops of a named colour scale (a list of stops is returned as given).

    Parameters
    ----------
    cmap : str or list of (pos, colour), (n_stops, 2)

    Returns
    -------
    stops : list of [float, str], (n_stops, 2)
    """
    if not isinstance(cmap, str):
        return pcolors.validate_colorscale(list(cmap)) or list(cmap)
    key = cmap.lower()
    if key not in set(colormaps()):
        raise InputError("cmap", f"unknown colour map {cmap!r}; see jnecore.plotting.colormaps()")
    return [[float(p), c] for p, c in pcolors.get_colorscale(key)]


def combined_scale(stops, flat_bg: bool) -> list:
    """Colour scale over the uint8 codes: greys on codes 0..126, the data scale on 128..255.

    Parameters
    ----------
    stops : list of (pos, colour), (n_stops, 2)
        The data colour scale on [0, 1].
    flat_bg : bool
        One grey for the whole background (no background map).

    Returns
    -------
    scale : list of [float, str], (n_stops + 2, 2)
    """
    lo, hi = (BG_FLAT, BG_FLAT) if flat_bg else (BG_LIGHT, BG_DARK)
    out = [[0.0, lo], [BG_MAX / 255, hi]]
    out += [[(DATA_MIN + float(p) * (255 - DATA_MIN)) / 255, c] for p, c in stops]
    return out


def shown_vertices(values, mask=None, threshold=None) -> np.ndarray:
    """Vertices drawn in colour: a finite value, in ``mask``, and ``|value| >= threshold``.

    Parameters
    ----------
    values : ndarray of float, (n,)
    mask : ndarray of bool, (n,), optional
    threshold : float, optional

    Returns
    -------
    shown : ndarray of bool, (n,)
    """
    shown = np.isfinite(values) if mask is None else np.isfinite(values) & mask
    if threshold is not None:
        shown &= np.abs(np.nan_to_num(values)) >= float(threshold)
    return shown


def color_range(values, shown, vmin=None, vmax=None, symmetric=False) -> tuple:
    """Colour range: ``vmin`` / ``vmax``, else min / max of the ``shown`` values (0 / 1 if none).

    Parameters
    ----------
    values : ndarray of float, (n,)
    shown : ndarray of bool, (n,)
        The values that set the range (:func:`map_colors` passes every finite value in the mask,
        *not* the thresholded ones, so that a threshold never changes the colours).
    vmin, vmax : float, optional
    symmetric : bool
        Centre on 0: the range becomes [-m, m], m = max(|lo|, |hi|) (diverging maps).

    Returns
    -------
    lo, hi : float
        With ``hi > lo`` (an empty range is widened).
    """
    sv = values[shown]
    lo = float(np.min(sv)) if vmin is None and sv.size else (0.0 if vmin is None else float(vmin))
    hi = float(np.max(sv)) if vmax is None and sv.size else (1.0 if vmax is None else float(vmax))
    if symmetric:
        m = max(abs(lo), abs(hi)) or 1.0
        lo, hi = -m, m
    if hi <= lo:
        hi = lo + (abs(lo) * 1e-3 if lo else 1.0)
    return lo, hi


def background_shade(bg, mask=None) -> np.ndarray:
    """Background map scaled to [0, 1] between its 2nd and 98th percentiles over ``mask``.

    Parameters
    ----------
    bg : ndarray of float, (n,), or None
    mask : ndarray of bool, (n,), optional
        Vertices whose values set the percentiles (e.g. those drawn).

    Returns
    -------
    shade : ndarray of float, (n,)
        0 = light grey, 1 = dark; 0.5 where ``bg`` is NaN, everywhere when it is None or constant.
    """
    if bg is None:
        return np.full(len(mask), 0.5)
    finite = np.isfinite(bg) if mask is None else np.isfinite(bg) & mask
    if finite.any() and np.ptp(bg[finite]) > 0:
        b0, b1 = np.percentile(bg[finite], [2, 98])
        t = np.clip((bg - b0) / max(b1 - b0, 1e-12), 0, 1)
    else:
        t = np.full(len(bg), 0.5)
    return np.nan_to_num(t, nan=0.5)


def intensity_codes(values, shown, lo, hi, shade) -> np.ndarray:
    """uint8 codes: shown -> 128 + 127 * (clip(v) - lo) / (hi - lo); background -> 126 * shade.

    Parameters
    ----------
    values : ndarray of float, (n,)
    shown : ndarray of bool, (n,)
    lo, hi : float
        Colour range (``hi > lo``).
    shade : ndarray of float in [0, 1], (n,)

    Returns
    -------
    codes : ndarray of uint8, (n,)
    """
    data = np.clip((np.nan_to_num(values, nan=lo) - lo) / (hi - lo), 0, 1)
    code = np.where(shown, DATA_MIN + np.rint(data * (255 - DATA_MIN)), np.rint(shade * BG_MAX))
    return code.astype(np.uint8)


@dataclasses.dataclass(frozen=True, eq=False)
class SurfaceColors:
    """Colours of a surface map (see :func:`map_colors`).

    Attributes
    ----------
    shown : ndarray of bool, (n,)
    codes : ndarray of uint8, (n,)
        Data codes on shown vertices, background codes elsewhere.
    bg_codes : ndarray of uint8, (n,)
        Background codes everywhere (the "surface" trace: hidden vertices show only this).
    scale : list of [float, str]
        Colour scale of ``codes`` (greys then the data scale).
    stops : list of [float, str]
        The data colour scale alone (for the colour bar).
    vmin, vmax : float
    """

    shown: np.ndarray
    codes: np.ndarray
    bg_codes: np.ndarray
    scale: list
    stops: list
    vmin: float
    vmax: float


def map_colors(values, bg=None, *, mask=None, threshold=None, vmin=None, vmax=None, cmap="Hot",
               symmetric_cmap=False) -> SurfaceColors:
    """Map values and a background to colour codes.

    Parameters
    ----------
    values : ndarray of float, (n,)
        NaN = no data (background).
    bg : ndarray of float, (n,), optional
        Background map, higher = darker grey; None: one uniform grey.
    mask : ndarray of bool, (n,), optional
        Vertices that are drawn (values outside are background; they do not set percentiles).
    threshold, vmin, vmax, cmap, symmetric_cmap : see :func:`plot_surface_map`
        The range comes from every finite value in ``mask`` (not only those above ``threshold``).

    Returns
    -------
    colors : SurfaceColors
    """
    values = np.asarray(values, dtype=float)
    mask = np.ones(len(values), dtype=bool) if mask is None else mask
    shown = shown_vertices(values, mask, threshold)
    lo, hi = color_range(values, shown_vertices(values, mask), vmin, vmax, symmetric=symmetric_cmap)
    shade = background_shade(bg, mask)
    codes = intensity_codes(values, shown, lo, hi, shade)
    bg_codes = intensity_codes(values, np.zeros(len(values), dtype=bool), lo, hi, shade)
    stops = colorscale(cmap)
    return SurfaceColors(shown, codes, bg_codes, combined_scale(stops, flat_bg=bg is None), stops, lo, hi)
