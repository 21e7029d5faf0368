"""Arrays in, bundle out: the adapter ``jne run``, ``jne demo`` (and sweeps) share.

``run_pipeline`` does three things and nothing else:

1. refuse an existing ``out`` (unless ``overwrite``) before any work, and open the encoder
   checkpoint ``<out>.partial`` (``resume`` reuses what an interrupted run with the same inputs and
   fit settings saved there);
2. :meth:`jnecore.JNEAnalysis.fit` on the arrays;
3. :func:`jnecore.bundle.write_analysis`, atomically, then remove the checkpoint.

The science is in :mod:`jnecore.analysis`; the file formats are in :mod:`jnecore.io` (read) and
:mod:`jnecore.bundle` (write).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._atomic import check_out
from .analysis import FIT_PARAMETERS, EncoderCheckpoint, JNEAnalysis, checkpoint_dir_for, inputs_key
from .cancel import check_stop
from .validation import InputError

__all__ = ["run_pipeline", "open_checkpoint", "checkpoint_dir_for"]


def open_checkpoint(path, analysis: JNEAnalysis, X, Y, *, test_index=None, rois=None, levels=None,
                    resume: bool = False) -> EncoderCheckpoint:
    """The encoder checkpoint at ``path`` for ``analysis`` on these inputs (keyed by their hash)."""
    params = analysis.get_params()
    parts = {"shared": None, "roi": rois, "level": levels}[analysis.trunk]
    key = inputs_key({"X": np.asarray(X), "Y": Y, "test_index": test_index, "partition": parts},
                     {k: params[k] for k in FIT_PARAMETERS})
    return EncoderCheckpoint(path, key, {k: params[k] for k in FIT_PARAMETERS}, resume=resume).open()


def _estimate(analysis, X, Y, test_index, rois, levels):
    """The run's memory estimate from the shapes of its inputs."""
    labels = {"roi": rois, "level": levels}.get(analysis.trunk)
    largest = None
    if labels is not None:
        _, counts = np.unique(np.asarray(labels).astype(str), return_counts=True)
        largest = int(counts.max())
    N, V = Y.shape
    return analysis.memory_estimate(N, V, np.shape(X)[1], n_test=None if test_index is None else len(test_index),
                                    largest_partition=largest, responses_itemsize=np.dtype(Y.dtype).itemsize)


def run_pipeline(features, responses, out, *, analysis: JNEAnalysis | None = None, space: str = "none",
                 rois=None, levels=None, categories=None, stimulus_ids=None, test_index=None, vertex_index=None,
                 hemi=None, extra_vertex_columns: dict | None = None, manifest_extra: dict | None = None,
                 sources: dict | None = None, simulations=None, overwrite: bool = False, progress: bool = True,
                 resume: bool = False, checkpoint: bool = True, checkpoint_dir=None, stop=check_stop,
                 on_estimate=None, check_memory: bool = True):
    """Fit ``analysis`` on the arrays and write its bundle to ``out``.

    Parameters
    ----------
    features : array (N, D); responses : array (N, V)
    analysis : JNEAnalysis, optional
        The settings (default ``JNEAnalysis()``, the paper's).
    space : str
        The space of the response columns (:mod:`jnecore.spaces`).
    rois, levels : array of str (V,), optional
        ROI labels and hierarchy levels (levels default to a lookup of the ROI names).
    categories, stimulus_ids : array (N,), optional
    test_index : array of int, optional
        Row indices of the test set.
    vertex_index, hemi : array (V,), optional
        Mesh vertex and hemisphere of each column.
    extra_vertex_columns : {name: array (V,)}, optional
    resume, checkpoint, checkpoint_dir :
        Save each fitted encoder to ``checkpoint_dir`` (default ``<out>.partial``) and, with
        ``resume``, reuse those saved by an interrupted run on the same inputs.
    on_estimate : callable, optional
        Called with the :class:`jnecore.analysis.MemoryEstimate` and the bytes available before
        any fitting (``jne run`` prints it).
    check_memory : bool
        Stop at once (InputError) when the estimate exceeds the memory available.

    Returns
    -------
    (Path of the bundle, list of warnings)
    """
    analysis = analysis if analysis is not None else JNEAnalysis()
    check_out(out, overwrite)
    analysis.check_params()
    if levels is None and rois is not None:
        from .atlas import roi_level

        levels = roi_level(np.asarray(rois).astype(str))
    estimate = _estimate(analysis, features, responses, test_index, rois, levels)
    if check_memory:
        from .analysis import check_memory as _check

        _, available = _check(estimate, responses=responses)
        if on_estimate is not None:
            on_estimate(estimate, available)
    ckpt = None
    if checkpoint or resume:
        ckpt = open_checkpoint(checkpoint_dir or checkpoint_dir_for(out), analysis, features, responses,
                               test_index=test_index, rois=rois, levels=levels, resume=resume)
    try:
        analysis.fit(features, responses, groups=categories, rois=rois, levels=levels, test_index=test_index,
                     checkpoint=ckpt, progress=progress, stop=stop)
    except BaseException:
        if ckpt is not None:
            ckpt.remove(only_if_empty=True)  # nothing worth keeping: leave no directory behind
        raise
    from .bundle import write_analysis

    extra = dict(manifest_extra or {})
    if ckpt is not None and ckpt.reused:
        extra["resumed"] = ckpt.reused
    try:
        path = write_analysis(Path(out), analysis, space=space, rois=rois, levels=levels, vertex_index=vertex_index,
                              hemi=hemi, stimulus_ids=stimulus_ids, categories=categories,
                              extra_columns=extra_vertex_columns, manifest_extra=extra, sources=sources,
                              simulations=simulations, overwrite=overwrite)
    except InputError:  # results refused (all-NaN key maps, say): fits of no use, leave nothing behind
        if ckpt is not None:
            ckpt.remove()
        raise
    if ckpt is not None:
        ckpt.remove()
    return path, list(ckpt.warnings if ckpt is not None else []) + list(analysis.warnings_)
