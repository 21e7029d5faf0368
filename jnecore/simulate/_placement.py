"""Result I (b): where in a network does an activation make the output nonlinear?

The network (D inputs, H hidden units, one output; 768-768-1 in the paper):

    a1 = W1 x + b1          h0 = phi1(a1)                       (Loc1: the shallow layer)
    a2 = W2 h0 + b2         h1 = phi2(a2) + h0   (residual)     (Loc2: the deep layer)
                            h1 = phi2(a2)        (plain)
    y  = w3 h1 + b3

with phi1, phi2 each either the activation or the identity: placement ``none`` (both identity: a
linear network, JNE exactly 0), ``Loc1`` (phi1 only), ``Loc2`` (phi2 only) or ``both``. Inputs
are U[-limit, limit]^D, N of them. For each repeat one draw of (W, b, X) is shared by every
activation, placement and architecture (common random numbers: comparisons within a repeat are
paired).

The Jacobian of the single output is a D-vector per sample, in closed form:

    g2 = (w3 * phi2'(a2)) W2  [+ w3 if residual]       (1 x H for phi2 = identity)
    J  = (g2 * phi1'(a1)) W1                           (one row for a linear network)

The derivatives phi' come from torch's forward-mode rules, so J is exactly what
:func:`jnecore.compute_jne` differentiates (the tests check the two agree). Work is shared
within a repeat: a1, W2 a1, w3 W2 and w3 W1 once; when both architectures are asked for, the
residual Jacobian is the plain one plus the skip path's (w3 * phi1'(a1)) W1.

Initialisations (biases always get PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in))):

``default``  PyTorch's nn.Linear: W ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming-uniform, a=sqrt 5)
``xavier``   W ~ U(-sqrt(6 / (fan_in + fan_out)), +...) (torch.nn.init.xavier_uniform_)
``normal``   W ~ N(0, init_std^2), init_std = 1 by default (torch.nn.init.normal_'s defaults)

The statistics over repeats (means with CIs, paired differences, the paper's order against the
measured one) are in :mod:`jnecore.simulate._order`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..backend import exact_fp32, resolve_device
from ..cancel import check_stop
from ..progress import progress_bar
from ..validation import InputError, check_choice
from ._activations import SIM_ACTIVATIONS, activation_module
from ._common import child_seed, jne_single_output

__all__ = [
    "PLACEMENTS", "INITS", "ARCHITECTURES", "PlacementSpec", "PlacementWeights", "PlacementNet",
    "init_placement_weights", "placement_jacobians", "network_placement",
]

PLACEMENTS = ("none", "Loc1", "Loc2", "both")
INITS = ("default", "xavier", "normal")
ARCHITECTURES = ("residual", "plain")

_STREAM = 2  # seed stream of this experiment (see child_seed)


@dataclass(frozen=True)
class PlacementSpec:
    """Sizes, initialisation and input range of the placement network.

    n_features (D), hidden (H), n_samples (N >= 2), init (one of :data:`INITS`), init_std (the
    ``normal`` init's standard deviation), bias, limit (inputs are U[-limit, limit]^D).
    """

    n_features: int = 768
    hidden: int = 768
    n_samples: int = 1000
    init: str = "default"
    init_std: float = 1.0
    bias: bool = False
    limit: float = 10.0

    def __post_init__(self):
        check_choice(self.init, INITS, "init")
        for name in ("n_features", "hidden", "n_samples"):
            if int(getattr(self, name)) < 1:
                raise InputError(name, f"must be a positive integer, got {getattr(self, name)}")
        if int(self.n_samples) < 2:
            raise InputError("n_samples", "must be at least 2")


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


def init_placement_weights(spec: PlacementSpec = PlacementSpec(), *, seed: int = 0, device="cpu",
                           dtype=torch.float32) -> PlacementWeights:
    """Draw (W, b, X) for one repeat from ``seed``, on the CPU in float64 (device independent),
    then cast to ``dtype`` on ``device``. Shapes as in :class:`PlacementWeights`."""
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    D, H, N = int(spec.n_features), int(spec.hidden), int(spec.n_samples)
    W1 = _weight(H, D, spec.init, spec.init_std, gen)
    W2 = _weight(H, H, spec.init, spec.init_std, gen)
    w3 = _weight(1, H, spec.init, spec.init_std, gen)
    if spec.bias:
        b1 = _uniform((H,), 1.0 / math.sqrt(D), gen)
        b2 = _uniform((H,), 1.0 / math.sqrt(H), gen)
        b3 = _uniform((1,), 1.0 / math.sqrt(H), gen)
    else:
        b1 = b2 = b3 = None
    X = _uniform((N, D), float(spec.limit), gen)
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


def _affine(x, W, b):
    y = x @ W.T
    return y + b if b is not None else y


class _Repeat:
    """Closed-form Jacobians for one draw, sharing work across activations, placements and
    architectures."""

    def __init__(self, w: PlacementWeights, architectures: Sequence[str]):
        self.w = w
        self.archs = tuple(architectures)
        self.a1 = _affine(w.X, w.W1, w.b1)
        self._a2_linear = None
        self.g_plain = w.w3 @ w.W2  # (1, H): plain g2 when phi2 is the identity
        self.w3W1 = w.w3 @ w.W1  # (1, D): the skip path's Jacobian when phi1 is the identity
        self._layer = None  # [activation, h0, phi1'(a1), skip Jacobian or None]

    def _a2_lin(self):
        if self._a2_linear is None:
            self._a2_linear = _affine(self.a1, self.w.W2, self.w.b2)
        return self._a2_linear

    def _layer1(self, activation):
        if self._layer is None or self._layer[0] != activation:
            h0, d1 = _value_and_derivative(activation_module(activation), self.a1)
            self._layer = [activation, h0, d1, None]
        return self._layer

    def _skip(self, activation):
        """(w3 * phi1'(a1)) W1, (N, D): the skip path's Jacobian when phi1 is the activation."""
        layer = self._layer1(activation)
        if layer[3] is None:
            layer[3] = (self.w.w3 * layer[2]) @ self.w.W1
        return layer[3]

    def _g2(self, activation, a2):
        """Plain g2 = (w3 * phi2'(a2)) W2, (N, H)."""
        _, d2 = _value_and_derivative(activation_module(activation), a2)
        return (self.w.w3 * d2) @ self.w.W2

    def jacobians(self, activation: str, placement: str) -> dict:
        """{architecture: (N, D) Jacobians, or (1, D) when the same for every sample (``none``)}."""
        check_choice(placement, PLACEMENTS, "placement")
        if placement == "none":
            return self._project(activation, self.g_plain, None)
        if placement == "Loc1":
            return self._project(activation, self.g_plain, self._layer1(activation)[2])
        if placement == "Loc2":
            return self._project(activation, self._g2(activation, self._a2_lin()), None)
        _, h0, d1, _ = self._layer1(activation)
        return self._project(activation, self._g2(activation, _affine(h0, self.w.W2, self.w.b2)), d1)

    def _project(self, activation, g, d1):
        """J = (g2 * phi1'(a1)) W1 for each architecture, from the plain g2 (residual: g2 + w3)."""
        W1 = self.w.W1
        if d1 is None:
            plain, skip = g @ W1, self.w3W1
        elif self.archs == ("residual",):
            return {"residual": ((g + self.w.w3) * d1) @ W1}
        else:
            plain = (g * d1) @ W1
            skip = self._skip(activation) if "residual" in self.archs else None
        return {a: plain if a == "plain" else plain + skip for a in self.archs}


def placement_jacobians(weights: PlacementWeights, activation: str, placement: str,
                        residual: bool = True) -> torch.Tensor:
    """Closed-form input Jacobians of the placement network's output.

    Returns
    -------
    Tensor (N, D), or (1, D) for ``placement="none"`` (a linear network: one Jacobian for all
    samples).
    """
    arch = "residual" if residual else "plain"
    with torch.no_grad():
        return _Repeat(weights, (arch,)).jacobians(activation, placement)[arch]


def _check_names(values, choices, name):
    values = tuple(values)
    if not values:
        raise InputError(name, "must name at least one")
    for v in values:
        check_choice(v, choices, name)
    return values


def network_placement(
    activations: Sequence[str] = SIM_ACTIVATIONS,
    placements: Sequence[str] = PLACEMENTS,
    *,
    spec: PlacementSpec = PlacementSpec(),
    architectures: Sequence[str] = ARCHITECTURES,
    repeats: int = 200,
    seed: int = 0,
    device="auto",
    dtype=torch.float32,
    progress: bool = False,
) -> pd.DataFrame:
    """JNE of the placement network's output for every (architecture, activation, placement, repeat).

    Repeat r draws its parameters and inputs from ``child_seed(seed, 2, r)``, the same for every
    architecture, activation and placement (so results are paired within a repeat, and a repeat's
    numbers do not depend on how many repeats are run). See the module docstring for the network
    and the inits.

    Returns
    -------
    DataFrame, one row per (architecture, repeat, activation, placement), in that order; columns
        ``architecture``, ``init`` (``spec.init``), ``activation``, ``placement``, ``repeat``, ``jne``.
    """
    if int(repeats) < 1:
        raise InputError("repeats", "must be a positive integer")
    archs = _check_names(architectures, ARCHITECTURES, "architectures")
    placements = _check_names(placements, PLACEMENTS, "placements")
    activations = _check_names(activations, SIM_ACTIVATIONS, "activations")
    dev = resolve_device(device)
    keys, vals = [], []
    with exact_fp32(), torch.no_grad():
        for r in progress_bar(range(int(repeats)), total=int(repeats), desc=f"placement ({spec.init} init)",
                              enabled=progress, unit="repeat"):
            check_stop()
            rep = _Repeat(init_placement_weights(spec, seed=child_seed(seed, _STREAM, r), device=dev, dtype=dtype),
                          archs)
            row = []
            for a in activations:
                for p in placements:
                    for arch, J in rep.jacobians(a, p).items():
                        keys.append((arch, a, p, r))
                        row.append(jne_single_output(J.unsqueeze(0))[0])
            # to Python floats once per repeat: small tensors kept across repeats pinned freed
            # buffers (RSS grew ~10 MB per repeat at 768-768-1, 4.3 GB over 400 repeats)
            vals.extend(torch.stack(row).tolist())
            del rep, row
        jne = np.asarray(vals, dtype=np.float64)
    df = pd.DataFrame(keys, columns=["architecture", "activation", "placement", "repeat"])
    df.insert(1, "init", spec.init)
    df["repeat"] = df["repeat"].astype(np.int64)
    df["jne"] = jne
    return df.sort_values("architecture", key=lambda c: c.map(archs.index), kind="stable", ignore_index=True)
