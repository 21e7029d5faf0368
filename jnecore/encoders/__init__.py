"""Encoders from ANN features to voxel responses: the paper's residual MLP, fitting, storage."""

from ._fit import FitHistory, fit_encoder
from ._io import load_encoder, save_encoder
from ._residual_mlp import ACTIVATIONS, ResidualMLP

__all__ = ["ACTIVATIONS", "FitHistory", "ResidualMLP", "fit_encoder", "load_encoder", "save_encoder"]
