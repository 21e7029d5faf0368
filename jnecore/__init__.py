"""jnecore: Jacobian Nonlinearity Estimator (JNE / JNE-SS) for neural encoding models.

Gao et al., NeurIPS 2025, "Jacobian-Based Interpretation of Nonlinear Neural Encoding Model".
"""

from importlib.metadata import PackageNotFoundError, version as _version

from .encoders import FitHistory, ResidualMLP, fit_encoder, load_encoder, save_encoder
from .jacobian import NORMS, JNEResult, compute_jne, split_readout
from .scoring import Significance, bh_fdr, bootstrap_significance, noise_ceiling, r2_score

try:
    __version__ = _version("jnecore")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.1.0"

__all__ = [
    "NORMS", "FitHistory", "JNEResult", "ResidualMLP", "Significance", "bh_fdr",
    "bootstrap_significance", "compute_jne", "fit_encoder", "load_encoder", "noise_ceiling",
    "r2_score", "save_encoder", "split_readout", "__version__",
]
