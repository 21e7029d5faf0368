"""Batched JNE for single-output models, correlations, window grids and seeding shared by the
simulations."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats

from ..backend import resolve_device
from ._activations import first_derivative

__all__ = ["jne_single_output", "derivative_jne", "correlation", "child_seed", "window_grid", "Windows"]


def jne_single_output(J: torch.Tensor) -> torch.Tensor:
    """JNE of a one-output model from its per-sample Jacobians, many problems at once.

    Same arithmetic as :func:`jnecore.compute_jne` with ``norm="l1"``: the mean Jacobian is taken
    around the first sample's (Jbar = J_0 + mean_i (J_i - J_0)), so a Jacobian that does not change
    across samples gives deviations, and a JNE, of exactly 0; s_i = ||J_i - Jbar||_1; JNE is the
    population std of s_i, reduced in float64.

    Parameters
    ----------
    J : Tensor (B, N, D) or (B, N) or (1, D) broadcastable
        B independent problems, N samples each, D inputs (a missing last axis means D = 1). A
        sample axis of length 1 means the Jacobian is the same for every sample (a linear model).

    Returns
    -------
    Tensor (B,), float64
    """
    if J.ndim == 2:
        J = J.unsqueeze(-1)
    n = J.shape[-2]
    delta = J - J[..., :1, :]
    shift = delta.sum(-2, keepdim=True) / n
    s = (delta - shift).abs_().sum(-1).to(torch.float64)  # (B, N)
    mu = s.mean(-1, keepdim=True)
    return (s - mu).square_().mean(-1).sqrt_()


def derivative_jne(fn, X, *, device="cpu", dtype=torch.float64) -> np.ndarray:
    """JNE of an elementwise 1-D function over many windows at once.

    Parameters
    ----------
    fn : callable
        Elementwise torch function phi (its 1 x 1 Jacobian at x is phi'(x), by forward mode).
    X : array-like (C, P)
        C windows of P scalar inputs each.

    Returns
    -------
    ndarray (C,)
        JNE of each window.
    """
    Xt = torch.as_tensor(np.asarray(X), dtype=dtype, device=resolve_device(device))
    if Xt.ndim != 2:
        raise ValueError(f"X must be (windows, points), got shape {tuple(Xt.shape)}")
    with torch.no_grad():
        return jne_single_output(first_derivative(fn, Xt)).cpu().numpy()


def correlation(a, b) -> tuple[float, float]:
    """(Pearson r, Spearman rho) of two 1-D arrays; NaN where one is constant or too short."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if a.size < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan"), float("nan")
    return float(stats.pearsonr(a, b)[0]), float(stats.spearmanr(a, b)[0])


def child_seed(seed: int, *keys: int) -> int:
    """A 63-bit seed derived from ``seed`` and integer ``keys`` (independent streams per key)."""
    ss = np.random.SeedSequence([int(seed), *(int(k) for k in keys)])
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def window_grid(limit: float, step: float, half_width: float, n_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Window centres and in-window offsets built from integers, so 0 is hit exactly.

    Returns
    -------
    centres : ndarray (C,)
        -limit, -limit + step, ..., limit (C = 2 * limit / step + 1).
    offsets : ndarray (P,)
        n_points evenly spaced offsets in [-half_width, half_width]; with an odd n_points the
        middle one is exactly 0.
    """
    if step <= 0 or limit <= 0:
        raise ValueError("limit and step must be positive")
    if half_width <= 0:
        raise ValueError("half_width must be positive")
    if int(n_points) < 2:
        raise ValueError("n_points must be at least 2")
    k = int(round(limit / step))
    centres = np.arange(-k, k + 1, dtype=np.float64) * step
    m = int(n_points) - 1
    offsets = (np.arange(m + 1, dtype=np.float64) * 2.0 - m) * (half_width / m)
    return centres, offsets


@dataclass(frozen=True)
class Windows:
    """The window centres of the 1-D experiments: -limit, -limit + step, ..., limit; the window at
    centre c covers [c - half_width, c + half_width]."""

    limit: float = 10.0
    step: float = 0.02
    half_width: float = 0.001

    def grid(self, n_points: int = 2) -> tuple[np.ndarray, np.ndarray]:
        """``window_grid(limit, step, half_width, n_points)``: centres (C,), offsets (n_points,)."""
        return window_grid(self.limit, self.step, self.half_width, n_points)
