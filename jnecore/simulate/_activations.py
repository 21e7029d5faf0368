"""The activation functions of the paper's Result I simulations and their derivatives.

First derivatives come from torch's own forward-mode rule (``torch.func.jvp`` with a tangent of
ones), so they are bit-for-bit what :func:`jnecore.compute_jne` differentiates through,
conventions at the kinks included (ReLU'(0) = 0, LeakyReLU'(0) = 0.01, |.|'(0) = 0).
Second derivatives are the closed forms:

    GELU  phi(x) = x Phi(x)        phi''(x) = pdf(x) (2 - x^2)
    SiLU  phi(x) = x sigmoid(x)    phi''(x) = s (1 - s) (2 + x (1 - 2 s)),  s = sigmoid(x)
    ReLU, LeakyReLU                phi''    = 0 away from 0, a delta at 0 of mass phi'(0+) - phi'(0-)
                                   (1 for ReLU, 0.99 for LeakyReLU with slope 0.01)
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.func import jvp

from ..encoders import ACTIVATIONS as _MODULES

__all__ = ["SIM_ACTIVATIONS", "activation_module", "first_derivative", "second_derivative", "kink_jump"]

#: the four activations studied in Result I, by the names :class:`jnecore.ResidualMLP` uses
SIM_ACTIVATIONS = ("relu", "leaky_relu", "gelu", "silu")

LEAKY_SLOPE = 0.01


def _check(name: str) -> str:
    if name not in SIM_ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}: use one of {', '.join(SIM_ACTIVATIONS)}")
    return name


def activation_module(name: str) -> nn.Module:
    """A fresh ``nn.Module`` for ``name`` (LeakyReLU with slope 0.01, exact erf GELU)."""
    _check(name)
    if name == "leaky_relu":
        return nn.LeakyReLU(LEAKY_SLOPE)
    return _MODULES[name]()


def first_derivative(fn, x: torch.Tensor) -> torch.Tensor:
    """Elementwise phi'(x) for an elementwise ``fn``, by forward mode; same shape as ``x``."""
    return jvp(fn, (x,), (torch.ones_like(x),))[1]


def kink_jump(name: str) -> float:
    """phi'(0+) - phi'(0-): the mass of the delta in phi'' at 0 (0 for the smooth activations)."""
    _check(name)
    return {"relu": 1.0, "leaky_relu": 1.0 - LEAKY_SLOPE}.get(name, 0.0)


def second_derivative(name: str, x) -> np.ndarray:
    """Analytic phi''(x) as float64, away from kinks (ReLU / LeakyReLU give 0 everywhere here).

    Parameters
    ----------
    name : str
        One of :data:`SIM_ACTIVATIONS`.
    x : array-like (...)
        Points.

    Returns
    -------
    ndarray (...)
        phi''(x). The deltas of the piecewise-linear activations are not included: use
        :func:`kink_jump` for their mass.
    """
    _check(name)
    x = np.asarray(x, dtype=np.float64)
    if name == "gelu":
        pdf = np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
        return pdf * (2.0 - x * x)
    if name == "silu":
        s = 0.5 * (1.0 + np.tanh(0.5 * x))  # sigmoid without overflow
        return s * (1.0 - s) * (2.0 + x * (1.0 - 2.0 * s))
    return np.zeros_like(x)
