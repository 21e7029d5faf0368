"""The ``jne`` command line: run, info, simulate, demo, dashboard.

Bad input ends with one line ``error: <file>: <problem>`` on stderr and exit code 2, no traceback
and no partial output.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from .validation import InputError

__all__ = ["main"]


def _add_run(sub):
    p = sub.add_parser("run", help="fit encoders, select vertices, compute JNE / JNE-SS, write a bundle")
    p.add_argument("--features", required=True, help="(N, D) features: .npy, .npz[:key], .h5[:dataset]")
    p.add_argument("--responses", required=True, help="(N, V) responses: .npy, .npz[:key], .h5[:dataset]")
    p.add_argument("--out", required=True, help="bundle directory to create")
    p.add_argument("--space", default="none", help="fsLR32k, fsaverage5, fsaverage, volume or none")
    p.add_argument("--rois", help="one-column table of V ROI labels")
    p.add_argument("--vertices", help="one-column table of V mesh vertex indices (default 0..V-1)")
    p.add_argument("--categories", help="one-column table of N stimulus categories")
    split = p.add_mutually_exclusive_group()
    split.add_argument("--test-index", help="one-column table of test row indices")
    split.add_argument("--test-fraction", type=float, default=0.1)
    p.add_argument("--device", default="auto")
    p.add_argument("--hidden", type=int, default=1024)
    p.add_argument("--n-blocks", type=int, default=2)
    p.add_argument("--activation", default="relu")
    p.add_argument("--max-epochs", type=int, default=512)
    p.add_argument("--patience", type=int, default=8)
    p.add_argument("--n-boot", type=int, default=200)
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--norm", default="l1")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace an existing non-empty --out")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _cmd_run(a):
    import numpy as np

    from .io import read_array, read_labels
    from .pipeline import RunConfig, run_pipeline
    from .validation import check_labels, check_matrix, check_same_rows

    cfg = RunConfig(space=a.space, device=a.device, hidden=a.hidden, n_blocks=a.n_blocks, activation=a.activation,
                    max_epochs=a.max_epochs, patience=a.patience, n_boot=a.n_boot, alpha=a.alpha, norm=a.norm,
                    seed=a.seed, test_fraction=a.test_fraction).validate()
    _check_out(Path(a.out), a.overwrite)
    X = check_matrix(read_array(a.features), a.features, name="features", min_rows=6)
    Y = check_matrix(read_array(a.responses), a.responses, name="responses", finite=False, min_rows=6)
    check_same_rows(X, Y, a.features, a.responses)
    N, V = Y.shape
    rois = check_labels(read_labels(a.rois), V, a.rois, what="ROI labels", expected="response columns") if a.rois else None
    cats = check_labels(read_labels(a.categories), N, a.categories, what="categories", expected="stimuli") if a.categories else None
    vidx = None
    if a.vertices:
        raw = check_labels(read_labels(a.vertices), V, a.vertices, what="vertex indices", expected="response columns")
        try:
            vidx = raw.astype(np.int64)
        except ValueError:
            raise InputError(a.vertices, "vertex indices must be integers") from None
    test_index = None
    if a.test_index:
        try:
            test_index = read_labels(a.test_index).astype(np.int64)
        except ValueError:
            raise InputError(a.test_index, "test indices must be integers") from None
    path, warnings = run_pipeline(X, Y, a.out, config=cfg, rois=rois, categories=cats, test_index=test_index,
                                  vertex_index=vidx, overwrite=a.overwrite, progress=not a.quiet,
                                  sources={"features": a.features, "responses": a.responses, "rois": a.rois,
                                           "categories": a.categories, "vertices": a.vertices})
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"wrote {path}")


def _check_out(out: Path, overwrite: bool):
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise InputError(out, "exists and is not empty: choose another --out or pass --overwrite")


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
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(f"wrote {target}")
    for line in _simulation_lines(summary):
        print(line)


def _simulation_lines(summary):
    for key in ("single_neuron", "placement_order", "sample_size"):
        if key in summary:
            yield f"{key}: {summary[key]}"


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

    _check_out(Path(a.out), a.overwrite)
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


COMMANDS = {"run": _cmd_run, "info": _cmd_info, "simulate": _cmd_simulate, "demo": _cmd_demo,
            "dashboard": _cmd_dashboard}


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
    for add in (_add_run, _add_info, _add_simulate, _add_demo, _add_dashboard):
        add(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = COMMANDS[args.command](args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted; no bundle was written", file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
