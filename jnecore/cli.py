"""The ``jne`` command line: run, nsd-prepare, info, simulate, demo, dashboard.

Bad input ends with one line ``error: <file>: <problem>`` on stderr and exit code 2, no traceback
and no partial output. Ctrl-C (SIGINT) or SIGTERM ends a command with one line and exit code 130
(143 for SIGTERM), again with no partial output: a SIGTERM handler raises KeyboardInterrupt so the
same cleanup runs. ``jne run`` keeps the encoders it has fitted in ``<out>.partial`` so that
``--resume`` can reuse them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np

from ._atomic import check_out, replace_dir
from .cancel import Terminated, clear_stop, request_stop, stop_requested
from .validation import InputError

__all__ = ["main"]


def _add_run(sub):
    p = sub.add_parser("run", help="fit encoders, select vertices, compute JNE / JNE-SS, write a bundle")
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
    p.add_argument("--groups", default="auto",
                   help="stimulus groups for JNE-SS: auto (categories if given, else t-SNE + k-means clusters), "
                        "categories, clusters, both or none")
    p.add_argument("--n-clusters", type=int, help="fixed number of clusters (default: by silhouette)")
    p.add_argument("--k-max", type=int, default=60, help="largest number of clusters tried (default 60)")
    split = p.add_mutually_exclusive_group()
    split.add_argument("--test-index", help="one-column table of test row indices")
    split.add_argument("--test-fraction", type=float, help="random test fraction (default 0.1)")
    p.add_argument("--device", default="auto")
    p.add_argument("--hidden", type=int, default=1024)
    p.add_argument("--n-blocks", type=int, default=2)
    p.add_argument("--activation", default="relu")
    p.add_argument("--max-epochs", type=int, default=512)
    p.add_argument("--patience", type=int, default=8)
    p.add_argument("--n-boot", type=int, default=200)
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--norm", default="l1")
    p.add_argument("--jne-batch-size", type=int, help="stimuli per Jacobian chunk (default: from free memory)")
    p.add_argument("--fit-batch-size", type=int, help="mini-batch size for fitting (default: full batch)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true",
                   help="reuse the encoders an interrupted run with the same inputs saved in <out>.partial")
    p.add_argument("--overwrite", action="store_true", help="replace an existing non-empty --out")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


_PREPARED_OPTIONS = ("features", "responses", "rois", "vertices", "test_index", "stimulus_ids", "categories",
                     "noise_ceiling")


def _apply_prepared(a):
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
    for opt in _PREPARED_OPTIONS:
        if getattr(a, opt, None) in (None, []) and opt in files:
            if opt == "test_index" and a.test_fraction is not None:
                continue
            value = str(root / files[opt])
            setattr(a, opt, [value] if opt in ("responses", "rois") else value)
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


def _cmd_run(a):
    from .bundle import SPACES
    from .io import (apply_vertices, check_space, read_array, read_categories, read_labels, read_responses,
                     read_rois)
    from .pipeline import RunConfig, checkpoint_dir_for, run_pipeline
    from .validation import check_choice, check_matrix, check_same_rows

    if a.prepared:
        _apply_prepared(a)
    if not a.features:
        raise InputError("--features", "is required (or --prepared with features)")
    if not a.responses:
        raise InputError("--responses", "is required (or --prepared)")
    check_choice(a.space, ("auto",) + tuple(SPACES), "--space")
    if a.volume_space is not None:
        check_choice(a.volume_space, ("native", "mni"), "--volume-space")
    cfg = RunConfig(space="none", device=a.device, hidden=a.hidden, n_blocks=a.n_blocks, activation=a.activation,
                    max_epochs=a.max_epochs, patience=a.patience, n_boot=a.n_boot, alpha=a.alpha, norm=a.norm,
                    seed=a.seed, test_fraction=0.1 if a.test_fraction is None else a.test_fraction,
                    jne_batch_size=a.jne_batch_size, fit_batch_size=a.fit_batch_size, groups=a.groups,
                    n_clusters=a.n_clusters, k_max=a.k_max).validate()
    if a.groups == "categories" and not a.categories:
        raise InputError("--groups", "'categories' needs --categories")
    out = Path(a.out)
    check_out(out, a.overwrite)
    X = check_matrix(read_array(a.features), a.features, name="features", min_rows=6)
    resp = read_responses(a.responses, space=None if a.space == "auto" else a.space, mask=a.mask)
    resp.data = check_matrix(resp.data, resp.source, name="responses", finite=False, min_rows=6)
    if a.vertices:
        apply_vertices(resp, a.vertices)
    check_space(resp, vertices_source=a.vertices)
    Y = resp.data
    check_same_rows(X, Y, a.features, resp.source)
    N, V = Y.shape
    warnings = list(resp.warnings)
    ids = None
    if a.stimulus_ids:
        ids = read_labels(a.stimulus_ids, n=N)
        if len(ids) != N:
            raise InputError(a.stimulus_ids, f"has {len(ids)} stimulus ids but {N} stimuli were expected")
        if len(set(ids)) != len(ids):
            raise InputError(a.stimulus_ids, "repeats a stimulus id")
    rois = None
    if a.rois:
        rois, w = read_rois(a.rois, resp, lookups=a.roi_lookup)
        warnings.extend(w)
    elif a.roi_lookup:
        raise InputError("--roi-lookup", "needs --rois")
    cats = read_categories(a.categories, N, ids) if a.categories else None
    test_index = None
    if a.test_index:
        try:
            test_index = read_labels(a.test_index, unique=True).astype(np.float64)
        except ValueError:
            raise InputError(a.test_index, "test indices must be integers") from None
        if not np.all(test_index == np.round(test_index)):
            raise InputError(a.test_index, "test indices must be integers")
        test_index = test_index.astype(np.int64)
    extra = dict(resp.extra_columns)
    if a.noise_ceiling:
        extra["noise_ceiling"] = _read_numbers(a.noise_ceiling, V, "noise ceilings")
    cfg.space = resp.space
    if a.volume_space is not None and resp.space != "volume":
        raise InputError("--volume-space", "applies to NIfTI volume responses only")
    manifest_extra = {"volume": dict(resp.volume, space=a.volume_space or "native")} if resp.volume else {}
    if resp.space == "volume":
        shown = ("tables, and projected onto fsaverage5 (MNI)" if a.volume_space == "mni"
                 else "tables only (native space)")
        manifest_extra["volume_note"] = (f"volume results: {shown}; vertex = voxel position in the mask, "
                                         "voxel_i/j/k and x/y/z columns from the affine")
    sources = {"features": a.features, "responses": list(a.responses), "mask": a.mask, "rois": a.rois,
               "roi_lookup": a.roi_lookup or None, "categories": a.categories, "vertices": a.vertices,
               "stimulus_ids": a.stimulus_ids, "test_index": a.test_index, "noise_ceiling": a.noise_ceiling,
               "prepared": a.prepared}
    try:
        path, run_warnings = run_pipeline(
            X, Y, out, config=cfg, rois=rois, categories=cats, stimulus_ids=ids, test_index=test_index,
            vertex_index=resp.vertex, hemi=resp.hemi, extra_vertex_columns=extra, manifest_extra=manifest_extra,
            overwrite=a.overwrite, progress=not a.quiet, resume=a.resume, checkpoint_dir=checkpoint_dir_for(out),
            sources={k: v for k, v in sources.items() if v})
    except InputError as exc:  # name the user's file rather than the pipeline's argument
        renamed = {"responses": resp.source, "--test-index": a.test_index, "categories": a.categories}
        if renamed.get(exc.source):
            raise InputError(renamed[exc.source], exc.problem) from None
        raise
    for w in warnings + run_warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"wrote {path}")


def _add_nsd(sub):
    p = sub.add_parser("nsd-prepare", help="assemble one NSD subject (fsaverage betas, shared1000 test set, ROIs) "
                                           "into files `jne run --prepared` reads")
    p.add_argument("--nsd-root", help="the NSD folder (holding nsddata/, nsddata_betas/)")
    p.add_argument("--subject", required=True, help="1..8 or subj01..subj08")
    p.add_argument("--out", required=True, help="folder to create")
    p.add_argument("--sessions", help="e.g. 1-10,12 (default: every session found)")
    p.add_argument("--features", help="features: a table with an nsdId column, an array with --feature-ids, "
                                      "or 73000 rows in 73k order")
    p.add_argument("--feature-ids", help="one-column table: the 0-based 73k id of each feature row")
    p.add_argument("--categories", help="categories: nsdId (or cocoId) + category columns, or 73000 rows in 73k order")
    p.add_argument("--keep", default="rois", help="vertices to keep: rois (with an ROI, default) or all")
    p.add_argument("--roi-sets", nargs="+", help="ROI sets (default prf-visualrois floc-faces floc-places "
                                                  "floc-bodies floc-words; 'none' for no ROIs)")
    p.add_argument("--trials-per-session", type=int, help="default: the first session file's trial count (750)")
    p.add_argument("--betas-dir", help="default NSD_ROOT/nsddata_betas/ppdata/subjXX/fsaverage/betas_fithrf_GLMdenoise_RR")
    p.add_argument("--betas-pattern", help="default {hemi}.betas_session{session:02d}.mgh")
    p.add_argument("--expdesign", help="default NSD_ROOT/nsddata/experiments/nsd/nsd_expdesign.mat")
    p.add_argument("--stim-info", help="default NSD_ROOT/nsddata/experiments/nsd/nsd_stim_info_merged.csv")
    p.add_argument("--label-dir", help="default NSD_ROOT/nsddata/freesurfer/subjXX/label")
    p.add_argument("--roi-pattern", help="default {hemi}.{name}.mgz")
    p.add_argument("--ctab-pattern", help="default {name}.mgz.ctab")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--quiet", action="store_true")


def _cmd_nsd(a):
    from .nsd import parse_sessions, prepare_nsd

    if a.trials_per_session is not None and a.trials_per_session < 1:
        raise InputError("--trials-per-session", f"must be >= 1, got {a.trials_per_session}")
    roi_sets = a.roi_sets
    if roi_sets == ["none"]:
        roi_sets = ()
    path_opts = {k: getattr(a, k) for k in ("betas_dir", "betas_pattern", "expdesign", "stim_info", "label_dir",
                                             "roi_pattern", "ctab_pattern") if getattr(a, k)}
    if roi_sets is not None:
        path_opts["roi_sets"] = roi_sets
    out, summary = prepare_nsd(a.out, root=a.nsd_root, subject=a.subject, sessions=parse_sessions(a.sessions),
                               features=a.features, feature_ids=a.feature_ids, categories=a.categories,
                               keep=a.keep, trials_per_session=a.trials_per_session, overwrite=a.overwrite,
                               progress=not a.quiet, **path_opts)
    for w in summary["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    c = summary["counts"]
    print(f"wrote {out}: {c['images']} images ({c['test']} test), {c['vertices']} vertices, {c['trials']} trials")
    print(f"next: {summary['jne_run']}")


def _cmd_info(a):
    from .bundle import load_bundle, validate_bundle

    b = load_bundle(a.bundle)
    m = b.manifest
    v = b.vertices
    sig = v["significant"].astype(bool)
    print(f"bundle   {b.path}")
    if m.get("label"):
        print(f"note     {m['label']}")
    print(f"schema   {m.get('schema_version')}  jnecore {m.get('jnecore_version')}  created {m.get('created')}")
    print(f"space    {b.space}   device {m.get('device', {}).get('type', '?')}")
    counts = m.get("counts", {})
    print(f"stimuli  {len(b.stimuli)} (test {len(b.test_stimuli)})   vertices {len(v)} "
          f"(significant {int(sig.sum())}, excluded {counts.get('excluded', 0)})")
    if sig.any():
        print(f"JNE      median {v.loc[sig, 'jne'].median():.4g}   max {v.loc[sig, 'jne'].max():.4g}")
    if "level_summary" in b.table_names:
        print("levels   " + "   ".join(f"{r.level}: {r['mean']:.4g} (n={int(r.n)})" for _, r in b.table("level_summary").iterrows()))
    timings = m.get("timings", {})
    if timings:
        print("timings  " + "  ".join(f"{k} {v:.1f}s" for k, v in timings.items()))
    print(f"tables   {', '.join(b.table_names) or 'none'}")
    if b.simulations_dir:
        print(f"simulations  {', '.join(sorted(p.name for p in b.simulations_dir.iterdir()))}")
    problems = validate_bundle(a.bundle)
    for p in problems:
        print(f"problem  {p}")
    return 1 if problems else 0


def _add_simulate(sub):
    p = sub.add_parser("simulate", help="reproduce the paper's Result I simulations")
    p.add_argument("--out", default="simulations", help="a bundle (results go to its simulations/) or a directory")
    p.add_argument("--repeats", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    arch = p.add_mutually_exclusive_group()
    arch.add_argument("--residual", dest="residual", action="store_true", default=True,
                      help="residual second layer (default)")
    arch.add_argument("--plain", dest="residual", action="store_false", help="plain second layer")
    p.add_argument("--init", default="default", help="default (kaiming-uniform), xavier or normal")
    p.add_argument("--quick", action="store_true", help="a small, fast version")
    p.add_argument("--quiet", action="store_true")


def _cmd_simulate(a):
    from .simulate import run_simulations
    from .validation import check_choice

    check_choice(a.init, ("default", "xavier", "normal"), "--init")
    if a.repeats < 1:
        raise InputError("--repeats", "must be >= 1")
    out = Path(a.out)
    target = out / "simulations" if (out / "manifest.json").is_file() else out
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    try:
        summary = run_simulations(tmp, repeats=a.repeats, seed=a.seed, device=a.device, residual=a.residual,
                                  init=a.init, progress=not a.quiet, quick=a.quick)
        replace_dir(tmp, target)  # an existing simulations/ folder is swapped out whole
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(f"wrote {target}")
    for line in _simulation_lines(summary):
        print(line)


def _simulation_lines(summary):
    """Readable lines from the dict :func:`jnecore.simulate.run_simulations` returns."""
    for act, r in summary.get("single_neuron", {}).items():
        yield f"single neuron  {act:<11} r(JNE, |phi''|) = {r['pearson_r']:.4f} (Spearman {r['spearman_r']:.4f})"
    for act, r in summary.get("placement", {}).items():
        means = "  ".join(f"{k} {r[k]['mean']:.4g}±{r[k]['std']:.2g}" for k in r.get("ranked", []))
        yield f"placement      {act:<11} {r.get('order', '')}   ({means})"
    sizes = summary.get("sample_size", {})
    if sizes:
        yield "sample size    r by N: " + "  ".join(f"{n}: {r['pearson_r']:.3f}" for n, r in sizes.items())
    if "total" in summary.get("timings", {}):
        yield f"took {summary['timings']['total']:.1f} s"


def _add_demo(sub):
    p = sub.add_parser("demo", help="build the sample bundle (simulated data on the real HCP-MMP atlas)")
    p.add_argument("--out", required=True)
    p.add_argument("--small", action="store_true", help="a small bundle in under a minute on a CPU")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--simulations", action="store_true", help="also run Result I simulations into the bundle")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--quiet", action="store_true")


def _cmd_demo(a):
    from .demo import build_demo

    check_out(Path(a.out), a.overwrite)
    sims = None
    tmp = None
    try:
        if a.simulations:
            from .simulate import run_simulations

            tmp = Path(tempfile.mkdtemp(prefix="jne-sim-"))
            run_simulations(tmp / "simulations", repeats=20 if a.small else 200, seed=a.seed, device=a.device,
                            progress=not a.quiet, quick=a.small)
            sims = tmp / "simulations"
        path, warnings = build_demo(a.out, small=a.small, seed=a.seed, device=a.device, overwrite=a.overwrite,
                                    progress=not a.quiet, simulations=sims)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"wrote {path}")


def _add_dashboard(sub):
    p = sub.add_parser("dashboard", help="start the Streamlit dashboard over result bundles")
    p.add_argument("paths", nargs="*", help="bundles or folders holding bundles (default: the sample bundle)")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--headless", action="store_true", help="do not open a browser")


def _cmd_dashboard(a):
    from .dashboard_launch import launch

    return launch(a.paths, port=a.port, headless=a.headless)


def _add_info(sub):
    p = sub.add_parser("info", help="print a readable summary of a bundle")
    p.add_argument("bundle")


COMMANDS = {"run": _cmd_run, "nsd-prepare": _cmd_nsd, "info": _cmd_info, "simulate": _cmd_simulate,
            "demo": _cmd_demo, "dashboard": _cmd_dashboard}


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``error: <option>: <problem>``, exit 2)."""

    def error(self, message):
        print(f"error: {self.prog}: {message}", file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="jne", description="Jacobian Nonlinearity Estimator for encoding models")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"jnecore {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_run, _add_nsd, _add_info, _add_simulate, _add_demo, _add_dashboard):
        add(sub)
    return parser




def _stop_then_raise(exc_type):
    """Signal handler: the first signal asks the long loops to stop (they raise at their next
    batch or chunk, from ordinary Python code); a second one raises at once. Raising from the
    handler straight away can land in a finaliser, where Python drops or half-handles it."""

    def handler(signum, frame):
        if stop_requested():
            raise exc_type()
        request_stop(exc_type)

    return handler


def _interrupt_message(args) -> str:
    msg = "error: interrupted; no " + ("bundle" if args.command in ("run", "demo") else "output") + " was written"
    if args.command == "run":
        from .pipeline import checkpoint_dir_for

        ck = checkpoint_dir_for(args.out)
        if any(ck.glob("*.safetensors")):
            msg += f" (fitted encoders kept in {ck}: rerun with --resume to reuse them)"
    return msg


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse: --help / --version (0) or a one-line usage error (2)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    previous = {}
    clear_stop()
    if threading.current_thread() is threading.main_thread():
        previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, _stop_then_raise(Terminated)),
                    signal.SIGINT: signal.signal(signal.SIGINT, _stop_then_raise(KeyboardInterrupt))}
    try:
        code = COMMANDS[args.command](args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(_interrupt_message(args), file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        clear_stop()
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
