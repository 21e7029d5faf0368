"""Exact Jacobians and the Jacobian Nonlinearity Estimator (JNE, JNE-SS)."""

from ._jne import NORMS, JNEResult, compute_jne, split_readout

__all__ = ["NORMS", "JNEResult", "compute_jne", "split_readout"]
