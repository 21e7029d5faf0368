"""Encoders from ANN features to voxel responses: the paper's residual MLP, fitting, storage."""

from ._fit import FitHistory, fit_encoder
from ._io import load_encoder, save_encoder
from ._residual_mlp import ACTIVATIONS, ResidualMLP
from ._ridge import RidgeResult, fit_ridge

__all__ = ["ACTIVATIONS", "FitHistory", "ResidualMLP", "RidgeResult", "fit_encoder", "fit_ridge", "load_encoder",
           "save_encoder"]
