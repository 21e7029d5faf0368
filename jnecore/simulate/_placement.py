"""Result I (b): where in a network does an activation make the output nonlinear?

The network (D inputs, H hidden units, one output; 768-768-1 in the paper):

    a1 = W1 x + b1          h0 = phi1(a1)                       (Loc1: the shallow layer)
    a2 = W2 h0 + b2         h1 = phi2(a2) + h0   (residual)     (Loc2: the deep layer)
                            h1 = phi2(a2)        (plain)
    y  = w3 h1 + b3

with phi1, phi2 each either the activation or the identity: placement ``none`` (both identity: a
linear network, JNE exactly 0), ``Loc1`` (phi1 only), ``Loc2`` (phi2 only) or ``both``. Inputs
are U[-limit, limit]^D, N of them. For each repeat one draw of (W, b, X) is shared by every
activation and placement (common random numbers: comparisons within a repeat are paired).

The Jacobian of the single output is a D-vector per sample, in closed form:

    g2 = (w3 * phi2'(a2)) W2  [+ w3 if residual]       (1 x H for phi2 = identity)
    J  = (g2 * phi1'(a1)) W1                           (one row for a linear network)

The derivatives phi' come from torch's forward-mode rules, so J is exactly what
:func:`jnecore.compute_jne` differentiates (the tests check the two agree). Work is shared
within a repeat: a1, W2 a1 and w3 W2 once, then 1, 2 and 3 matrix products for Loc1, Loc2 and
both per activation.

Initialisations (biases always get PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in))):

``default``  PyTorch's nn.Linear: W ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming-uniform, a=sqrt 5)
``xavier``   W ~ U(-sqrt(6 / (fan_in + fan_out)), +...) (torch.nn.init.xavier_uniform_)
``normal``   W ~ N(0, init_std^2), init_std = 1 by default (torch.nn.init.normal_'s defaults)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..backend import resolve_device
from ..progress import progress_bar
from ._activations import SIM_ACTIVATIONS, activation_module
from ._common import child_seed, jne_single_output

__all__ = [
    "PLACEMENTS", "INITS", "PlacementWeights", "PlacementNet", "init_placement_weights",
    "placement_jacobians", "network_placement", "placement_summary", "placement_order",
]

PLACEMENTS = ("none", "Loc1", "Loc2", "both")
INITS = ("default", "xavier", "normal")

_STREAM = 2  # seed stream of this experiment (see child_seed)


@dataclass
class PlacementWeights:
    """One draw of the network's parameters and inputs.

    W1 (H, D), b1 (H,) or None, W2 (H, H), b2 (H,) or None, w3 (1, H), b3 (1,) or None, X (N, D).
    """

    W1: torch.Tensor
    b1: torch.Tensor | None
    W2: torch.Tensor
    b2: torch.Tensor | None
    w3: torch.Tensor
    b3: torch.Tensor | None
    X: torch.Tensor


def _uniform(shape, bound, gen):
    return (torch.rand(shape, generator=gen, dtype=torch.float64) * 2.0 - 1.0) * bound


def _weight(fan_out, fan_in, init, init_std, gen):
    if init == "default":
        return _uniform((fan_out, fan_in), 1.0 / math.sqrt(fan_in), gen)
    if init == "xavier":
        return _uniform((fan_out, fan_in), math.sqrt(6.0 / (fan_in + fan_out)), gen)
    return torch.randn((fan_out, fan_in), generator=gen, dtype=torch.float64) * init_std


def init_placement_weights(
    n_features: int = 768,
    hidden: int = 768,
    n_samples: int = 1000,
    *,
    seed: int = 0,
    init: str = "default",
    init_std: float = 1.0,
    bias: bool = False,
    limit: float = 10.0,
    device="cpu",
    dtype=torch.float32,
) -> PlacementWeights:
    """Draw (W, b, X) for one repeat from ``seed``, on the CPU in float64 (device independent),
    then cast to ``dtype`` on ``device``."""
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}: use one of {', '.join(INITS)}")
    for name, v in (("n_features", n_features), ("hidden", hidden), ("n_samples", n_samples)):
        if int(v) < 1:
            raise ValueError(f"{name} must be a positive integer, got {v}")
    if int(n_samples) < 2:
        raise ValueError("n_samples must be at least 2")
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    D, H, N = int(n_features), int(hidden), int(n_samples)
    W1 = _weight(H, D, init, init_std, gen)
    W2 = _weight(H, H, init, init_std, gen)
    w3 = _weight(1, H, init, init_std, gen)
    if bias:
        b1 = _uniform((H,), 1.0 / math.sqrt(D), gen)
        b2 = _uniform((H,), 1.0 / math.sqrt(H), gen)
        b3 = _uniform((1,), 1.0 / math.sqrt(H), gen)
    else:
        b1 = b2 = b3 = None
    X = _uniform((N, D), float(limit), gen)
    dev = resolve_device(device)
    cast = (lambda t: None if t is None else t.to(device=dev, dtype=dtype))
    return PlacementWeights(cast(W1), cast(b1), cast(W2), cast(b2), cast(w3), cast(b3), cast(X))


def _phis(activation: str | None, placement: str):
    if placement not in PLACEMENTS:
        raise ValueError(f"unknown placement {placement!r}: use one of {', '.join(PLACEMENTS)}")
    phi1 = activation_module(activation) if placement in ("Loc1", "both") else None
    phi2 = activation_module(activation) if placement in ("Loc2", "both") else None
    return phi1, phi2


class PlacementNet(nn.Module):
    """The placement network as an ``nn.Module`` (``features`` + ``readout``), for
    :func:`jnecore.compute_jne`.

    Parameters
    ----------
    weights : PlacementWeights
        Parameters (copied into the module).
    activation : str
        ``relu``, ``leaky_relu``, ``gelu`` or ``silu``.
    placement : {"none", "Loc1", "Loc2", "both"}
    residual : bool
        h1 = phi2(a2) + h0 when True, phi2(a2) when False.
    """

    def __init__(self, weights: PlacementWeights, activation: str, placement: str, residual: bool = True):
        super().__init__()
        H, D = weights.W1.shape

        def linear(W, b):
            lin = nn.Linear(W.shape[1], W.shape[0], bias=b is not None, dtype=W.dtype, device=W.device)
            with torch.no_grad():
                lin.weight.copy_(W)
                if b is not None:
                    lin.bias.copy_(b)
            return lin

        self.input = linear(weights.W1, weights.b1)
        self.hidden = linear(weights.W2, weights.b2)
        self.readout = linear(weights.w3, weights.b3)
        phi1, phi2 = _phis(activation, placement)
        self.phi1 = phi1 if phi1 is not None else nn.Identity()
        self.phi2 = phi2 if phi2 is not None else nn.Identity()
        self.residual = bool(residual)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(n, D) -> h1, (n, H)."""
        h0 = self.phi1(self.input(x))
        h1 = self.phi2(self.hidden(h0))
        return h1 + h0 if self.residual else h1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(n, D) -> (n, 1)."""
        return self.readout(self.features(x))


def _value_and_derivative(phi, a):
    return torch.func.jvp(phi, (a,), (torch.ones_like(a),))


class _Repeat:
    """Closed-form Jacobians for one draw, sharing work across activations and placements."""

    def __init__(self, w: PlacementWeights, residual: bool):
        self.w = w
        self.residual = residual
        self.a1 = w.X @ w.W1.T
        if w.b1 is not None:
            self.a1 += w.b1
        self._a2_linear = None
        g = w.w3 @ w.W2  # (1, H): g2 when phi2 is the identity
        self.g2_linear = g + w.w3 if residual else g
        self._acts = {}

    def _affine2(self, h0):
        a2 = h0 @ self.w.W2.T
        if self.w.b2 is not None:
            a2 += self.w.b2
        return a2

    def a2_linear(self):
        if self._a2_linear is None:
            self._a2_linear = self._affine2(self.a1)
        return self._a2_linear

    def _layer1(self, activation):
        if activation not in self._acts:
            self._acts = {activation: _value_and_derivative(activation_module(activation), self.a1)}
        return self._acts[activation]

    def _g2(self, d2):
        g = (self.w.w3 * d2) @ self.w.W2
        return g + self.w.w3 if self.residual else g

    def jacobian(self, activation: str, placement: str) -> torch.Tensor:
        """(N, D), or (1, D) when the Jacobian is the same for every sample (``none``)."""
        if placement not in PLACEMENTS:
            raise ValueError(f"unknown placement {placement!r}: use one of {', '.join(PLACEMENTS)}")
        W1 = self.w.W1
        if placement == "none":
            return self.g2_linear @ W1
        phi = activation_module(activation)
        if placement == "Loc1":
            _h0, d1 = self._layer1(activation)
            return (self.g2_linear * d1) @ W1
        if placement == "Loc2":
            _, d2 = _value_and_derivative(phi, self.a2_linear())
            return self._g2(d2) @ W1
        h0, d1 = self._layer1(activation)
        _, d2 = _value_and_derivative(phi, self._affine2(h0))
        return (self._g2(d2) * d1) @ W1


def placement_jacobians(weights: PlacementWeights, activation: str, placement: str,
                        residual: bool = True) -> torch.Tensor:
    """Closed-form input Jacobians of the placement network's output.

    Returns
    -------
    Tensor (N, D), or (1, D) for ``placement="none"`` (a linear network: one Jacobian for all
    samples).
    """
    with torch.no_grad():
        return _Repeat(weights, residual).jacobian(activation, placement)


def network_placement(
    activations: Sequence[str] = SIM_ACTIVATIONS,
    placements: Sequence[str] = PLACEMENTS,
    *,
    repeats: int = 200,
    seed: int = 0,
    n_features: int = 768,
    hidden: int = 768,
    n_samples: int = 1000,
    residual: bool = True,
    init: str = "default",
    init_std: float = 1.0,
    bias: bool = False,
    limit: float = 10.0,
    device="auto",
    dtype=torch.float32,
    progress: bool = False,
) -> pd.DataFrame:
    """JNE of the placement network's output for every (activation, placement, repeat).

    Repeat r draws its parameters and inputs from ``child_seed(seed, 2, r)``, the same for every
    activation and placement (so results are paired within a repeat, and a repeat's numbers do not
    depend on how many repeats are run). See the module docstring for the network and the inits.

    Returns
    -------
    DataFrame, one row per (activation, placement, repeat), columns
        ``activation``, ``placement``, ``repeat``, ``jne``.
    """
    if int(repeats) < 1:
        raise ValueError("repeats must be a positive integer")
    for p in placements:
        if p not in PLACEMENTS:
            raise ValueError(f"unknown placement {p!r}: use one of {', '.join(PLACEMENTS)}")
    dev = resolve_device(device)
    acts, pls, reps, vals = [], [], [], []
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False  # exact fp32 products, as compute_jne
    try:
        with torch.no_grad():
            for r in progress_bar(range(int(repeats)), total=int(repeats), desc="placement", enabled=progress,
                                  unit="repeat"):
                w = init_placement_weights(n_features, hidden, n_samples, seed=child_seed(seed, _STREAM, r),
                                           init=init, init_std=init_std, bias=bias, limit=limit, device=dev,
                                           dtype=dtype)
                rep = _Repeat(w, residual)
                for a in activations:
                    for p in placements:
                        J = rep.jacobian(a, p)
                        acts.append(a)
                        pls.append(p)
                        reps.append(r)
                        vals.append(jne_single_output(J.unsqueeze(0))[0])
                del rep, w
            jne = torch.stack(vals).cpu().numpy() if vals else np.empty(0)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32
    return pd.DataFrame({"activation": acts, "placement": pls, "repeat": np.asarray(reps, dtype=np.int64),
                         "jne": jne})


def placement_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Mean, std (ddof=1), sem and n of JNE per (activation, placement), with the rank of the mean
    within the activation (1 = lowest).

    Returns
    -------
    DataFrame, columns ``activation``, ``placement``, ``mean``, ``std``, ``sem``, ``n``, ``rank``.
    """
    g = df.groupby(["activation", "placement"], sort=False)["jne"]
    out = g.agg(mean="mean", std="std", n="count").reset_index()
    out["std"] = out["std"].fillna(0.0)
    out["sem"] = out["std"] / np.sqrt(out["n"])
    out["n"] = out["n"].astype(np.int64)
    out["rank"] = out.groupby("activation", sort=False)["mean"].rank(method="min").astype(np.int64)
    return out[["activation", "placement", "mean", "std", "sem", "n", "rank"]]


def placement_order(df: pd.DataFrame) -> dict:
    """The measured order of placements per activation, and paired comparisons.

    Parameters
    ----------
    df : DataFrame
        What :func:`network_placement` returns.

    Returns
    -------
    dict activation -> {"order": "none < Loc1 < ..." (by mean JNE; "=" for equal means),
    "ranked": [placements, lowest mean first], "paired_fraction_lower": {"P<Q": fraction of
    repeats where JNE(P) < JNE(Q)} for every pair of placements}.
    """
    out = {}
    for act, g in df.groupby("activation", sort=False):
        means = g.groupby("placement", sort=False)["jne"].mean()
        ranked = sorted(means.index, key=lambda p: (means[p], PLACEMENTS.index(p) if p in PLACEMENTS else 99))
        text = ranked[0]
        for prev, cur in zip(ranked, ranked[1:]):
            text += (" = " if means[cur] == means[prev] else " < ") + cur
        wide = g.pivot(index="repeat", columns="placement", values="jne")
        pairs = {}
        for i, p in enumerate(ranked):
            for q in ranked[i + 1:]:
                pairs[f"{p}<{q}"] = float((wide[p] < wide[q]).mean())
        out[act] = {"order": text, "ranked": list(ranked), "paired_fraction_lower": pairs}
    return out
