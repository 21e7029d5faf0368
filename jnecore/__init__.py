"""jnecore: Jacobian Nonlinearity Estimator (JNE / JNE-SS) for neural encoding models.

Gao et al., NeurIPS 2025, "Jacobian-Based Interpretation of Nonlinear Neural Encoding Model".

The public names below are imported on first use, so that ``import jnecore`` (and the dashboard,
which needs no torch) stays fast.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("jnecore")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.1.0"

_LAZY = {
    "JNEAnalysis": "analysis", "EncoderCheckpoint": "analysis",
    "FitHistory": "encoders", "ResidualMLP": "encoders", "fit_encoder": "encoders",
    "load_encoder": "encoders", "save_encoder": "encoders",
    "NORMS": "jacobian", "JNEResult": "jacobian", "compute_jne": "jacobian", "split_readout": "jacobian",
    "Significance": "scoring", "bh_fdr": "scoring", "bootstrap_significance": "scoring",
    "noise_ceiling": "scoring", "r2_score": "scoring",
    "display_table": "_format", "format_p": "_format", "p_floor": "_format",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'jnecore' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
