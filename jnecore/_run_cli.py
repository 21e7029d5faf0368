"""``jne run``: parse the options, read the inputs, then :func:`jnecore.pipeline.run_pipeline`.

Every :class:`jnecore.JNEAnalysis` parameter has one flag, ``--`` + its name with dashes
(``fit_batch_size`` -> ``--fit-batch-size``), whose default is the estimator's own: a setting
travels CLI flag -> estimator parameter -> engine argument with nothing in between. Errors the
library raises name a parameter or an input; :func:`flag_for` turns them back into the flags the
user typed.
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
from pathlib import Path

import numpy as np

from .validation import InputError

__all__ = ["add_run_parser", "check_run_args", "cmd_run", "run_locked", "cli_message", "error_text", "ESTIMATOR_OPTIONS", "flag_for"]

#: JNEAnalysis parameter -> (argparse type, help); defaults come from the estimator's signature
ESTIMATOR_OPTIONS = {
    "device": (str, "auto (a CUDA GPU when there is one), cpu, cuda or cuda:N"),
    "hidden": (int, "encoder width H (the paper: 1024)"),
    "n_blocks": (int, "residual blocks after the input layer (the paper: 2)"),
    "activation": (str, "the nonlinear encoder's activation: relu, leaky_relu, gelu, silu or tanh"),
    "max_epochs": (int, "most training epochs"),
    "patience": (int, "stop after this many epochs without a lower validation loss"),
    "lr": (float, "AdamW learning rate"),
    "weight_decay": (float, "AdamW weight decay"),
    "fit_batch_size": (int, "mini-batch size for fitting (default: full batch, as in the paper)"),
    "n_boot": (int, "bootstrap resamples of the test stimuli for the voxel selection"),
    "alpha": (float, "FDR level of the voxel selection"),
    "norm": (str, "norm of a Jacobian row's deviation: l1 (the paper's definition); l2, zl1, zl2 are this "
                  "project's variants (zl1/zl2 z-score each row and are blind to gain-only modulation)"),
    "jne_batch_size": (int, "stimuli per Jacobian chunk (default: from free memory)"),
    "seed": (int, "seed of the split, initialisation, batches, bootstrap and clustering, in [0, 2**32)"),
    "test_fraction": (float, "random test fraction when no --test-index is given"),
    "val_fraction": (float, "validation fraction of the non-test stimuli"),
    "grouping": (str, "stimulus groups for JNE-SS: auto (categories if given, else t-SNE + k-means clusters), "
                      "categories, clusters, both or none"),
    "n_clusters": (int, "fixed number of clusters (default: chosen by silhouette)"),
    "k_max": (int, "largest number of clusters tried"),
    "trunk": (str, "shared (the paper: one encoder for all voxels), level or roi (one encoder pair per "
                   "hierarchy level or ROI, so one region's nonlinearity does not leak into another's)"),
    "baseline": (lambda v: None if v.lower() == "none" else v,
                 "ridge: also fit a per-voxel-alpha ridge regression (needs jnecore[baseline]); none: no baseline"),
}
#: flags that are not --name-with-dashes of their parameter
_ALIASES = {"grouping": ("--groups",)}
#: library names of the inputs -> the option that gives them
_INPUT_FLAGS = {"X": "--features", "Y": "--responses", "responses": "--responses", "groups": "--categories",
                "categories": "--categories", "test_index": "--test-index", "rois": "--rois", "levels": "--rois",
                "lookups": "--roi-lookup", "vertices": "--vertices", "vertex_index": "--vertices",
                "mask": "--mask", "space": "--space", "resume": "--resume"}


def flag_for(name: str) -> str:
    """The flag for a library parameter or input name (the name itself when it has none)."""
    if name in _INPUT_FLAGS:
        return _INPUT_FLAGS[name]
    if name in ESTIMATOR_OPTIONS or name in ("out", "overwrite"):
        return "--" + name.replace("_", "-")
    return name


def cli_message(problem: str) -> str:
    """A library message for the command line: each `parameter` in backticks becomes its flag."""
    return re.sub(r"`(\w+)`", lambda m: flag_for(m.group(1)) if flag_for(m.group(1)) != m.group(1)
                  else m.group(1), problem)


def error_text(exc: InputError, flags=frozenset()) -> str:
    """The line ``jne`` prints for an :class:`InputError` (after ``error: ``).

    ``flags`` are the option strings of the subcommand that ran: a library name with no entry in
    :func:`flag_for` becomes that command's ``--name-with-dashes`` when it has one (``metric`` ->
    ``--metric``), else stays itself (e.g. a file).
    """
    def name(n: str) -> str:
        flag = flag_for(n)
        if flag == n and "--" + n.replace("_", "-") in flags:
            return "--" + n.replace("_", "-")
        return flag

    problem = re.sub(r"`(\w+)`", lambda m: name(m.group(1)) if name(m.group(1)) != m.group(1) else m.group(0),
                     exc.problem)
    return f"{name(exc.source)}: {cli_message(problem)}"


def _estimator_defaults() -> dict:
    from .analysis import JNEAnalysis

    return {k: p.default for k, p in inspect.signature(JNEAnalysis.__init__).parameters.items() if k != "self"}


def _add_inputs(p):
    p.add_argument("--features", help="(N, D) features: .npy, .npz[:key], .h5[:dataset], .parquet, .csv")
    p.add_argument("--responses", nargs="+",
                   help="(N, V) responses: one .npy/.npz/.h5/.parquet/.csv; or lh/rh .func.gii; or .mgh/.mgz "
                        "sessions (lh.*/rh.* pairs, concatenated in order); or a .dscalar.nii/.dtseries.nii; "
                        "or a 4-D .nii[.gz] with --mask")
    p.add_argument("--mask", help="3-D NIfTI mask of the voxels to model (volume responses)")
    p.add_argument("--volume-space", help="mni or native (default native): the space of volume responses; "
                                          "MNI volumes are also shown projected onto the fsaverage5 surface")
    p.add_argument("--out", required=True, help="bundle directory to create")
    p.add_argument("--prepared", help="a folder written by `jne nsd-prepare`: fills every input option not given")
    p.add_argument("--space", default="auto",
                   help="fsLR32k, fsaverage5, fsaverage, volume or none (default auto: from the responses' "
                        "format and vertex count; none for plain arrays)")
    p.add_argument("--rois", nargs="+",
                   help="ROI labels: a one-column table (V labels), or label files (.annot, .label, .label.gii, "
                        ".mgz/.nii with --roi-lookup, .dlabel.nii), per hemisphere lh.*/rh.*")
    p.add_argument("--roi-lookup", nargs="+", default=[],
                   help="lookup tables naming integer ROI values: FreeSurfer/NSD .ctab (<int> <name>) or .tsv")
    p.add_argument("--vertices", help="one-column table of V mesh vertex indices (array responses)")
    p.add_argument("--stimulus-ids", help="one-column table of N stimulus ids (default row numbers)")
    p.add_argument("--categories",
                   help="stimulus categories: one column in row order, or 'stimulus' + 'category' columns")
    p.add_argument("--noise-ceiling", help="one-column table of V noise ceilings (percent)")
    p.add_argument("--test-index", help="one-column table of test row indices (instead of --test-fraction)")


def add_run_parser(sub):
    """The ``run`` subcommand's parser."""
    p = sub.add_parser("run", help="fit encoders, select vertices, compute JNE / JNE-SS, write a bundle")
    _add_inputs(p)
    defaults = _estimator_defaults()
    for name, (typ, text) in ESTIMATOR_OPTIONS.items():
        d = defaults[name]
        flags = ("--" + name.replace("_", "-"),) + _ALIASES.get(name, ())
        shown = "" if d is None else f" (default {d})"
        p.add_argument(*flags, dest=name, type=typ, default=argparse.SUPPRESS, help=text + shown)
    p.add_argument("--resume", action="store_true",
                   help="reuse the encoders an interrupted run with the same inputs saved in <out>.partial")
    p.add_argument("--overwrite", action="store_true", help="replace an existing non-empty --out")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


_PREPARED_OPTIONS = ("features", "responses", "rois", "vertices", "test_index", "stimulus_ids", "categories",
                     "noise_ceiling")


def _apply_prepared(a, explicit: set):
    """Fill the input options from a `jne nsd-prepare` folder (options given explicitly win)."""
    import json

    root = Path(a.prepared)
    man = root / "prepare.json"
    if not man.is_file():
        raise InputError(root, "is not a folder written by `jne nsd-prepare` (no prepare.json)")
    try:
        info = json.loads(man.read_text())
        files = dict(info["files"])
    except (ValueError, KeyError, TypeError):
        raise InputError(man, "is not a valid prepare.json") from None
    volume = isinstance(info.get("volume"), dict) and "mask" in files
    for opt in _PREPARED_OPTIONS:
        if getattr(a, opt, None) in (None, []) and opt in files:
            if opt == "test_index" and "test_fraction" in explicit:
                continue
            value = str(root / files[opt])
            setattr(a, opt, [value] if opt in ("responses", "rois") else value)
            if opt == "responses" and volume:  # volume voxels: read with the folder's mask.nii.gz
                if a.mask:
                    raise InputError("--mask", f"the responses of {root} come with their mask ({files['mask']})")
                a.prepared_volume = (root, info)
    if a.space == "auto" and info.get("space"):
        a.space = info["space"]


def _read_numbers(spec, n, what) -> np.ndarray:
    """A one-column table of ``n`` numbers (float64)."""
    from .io import read_labels

    raw = read_labels(spec, n=n)
    if len(raw) != n:
        raise InputError(spec, f"has {len(raw)} {what} but {n} were expected")
    try:
        return raw.astype(np.float64)
    except ValueError:
        raise InputError(spec, f"{what} must be numbers") from None


def _read_ids(spec, N):
    from .io import read_labels

    ids = read_labels(spec, n=N)
    if len(ids) != N:
        raise InputError(spec, f"has {len(ids)} stimulus ids but {N} stimuli were expected")
    if len(set(ids)) != len(ids):
        raise InputError(spec, "repeats a stimulus id")
    return ids


def _read_test_index(spec):
    from .io import read_labels

    try:
        idx = read_labels(spec, unique=True).astype(np.float64)
    except ValueError:
        raise InputError(spec, "test indices must be integers") from None
    if not np.all(idx == np.round(idx)):
        raise InputError(spec, "test indices must be integers")
    return idx.astype(np.int64)


def _read_responses(a):
    from .io import apply_vertices, check_space, read_responses
    from .validation import check_matrix

    if getattr(a, "prepared_volume", None):  # `jne nsd-prepare --space func1pt8mm`
        from .nsd import read_prepared_volume

        resp = read_prepared_volume(*a.prepared_volume, responses=a.responses[0])
    else:
        resp = read_responses(a.responses, space=None if a.space == "auto" else a.space, mask=a.mask)
    resp.data = check_matrix(resp.data, resp.source, name="responses", finite=False, min_rows=6)
    if a.vertices:
        apply_vertices(resp, a.vertices)
    check_space(resp, vertices_source=a.vertices)
    if a.volume_space is not None and resp.space != "volume":
        raise InputError("--volume-space", "applies to NIfTI volume responses only")
    return resp


def _volume_manifest(resp, volume_space) -> dict:
    if not resp.volume:
        return {}
    extra = {"volume": dict(resp.volume, space=volume_space or "native")}
    shown = "tables, and projected onto fsaverage5 (MNI)" if volume_space == "mni" else "tables only (native space)"
    extra["volume_note"] = (f"volume results: {shown}; vertex = voxel position in the mask, "
                            "voxel_i/j/k and x/y/z columns from the affine")
    return extra


def read_run_inputs(a):
    """Read every input file named by the ``jne run`` options.

    Returns (keyword arguments of :func:`jnecore.pipeline.run_pipeline`, warnings, the responses'
    source for messages).
    """
    from .io import read_array, read_categories, read_rois
    from .validation import check_matrix, check_same_rows

    X = read_array(a.features)
    if getattr(a, "feature_rows", None) is not None:  # `jne sweep`: a subject's rows of a 73k feature file
        X = np.asarray(X)[a.feature_rows]
    X = check_matrix(X, a.features, name="features", min_rows=6)
    resp = _read_responses(a)
    check_same_rows(X, resp.data, a.features, resp.source)
    N, V = resp.data.shape
    warnings = list(resp.warnings)
    ids = _read_ids(a.stimulus_ids, N) if a.stimulus_ids else None
    rois = None
    if a.rois:
        rois, w = read_rois(a.rois, resp, lookups=a.roi_lookup)
        warnings.extend(w)
    elif a.roi_lookup:
        raise InputError("--roi-lookup", "needs --rois")
    extra = dict(resp.extra_columns)
    if a.noise_ceiling:
        extra["noise_ceiling"] = _read_numbers(a.noise_ceiling, V, "noise ceilings")
    sources = {"features": a.features, "responses": list(a.responses), "mask": a.mask, "rois": a.rois,
               "roi_lookup": a.roi_lookup or None, "categories": a.categories, "vertices": a.vertices,
               "stimulus_ids": a.stimulus_ids, "test_index": a.test_index, "noise_ceiling": a.noise_ceiling,
               "prepared": a.prepared}
    return dict(
        features=X, responses=resp.data, space=resp.space, rois=rois, stimulus_ids=ids,
        categories=read_categories(a.categories, N, ids) if a.categories else None,
        test_index=_read_test_index(a.test_index) if a.test_index else None,
        vertex_index=resp.vertex, hemi=resp.hemi, extra_vertex_columns=extra,
        manifest_extra=_volume_manifest(resp, a.volume_space), sources={k: v for k, v in sources.items() if v},
    ), warnings, resp.source


def _print_estimate(estimate, available: int):
    print(f"memory: estimated peak {estimate.describe()}; {available / 2**30:.1f} GB available", file=sys.stderr)


def check_run_args(a):
    """Check the options of a ``jne run`` namespace (filling the inputs from ``--prepared``) before
    any file is read; returns the :class:`jnecore.JNEAnalysis` they configure. ``jne sweep``
    checks each of its cells with this too."""
    from .analysis import JNEAnalysis
    from .bundle import SPACES
    from .validation import check_choice

    params = {k: v for k, v in vars(a).items() if k in ESTIMATOR_OPTIONS}  # the options given
    explicit = set(params)
    if a.prepared:
        _apply_prepared(a, explicit)
    if not a.features:
        raise InputError("--features", "is required (or --prepared with features)")
    if not a.responses:
        raise InputError("--responses", "is required (or --prepared)")
    if a.test_index and "test_fraction" in explicit:
        raise InputError("--test-fraction", "give either --test-index or --test-fraction, not both")
    check_choice(a.space, ("auto",) + tuple(SPACES), "--space")
    if a.volume_space is not None:
        check_choice(a.volume_space, ("native", "mni"), "--volume-space")
    analysis = JNEAnalysis(**params)
    analysis.check_params()
    if analysis.grouping == "categories" and not a.categories:
        raise InputError("--groups", "'categories' needs --categories")
    return analysis


def cmd_run(a):
    """``jne run``: options -> JNEAnalysis -> run_pipeline -> one line per warning, then the path."""
    from ._atomic import check_out, lock_out

    analysis = check_run_args(a)

    with lock_out(Path(a.out)):  # a second writer of this --out fails at once, naming our PID
        check_out(Path(a.out), a.overwrite)
        path, warnings, run_warnings = run_locked(a, analysis)
    for w in warnings + run_warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"wrote {path}")


def run_locked(a, analysis, manifest_extra: dict | None = None):
    """Read the inputs and run the pipeline (the caller holds the lock on ``a.out``)."""
    from .pipeline import checkpoint_dir_for, run_pipeline

    inputs, warnings, resp_source = read_run_inputs(a)
    if manifest_extra:
        inputs["manifest_extra"] = {**inputs["manifest_extra"], **manifest_extra}
    try:
        path, run_warnings = run_pipeline(analysis=analysis, out=Path(a.out), overwrite=a.overwrite,
                                          progress=not a.quiet, resume=a.resume,
                                          checkpoint_dir=checkpoint_dir_for(a.out),
                                          on_estimate=None if a.quiet else _print_estimate,
                                          **inputs)
    except InputError as exc:  # name the user's file rather than the library's parameter
        files = {"Y": resp_source, "responses": resp_source, "X": a.features, "test_index": a.test_index,
                 "groups": a.categories, "categories": a.categories}
        raise InputError(files.get(exc.source) or flag_for(exc.source), exc.problem) from None
    return path, warnings, run_warnings
