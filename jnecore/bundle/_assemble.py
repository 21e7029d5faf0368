"""From a fitted :class:`jnecore.JNEAnalysis` to the parts of a bundle, and to a bundle on disk."""

from __future__ import annotations

import platform

import numpy as np
import pandas as pd

from .. import summaries
from ..spaces import is_surface, space_size
from ..validation import InputError
from ._bundle import write_bundle
from ._contract import STORED_SUMMARY

__all__ = ["vertex_table", "stimulus_table", "summary_tables", "analysis_manifest", "check_key_maps", "write_analysis"]


def _hemi_from_vertex(vertex, space: str) -> np.ndarray:
    n = space_size(space)
    vi = np.asarray(vertex, dtype=np.int64)
    if len(vi) and (vi.min() < 0 or vi.max() >= 2 * n):
        raise InputError("vertex_index", f"indices must lie in [0, {2 * n}) for {space}")
    return np.where(vi < n, "left", "right")


def vertex_table(analysis, *, rois=None, levels=None, vertex_index=None, hemi=None, space: str = "none",
                 extra_columns: dict | None = None) -> pd.DataFrame:
    """vertices.parquet: one row per response column of the fitted ``analysis``.

    Parameters
    ----------
    rois, levels : array of str (V,), optional
        ROI labels (default "all") and hierarchy levels (default: looked up from the ROI names).
    vertex_index, hemi : array (V,), optional
        Mesh vertex of each column and its hemisphere (``hemi`` follows from the index on a mesh).
    extra_columns : {name: array (V,)}, optional (noise_ceiling, true_nonlinearity, ...)

    Returns
    -------
    DataFrame (V rows), the columns of :data:`jnecore.bundle._contract.VERTEX_COLUMNS`
    """
    V = analysis.n_outputs_
    roi = np.asarray(rois).astype(str) if rois is not None else np.full(V, "all")
    if levels is None:
        from ..atlas import roi_level

        levels = roi_level(roi)
    if vertex_index is not None and hemi is None and is_surface(space):
        hemi = _hemi_from_vertex(vertex_index, space)
    cols = {
        "vertex": np.asarray(vertex_index, dtype=np.int64) if vertex_index is not None else np.arange(V),
        "hemi": np.asarray(hemi).astype(str) if hemi is not None else np.full(V, "none"),
        "roi": roi, "level": np.asarray(levels).astype(str),
        "r2_linear": analysis.r2_linear_, "r2_nonlinear": analysis.r2_nonlinear_, "p": analysis.p_,
        "p_fdr": analysis.q_, "significant": analysis.significant_, "jne": analysis.jne_,
        "excluded": ~analysis.usable_,
    }
    if getattr(analysis, "r2_ridge_", None) is not None:
        cols["r2_ridge"], cols["ridge_alpha"] = analysis.r2_ridge_, analysis.ridge_alphas_
    if analysis.trunk != "shared":
        part = np.full(V, "", dtype=object)
        for name, c in analysis.partitions_.items():
            part[c] = name
        cols["trunk_partition"] = part.astype(str)
    for name, values in (extra_columns or {}).items():
        cols[name] = np.asarray(values)
    return pd.DataFrame(cols)


def stimulus_table(analysis, *, stimulus_ids=None, categories=None) -> pd.DataFrame:
    """stimuli.parquet: every stimulus, the test rows first and in order (they index jne_ss).

    Parameters
    ----------
    stimulus_ids, categories : array (N,), optional
    """
    split = analysis.split_
    N, te = len(split), analysis.split_ == "test"
    ids = np.asarray(stimulus_ids).astype(str) if stimulus_ids is not None else np.arange(N).astype(str)
    cats = np.asarray(categories).astype(str) if categories is not None else np.full(N, "all")
    stimuli = pd.DataFrame({"stimulus": ids, "split": split, "category": cats})
    if "cluster" in analysis.groups_.columns:
        col = np.full(N, None, dtype=object)
        col[te] = analysis.groups_["cluster"].to_numpy()
        stimuli["cluster"] = col
    return pd.concat([stimuli[te], stimuli[~te]]).reset_index(drop=True)


def summary_tables(vertices: pd.DataFrame, jne_ss: np.ndarray, groups: pd.DataFrame) -> dict:
    """The stored summaries (:data:`jnecore.bundle._contract.TABLES`), each read by a dashboard view.

    Parameters
    ----------
    vertices : DataFrame (V rows), the bundle's vertex table
    jne_ss : ndarray (n_test, V)
    groups : DataFrame (n_test rows) with ``category`` and optionally ``cluster``
    """
    metric, sig = STORED_SUMMARY["metric"], STORED_SUMMARY["significant_only"]
    tables = {
        "roi_summary": summaries.roi_summary(vertices, metric, significant_only=sig),
        "level_summary": summaries.level_summary(vertices, metric, significant_only=sig),
        "level_tests": summaries.pairwise_tests(vertices, "level", metric, significant_only=sig),
    }
    mask = vertices["significant"].to_numpy(dtype=bool) & np.isfinite(vertices["jne"].to_numpy(dtype=float))
    if mask.any():
        rois = vertices["roi"].to_numpy()
        for name, col in (("roi_group", "category"), ("roi_cluster", "cluster")):
            if col in groups.columns:
                tables[name] = summaries.roi_group_table(jne_ss, groups[col].astype(str).to_numpy(), rois,
                                                         vertex_mask=mask)
    return tables


def _device_record(device) -> dict:
    import torch

    name = (torch.cuda.get_device_name(device) if device.type == "cuda"
            else platform.processor() or platform.machine())
    return {"type": device.type, "name": name, "torch": torch.__version__}


def analysis_manifest(analysis, *, space: str, sources=None, extra=None, timings=None) -> dict:
    """manifest.json of a bundle written from ``analysis`` (its parameters are the ``config``)."""
    split = analysis.split_
    man = {
        "space": space,
        "config": dict(analysis.get_params(), space=space),
        "sources": sources or {},
        "device": _device_record(analysis.device_),
        "timings": dict(analysis.timings_, **(timings or {})),
        "fits": analysis.fit_history_,
        "jne": analysis.jne_info_.get("all", analysis.jne_info_),
        "trunk": {"mode": analysis.trunk, "partitions": {k: int(len(v)) for k, v in analysis.partitions_.items()}},
        "counts": {"stimuli": len(split), "train": int((split == "train").sum()), "val": int((split == "val").sum()),
                   "test": analysis.n_test_, "vertices": analysis.n_outputs_,
                   "excluded": int((~analysis.usable_).sum()), "significant": int(analysis.significant_.sum())},
        "warnings": list(analysis.warnings_),
    }
    if analysis.grouping_info_:
        man["grouping"] = analysis.grouping_info_
    man.update(extra or {})
    return man


def check_key_maps(vertices: pd.DataFrame):
    """Refuse a fit whose key maps hold no value: ``r2_linear`` or ``r2_nonlinear`` NaN in every
    modelled column, or ``jne`` NaN in every significant one (an all-NaN bundle is never written).

    Parameters
    ----------
    vertices : DataFrame (n_vertices rows), the :func:`vertex_table` of a fitted analysis

    Raises
    ------
    InputError (source ``responses``, which ``jne run`` turns into the responses file).
    """
    modelled = ~vertices["excluded"].to_numpy(dtype=bool) if "excluded" in vertices else np.ones(len(vertices), bool)
    n = int(modelled.sum())
    for col in ("r2_linear", "r2_nonlinear"):
        if n and not np.isfinite(vertices[col].to_numpy(dtype=float)[modelled]).any():
            raise InputError("responses", f"the fit gave no finite {col} in any of the {n} modelled columns "
                                          "(all NaN): nothing written; check the inputs' scale and values")
    sig = vertices["significant"].to_numpy(dtype=bool) & modelled
    if sig.any() and not np.isfinite(vertices["jne"].to_numpy(dtype=float)[sig]).any():
        raise InputError("responses", f"JNE is NaN in all {int(sig.sum())} significant columns: nothing written; "
                                      "check the inputs' scale and values")


def write_analysis(out, analysis, *, space: str = "none", rois=None, levels=None, vertex_index=None, hemi=None,
                   stimulus_ids=None, categories=None, extra_columns=None, manifest_extra=None, sources=None,
                   simulations=None, overwrite: bool = False, extra_tables: dict | None = None):
    """Write a fitted ``analysis`` as a bundle at ``out`` (atomically); returns the path.

    The keyword arguments annotate the columns and stimuli (see :func:`vertex_table`,
    :func:`stimulus_table`); ``manifest_extra`` is merged into the manifest; ``extra_tables``
    ({name: DataFrame}) are written beside the summaries as tables/NAME.parquet.
    """
    import time

    t0 = time.perf_counter()
    vertices = vertex_table(analysis, rois=rois, levels=levels, vertex_index=vertex_index, hemi=hemi, space=space,
                            extra_columns=extra_columns)
    stimuli = stimulus_table(analysis, stimulus_ids=stimulus_ids, categories=categories)
    check_key_maps(vertices)
    tables = dict(summary_tables(vertices, analysis.jne_ss_, analysis.groups_), **(extra_tables or {}))
    manifest = analysis_manifest(analysis, space=space, sources=sources, extra=manifest_extra,
                                 timings={"summaries": round(time.perf_counter() - t0, 3)})
    return write_bundle(out, vertices=vertices, jne_ss=analysis.jne_ss_, stimuli=stimuli, manifest=manifest,
                        tables=tables, encoders=analysis.encoders_, simulations=simulations, overwrite=overwrite)
