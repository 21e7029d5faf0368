"""The paper's encoder (eq. 7): a residual MLP with a linear readout."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ResidualMLP", "ACTIVATIONS"]

ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
}


class ResidualMLP(nn.Module):
    """h0 = phi(W1 x); h_k = phi(W_{k+1} h_{k-1}) + h_{k-1}; y = W_out h_last.

    Parameters
    ----------
    n_features : int
        D, the input (ANN feature) dimension.
    n_outputs : int
        V, the number of voxels / vertices.
    hidden : int
        Width H of every hidden layer (1024 in the paper).
    n_blocks : int
        Residual blocks after the input layer (2 in the paper).
    activation : {"relu", "leaky_relu", "gelu", "silu", "tanh"} or None
        ``None`` gives the linear encoder with the same structure.
    bias : bool
        Biases on every Linear (the paper uses none).

    Modules, in order: ``input`` (Linear D->H), ``blocks`` (ModuleList of Linear H->H),
    ``readout`` (Linear H->V). ``features(x)`` returns the trunk output (n, H), so the model is
    recognised by :func:`jnecore.compute_jne`'s readout fast path.
    """

    def __init__(self, n_features: int, n_outputs: int, hidden: int = 1024, n_blocks: int = 2,
                 activation: str | None = "relu", bias: bool = False):
        super().__init__()
        if activation is not None and activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}: use one of {', '.join(ACTIVATIONS)} or None")
        for name, value in (("n_features", n_features), ("n_outputs", n_outputs), ("hidden", hidden)):
            if int(value) < 1:
                raise ValueError(f"{name} must be a positive integer, got {value}")
        if int(n_blocks) < 0:
            raise ValueError(f"n_blocks must be >= 0, got {n_blocks}")
        self.config = dict(n_features=int(n_features), n_outputs=int(n_outputs), hidden=int(hidden),
                           n_blocks=int(n_blocks), activation=activation, bias=bool(bias))
        self.input = nn.Linear(n_features, hidden, bias=bias)
        self.blocks = nn.ModuleList(nn.Linear(hidden, hidden, bias=bias) for _ in range(n_blocks))
        self.readout = nn.Linear(hidden, n_outputs, bias=bias)
        self.phi = ACTIVATIONS[activation]() if activation is not None else nn.Identity()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Trunk output h_last, (n, H)."""
        h = self.phi(self.input(x))
        for layer in self.blocks:
            h = self.phi(layer(h)) + h
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(n, D) -> (n, V)."""
        return self.readout(self.features(x))

    def extra_repr(self) -> str:
        return f"activation={self.config['activation']}"
