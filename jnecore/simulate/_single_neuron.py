"""Result I (a): JNE of a single neuron y = phi(x) follows |phi''|.

For a 1-in-1-out model the Jacobian at x is phi'(x). Over a narrow window of points x_i = c + u_i
around a centre c, phi'(x_i) ~ phi'(c) + phi''(c) u_i, so s_i = |phi'(x_i) - mean phi'| ~
|phi''(c)| |u_i - mean u| and

    JNE(c) ~ |phi''(c)| * std_i |u_i - mean u|      (the column ``jne_taylor``)

which is |phi''(c)| h / sqrt(12) for an even grid of half-width h. Piecewise-linear activations
have phi'' = 0 except for a delta at 0: their JNE is exactly 0 on every window that does not
contain 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from ._activations import SIM_ACTIVATIONS, activation_module, kink_jump, second_derivative
from ._common import Windows, correlation, derivative_jne

__all__ = ["single_neuron", "single_neuron_summary", "single_neuron_jne"]


def single_neuron_jne(activation: str, X, *, device="cpu", dtype=torch.float64) -> np.ndarray:
    """Vectorised JNE of y = phi(x) for many windows at once.

    Parameters
    ----------
    activation : str
        One of ``relu``, ``leaky_relu``, ``gelu``, ``silu``.
    X : array-like (C, P)
        C windows of P scalar inputs each.

    Returns
    -------
    ndarray (C,)
        JNE of each window; equals ``compute_jne(activation_module(activation), X[c][:, None])``.
    """
    return derivative_jne(activation_module(activation), X, device=device, dtype=dtype)


def single_neuron(activations: Sequence[str] = SIM_ACTIVATIONS, *, windows: Windows = Windows(),
                  n_points: int = 1001, device="cpu", dtype=torch.float64) -> pd.DataFrame:
    """JNE of y = phi(x) on narrow windows centred across [-limit, limit], with phi''(centre).

    Window centres are ``windows``' -limit, -limit + step, ..., limit (1001 with the defaults);
    each window is ``n_points`` evenly spaced points on [c - half_width, c + half_width]. Computed in float64 by
    default: in float32 the rounding of phi' (about 1e-7) swamps the smooth activations' JNE
    (about 3e-4 |phi''|) once |phi''| < 1e-3.

    Returns
    -------
    DataFrame, one row per (activation, centre), columns
        ``activation``, ``centre``, ``jne``;
        ``second_derivative``: phi''(centre) for GELU / SiLU; for ReLU / LeakyReLU 0, except on the
        window containing the kink at 0 where it is the delta's mass phi'(0+) - phi'(0-) (a
        delta-like indicator: 1 for ReLU, 0.99 for LeakyReLU);
        ``abs_second_derivative``; ``kink`` (the window contains a kink of phi);
        ``jne_taylor``: |phi''(centre)| * std_i |u_i - mean u|, the first-order prediction for a
        smooth phi (NaN on kink windows).
    """
    centres, offsets = windows.grid(n_points)
    X = centres[:, None] + offsets[None, :]
    u = offsets - offsets.mean()
    spread = float(np.abs(u).std())  # std_i |u_i - mean u|, about h / sqrt(12)
    kink_window = np.abs(centres) <= windows.half_width
    frames = []
    for name in activations:
        jne = single_neuron_jne(name, X, device=device, dtype=dtype)
        jump = kink_jump(name)
        d2 = second_derivative(name, centres)
        kink = kink_window & (jump != 0.0)
        d2 = np.where(kink, jump, d2)
        frames.append(pd.DataFrame({
            "activation": name,
            "centre": centres,
            "jne": jne,
            "second_derivative": d2,
            "abs_second_derivative": np.abs(d2),
            "kink": kink,
            "jne_taylor": np.where(kink, np.nan, np.abs(d2) * spread),
        }))
    return pd.concat(frames, ignore_index=True)


def single_neuron_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per activation: Pearson and Spearman correlation of JNE(c) with |phi''(c)| over all centres.

    Returns
    -------
    DataFrame, one row per activation, columns ``activation``, ``pearson_r``, ``spearman_r``,
    ``n_centres``, ``jne_max``, ``centre_of_max``, ``abs_second_derivative_argmax`` (the centre of
    the largest |phi''|), ``median_ratio_to_taylor`` (median of jne / jne_taylor where
    jne_taylor > 1e-6 * its max: ~1 when the first-order picture holds).
    """
    rows = []
    for name, g in df.groupby("activation", sort=False):
        r, rho = correlation(g["jne"], g["abs_second_derivative"])
        tay = g["jne_taylor"].to_numpy()
        ok = np.isfinite(tay) & (tay > 1e-6 * np.nanmax(tay)) if np.any(tay > 0) else np.zeros(len(g), bool)
        ratio = float(np.median(g["jne"].to_numpy()[ok] / tay[ok])) if ok.any() else float("nan")
        rows.append({
            "activation": name,
            "pearson_r": r,
            "spearman_r": rho,
            "n_centres": int(len(g)),
            "jne_max": float(g["jne"].max()),
            "centre_of_max": float(g["centre"].to_numpy()[int(np.argmax(g["jne"].to_numpy()))]),
            "abs_second_derivative_argmax": float(
                g["centre"].to_numpy()[int(np.argmax(g["abs_second_derivative"].to_numpy()))]),
            "median_ratio_to_taylor": ratio,
        })
    return pd.DataFrame(rows)
