"""The bundle contract: file names, columns, dtypes, tables and the schema version, in one place.

The writer (:func:`jnecore.bundle.write_bundle`), the reader (:func:`jnecore.bundle.load_bundle`)
and the dashboard all take these names from here.
"""

from __future__ import annotations

import hashlib
import re

from ..spaces import SPACE_NAMES

__all__ = ["SCHEMA_VERSION", "SPACES", "FILES", "MANIFEST_FIELDS", "VERTEX_COLUMNS", "REQUIRED_VERTEX_COLUMNS",
           "STIMULUS_COLUMNS", "REQUIRED_STIMULUS_COLUMNS", "TABLES", "TABLE_COLUMNS", "STORED_SUMMARY", "encoder_filename"]

SCHEMA_VERSION = "1.1"
#: the spaces a manifest may name (the registry's, :mod:`jnecore.spaces`)
SPACES = SPACE_NAMES

#: the files of a bundle, relative to its directory
FILES = {
    "manifest": "manifest.json",
    "vertices": "vertices.parquet",
    "stimuli": "stimuli.parquet",
    "jne_ss": "jne_ss.npy",           # float32 (n_test, n_vertices), NaN where not computed
    "tables": "tables",               # tables/NAME.parquet
    "encoders": "encoders",           # encoders/NAME.safetensors
    "simulations": "simulations",     # Result I tables, when run
}

#: manifest.json: field -> (JSON type, type of each entry or None). ``schema_version`` (a string of
#: this major version) and ``space`` (one of SPACES) are required; a field listed here with another
#: type is reported and ignored by the reader (:func:`jnecore.bundle.check_bundle`)
MANIFEST_FIELDS = {
    "name": (str, None), "label": (str, None), "created": (str, None), "jnecore_version": (str, None),
    "simulated": (bool, None), "tables": (list, str), "encoders": (list, str), "warnings": (list, str),
    "config": (dict, None), "sources": (dict, None), "device": (dict, None), "timings": (dict, float),
    "counts": (dict, float), "trunk": (dict, None), "volume": (dict, None), "fits": (dict, None),
    "jne": (dict, None), "demo": (dict, None), "extra": (dict, None),
}

#: vertices.parquet: column -> (numpy dtype kind, required, meaning)
VERTEX_COLUMNS = {
    "vertex": ("i", True, "index into the space's mesh, hemispheres concatenated L then R (or voxel / column)"),
    "hemi": ("U", True, "left, right or none"),
    "roi": ("U", True, "ROI label"),
    "level": ("U", True, "hierarchy level: primary, intermediate, higher or other"),
    "r2_linear": ("f", True, "test R^2 of the linear encoder"),
    "r2_nonlinear": ("f", True, "test R^2 of the nonlinear encoder"),
    "p": ("f", False, "bootstrap p of the nonlinear encoder's R^2 > 0"),
    "p_fdr": ("f", True, "Benjamini-Hochberg q of p"),
    "significant": ("b", True, "q < alpha"),
    "jne": ("f", True, "JNE of the nonlinear encoder, NaN where not computed"),
    "excluded": ("b", False, "constant or non-finite response column, not modelled"),
    "r2_ridge": ("f", False, "test R^2 of the per-voxel-alpha ridge baseline"),
    "ridge_alpha": ("f", False, "the ridge baseline's chosen alpha"),
    "trunk_partition": ("U", False, "the encoder pair (level or ROI) that modelled the column"),
    "noise_ceiling": ("f", False, "noise ceiling, percent"),
    "true_nonlinearity": ("f", False, "planted nonlinearity (simulated data only)"),
}
REQUIRED_VERTEX_COLUMNS = tuple(k for k, v in VERTEX_COLUMNS.items() if v[1])

#: stimuli.parquet: the test rows, in order, index the rows of jne_ss.npy
STIMULUS_COLUMNS = {
    "stimulus": ("U", True, "stimulus id"),
    "split": ("U", True, "train, val or test"),
    "category": ("U", True, "category label, or 'all'"),
    "cluster": ("U", False, "t-SNE + k-means cluster of the test stimuli"),
}
REQUIRED_STIMULUS_COLUMNS = tuple(k for k, v in STIMULUS_COLUMNS.items() if v[1])

#: tables/NAME.parquet written by an analysis, and the dashboard view that reads each
TABLES = {
    "roi_summary": "JNE per ROI over significant vertices (ROI hierarchy page)",
    "level_summary": "JNE per hierarchy level over significant vertices (home and ROI hierarchy pages)",
    "level_tests": "one-sided level-vs-level tests of JNE with BH-FDR (ROI hierarchy page)",
    "roi_group": "MoM per ROI and stimulus category (Stimulus selectivity page)",
    "roi_cluster": "MoM per ROI and stimulus cluster (Stimulus selectivity page)",
    "truth": "simulated bundles (jne demo): each planted item, its recovery and bootstrap CI (no page reads it yet)",
}
#: the columns (and numpy dtype kinds) a page reads from each stored table; a stored table without
#: them is reported and recomputed from the vertices (:func:`jnecore.bundle.check_bundle`)
_SUMMARY = {"n": "f", "mean": "f", "std": "f", "median": "f", "sem": "f"}
_MOM = {"roi": "U", "group": "U", "mom": "f", "sem": "f", "n_vertices": "f", "n_stimuli": "f", "mom_norm": "f"}
TABLE_COLUMNS = {
    "roi_summary": {"roi": "U", "level": "U", **_SUMMARY},
    "level_summary": {"level": "U", **_SUMMARY},
    "level_tests": {"a": "U", "b": "U", "n_a": "f", "n_b": "f", "mean_a": "f", "mean_b": "f", "statistic": "f",
                    "p": "f", "q": "f", "test": "U"},
    "roi_group": _MOM,
    "roi_cluster": _MOM,
}
#: the settings every stored summary was computed with: what a reader must ask for to reuse it
STORED_SUMMARY = {"metric": "jne", "significant_only": True}


def encoder_filename(name: str) -> str:
    """A safe file name for an encoder (``encoders/<this>.safetensors``, also in checkpoints).

    Names made of letters, digits, ``_ . -`` are kept; anything else (an ROI label with a slash,
    say) is replaced and a short hash of the name keeps the result unique.
    """
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name).strip(".") or "encoder"
    if safe != name:
        safe = f"{safe}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"
    return safe
