"""The analysis: from features and responses to JNE maps, as one estimator over pure stages.

- :class:`JNEAnalysis` (``_estimator.py``): the scikit-learn-style estimator; ``fit`` runs the
  stages below and sets the fitted attributes (``jne_``, ``jne_ss_``, ``significant_``, ...).
- ``_split.py``: :func:`split_stimuli`, :func:`standardize` (one float32 copy of the responses).
- ``_stages.py``: :func:`fit_encoders`, :func:`score_encoders`, :func:`compute_maps`,
  :func:`group_stimuli`, :func:`trunk_partitions` (shared / per-level / per-ROI encoders).
- ``_checkpoint.py``: :class:`EncoderCheckpoint`, fitted encoders kept for ``resume``.
- ``_memory.py``: :func:`estimate_memory` / :func:`check_memory`, the peak known before a run.
"""

from ._checkpoint import EncoderCheckpoint, checkpoint_dir_for, inputs_key
from ._estimator import FIT_PARAMETERS, PARAMETER_RULES, JNEAnalysis
from ._memory import MemoryEstimate, available_bytes, check_memory, estimate_memory
from ._split import SPLITS, Standardized, split_order, split_stimuli, standardize
from ._stages import (ENCODER_KINDS, TRUNKS, compute_maps, encoder_name, fit_encoders, group_stimuli,
                      make_encoder, predict, score_encoders, subset_outputs, trunk_partitions)

__all__ = [
    "ENCODER_KINDS", "EncoderCheckpoint", "FIT_PARAMETERS", "JNEAnalysis", "MemoryEstimate", "available_bytes",
    "check_memory", "estimate_memory", "PARAMETER_RULES", "SPLITS",
    "Standardized", "TRUNKS", "checkpoint_dir_for", "split_order", "compute_maps", "encoder_name", "fit_encoders",
    "group_stimuli", "inputs_key", "make_encoder", "predict", "score_encoders", "split_stimuli", "standardize",
    "subset_outputs", "trunk_partitions",
]
