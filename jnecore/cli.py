"""The ``jne`` command line: run, nsd-prepare, info, simulate, demo, sweep, dashboard, features, figure.

Bad input ends with one line ``error: <file>: <problem>`` on stderr and exit code 2, no traceback
and no partial output. Ctrl-C (SIGINT) or SIGTERM ends a command with one line and exit code 130
(143 for SIGTERM), again with no partial output: a SIGTERM handler raises KeyboardInterrupt so the
same cleanup runs. ``jne run`` keeps the encoders it has fitted in ``<out>.partial`` so that
``--resume`` can reuse them.
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path


from ._atomic import check_out, replace_dir, tmp_prefix
from ._run_cli import add_run_parser, cmd_run, error_text, flag_for
from .cancel import Terminated, clear_stop, request_stop, stop_requested
from .features._cli import add_features_parser, cmd_features, interrupt_note
from .validation import InputError

__all__ = ["main"]


def _add_nsd(sub):
    p = sub.add_parser("nsd-prepare", help="assemble one NSD subject (fsaverage or func1pt8mm betas, shared1000 test "
                                           "set, ROIs) into files `jne run --prepared` reads")
    p.add_argument("--nsd-root", help="the NSD folder (holding nsddata/, nsddata_betas/)")
    p.add_argument("--subject", required=True, help="1..8 or subj01..subj08")
    p.add_argument("--out", required=True, help="folder to create")
    p.add_argument("--space", default="fsaverage",
                   help="fsaverage (surface betas, default) or func1pt8mm (volume betas within the brain mask)")
    p.add_argument("--sessions", help="e.g. 1-10,12 (default: every session found; a gap is an error)")
    p.add_argument("--features", help="features: a table with an nsdId column, an array with --feature-ids, "
                                      "or 73000 rows in 73k order")
    p.add_argument("--feature-ids", help="one-column table: the 0-based 73k id of each feature row")
    p.add_argument("--categories", help="categories: nsdId (or cocoId) + category columns, or 73000 rows in 73k order")
    p.add_argument("--keep", default="visual", help="vertices (voxels) to keep: visual (an ROI with a hierarchy level, "
                                                    "default), rois (any ROI) or all")
    p.add_argument("--roi-sets", nargs="+", help="ROI sets (default HCP_MMP1; on fsaverage: streams HCP_MMP1 "
                                                  "Kastner2015 nsdgeneral; subject sets, carried from the native "
                                                  "surface: prf-visualrois floc-faces floc-places floc-bodies "
                                                  "floc-words; 'none' for no ROIs)")
    p.add_argument("--trials-per-session", type=int, help="default: the first session file's trial count (750)")
    p.add_argument("--betas-dir", help="default NSD_ROOT/nsddata_betas/ppdata/subjXX/SPACE/betas_fithrf_GLMdenoise_RR")
    p.add_argument("--betas-pattern", help="default {hemi}.betas_session{session:02d}.mgh (fsaverage) or "
                                           "betas_session{session:02d}.nii.gz (func1pt8mm)")
    p.add_argument("--expdesign", help="default NSD_ROOT/nsddata/experiments/nsd/nsd_expdesign.mat")
    p.add_argument("--stim-info", help="default NSD_ROOT/nsddata/experiments/nsd/nsd_stim_info_merged.csv")
    p.add_argument("--fsaverage-label-dir", help="default NSD_ROOT/nsddata/freesurfer/fsaverage/label")
    p.add_argument("--label-dir", help="subject ROIs (native surface); default "
                                       "NSD_ROOT/nsddata/freesurfer/subjXX/label")
    p.add_argument("--transforms-dir", help="default NSD_ROOT/nsddata/ppdata/subjXX/transforms")
    p.add_argument("--transform-pattern", help="default {hemi}.white-to-fsaverage.mgz")
    p.add_argument("--roi-pattern", help="default {hemi}.{name}.mgz")
    p.add_argument("--ctab-pattern", help="default {name}.mgz.ctab")
    p.add_argument("--brainmask", help="default NSD_ROOT/nsddata/ppdata/subjXX/func1pt8mm/brainmask.nii.gz")
    p.add_argument("--roi-volume-dir", help="default NSD_ROOT/nsddata/ppdata/subjXX/func1pt8mm/roi")
    p.add_argument("--roi-volume-pattern", help="default {name}.nii.gz")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--quiet", action="store_true")


_NSD_PATH_OPTIONS = ("betas_dir", "betas_pattern", "expdesign", "stim_info", "label_dir", "fsaverage_label_dir",
                     "transforms_dir", "transform_pattern", "roi_pattern", "ctab_pattern", "brainmask",
                     "roi_volume_dir", "roi_volume_pattern")


def _cmd_nsd(a):
    import re

    from .nsd import parse_sessions, prepare_nsd

    roi_sets = a.roi_sets
    if roi_sets == ["none"]:
        roi_sets = ()
    path_opts = {k: getattr(a, k) for k in _NSD_PATH_OPTIONS if getattr(a, k)}
    if roi_sets is not None:
        path_opts["roi_sets"] = roi_sets
    # the library names its parameters (as the source, or `quoted` in the problem): give the flags
    flags = {k: "--" + k.replace("_", "-") for k in (
        "subject", "sessions", "features", "feature_ids", "categories", "keep", "trials_per_session", "roi_sets",
        "space") + _NSD_PATH_OPTIONS}
    flags["root"] = "--nsd-root"
    try:
        out, summary = prepare_nsd(a.out, root=a.nsd_root, subject=a.subject, sessions=parse_sessions(a.sessions),
                                   features=a.features, feature_ids=a.feature_ids, categories=a.categories,
                                   keep=a.keep, trials_per_session=a.trials_per_session, overwrite=a.overwrite,
                                   progress=not a.quiet, space=a.space, **path_opts)
    except InputError as exc:
        problem = re.sub(r"`(\w+)`", lambda m: flags.get(m.group(1), m.group(0)), exc.problem)
        raise InputError(flags.get(exc.source, exc.source), problem) from None
    for w in summary["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    c = summary["counts"]
    unit = "voxels" if summary.get("space") == "volume" else "vertices"
    print(f"wrote {out}: {c['images']} images ({c['test']} test), {c['vertices']} {unit}, {c['trials']} trials")
    print(f"next: {summary['jne_run']}")


def _cmd_info(a):
    """Print a bundle's summary and one ``problem`` line per non-fatal problem (exit 1), or one
    ``error:`` line per problem when the bundle cannot be opened (exit 2, nothing on stdout)."""
    from .bundle import BundleError, check_bundle, load_bundle

    try:
        b = load_bundle(a.bundle)
    except BundleError:
        for p in check_bundle(a.bundle):
            print(f"{'error' if p.fatal else 'warning'}: {p}", file=sys.stderr)
        return 2
    m = b.manifest
    v = b.vertices
    sig = v["significant"].astype(bool)
    lines = [f"bundle   {b.path}"]
    if m.get("label"):
        lines.append(f"note     {' '.join(str(m['label']).split())}")
    known = lambda key: m.get(key) if m.get(key) is not None else "unknown"  # noqa: E731 (a field ignored as damaged)
    lines.append(f"schema   {known('schema_version')}  jnecore {known('jnecore_version')}  created {known('created')}")
    lines.append(f"space    {b.space}   device {m.get('device', {}).get('type', '?')}")
    counts = m.get("counts", {})
    lines.append(f"stimuli  {len(b.stimuli)} (test {len(b.test_stimuli)})   vertices {len(v)} "
                 f"(significant {int(sig.sum())}, excluded {counts.get('excluded', 0)})")
    if sig.any():
        lines.append(f"JNE      median {v.loc[sig, 'jne'].median():.4g}   max {v.loc[sig, 'jne'].max():.4g}")
    problems = [str(p) for p in b.problems]
    if "level_summary" in b.table_names:
        try:
            lines.append("levels   " + "   ".join(f"{r['level']}: {float(r['mean']):.4g} (n={int(r['n'])})"
                                                  for _, r in b.table("level_summary").iterrows()))
        except (KeyError, ValueError, TypeError) as exc:  # a table of other columns or types
            problems.append(f"{b.path / 'tables' / 'level_summary.parquet'}: unusable "
                            f"({type(exc).__name__}: {str(exc).splitlines()[0][:80] if str(exc) else ''})")
    timings = m.get("timings", {})
    if timings:
        lines.append("timings  " + "  ".join(f"{k} {v:.1f}s" for k, v in timings.items()))
    lines.append(f"tables   {', '.join(b.table_names) or 'none'}")
    if b.simulations_dir:
        lines.append(f"simulations  {', '.join(sorted(p.name for p in b.simulations_dir.iterdir()))}")
    lines += [f"problem  {p}" for p in problems]
    print("\n".join(lines))
    return 1 if problems else 0


def _add_simulate(sub):
    p = sub.add_parser("simulate", help="run the paper's Result I simulations; compare with its claims")
    p.add_argument("--out", default="simulations", help="a bundle (results go to its simulations/) or a directory")
    p.add_argument("--repeats", type=int, default=200, help="random initialisations per init (default 200)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--arch", nargs="+", default=["residual", "plain"], metavar="ARCH",
                   help="placement network architectures: residual and/or plain (default both)")
    p.add_argument("--init", nargs="+", default=["default", "normal"], metavar="INIT",
                   help="placement network initialisations: default (PyTorch, kaiming-uniform), xavier and/or "
                        "normal (N(0, 1) weights); default: default normal")
    p.add_argument("--quick", action="store_true", help="a small, fast smoke version (not for reporting)")
    p.add_argument("--quiet", action="store_true")


def _cmd_simulate(a):
    from .simulate import ARCHITECTURES, INITS, run_simulations
    from .validation import check_choice

    for arch in a.arch:
        check_choice(arch, ARCHITECTURES, "--arch")
    for init in a.init:
        check_choice(init, INITS, "--init")
    if a.repeats < 1:
        raise InputError("--repeats", "must be >= 1")
    out = Path(a.out)
    target = out / "simulations" if (out / "manifest.json").is_file() else out
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=tmp_prefix(target)))
    try:
        summary = run_simulations(tmp, repeats=a.repeats, seed=a.seed, device=a.device,
                                  architectures=tuple(dict.fromkeys(a.arch)), inits=tuple(dict.fromkeys(a.init)),
                                  progress=not a.quiet, quick=a.quick)
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
    pl = summary.get("placement", {})
    if pl.get("configurations"):
        level = f"{pl.get('confidence', 0.95):.0%}"
        yield (f"placement      paper's order {pl.get('claimed_order')}; mean JNE [{level} t CI] over "
               f"{summary.get('config', {}).get('repeats', '?')} repeats; paired differences for adjacent pairs")
    for c in pl.get("configurations", []):
        yield f"placement      {c['line']}"
        yield "                 means: " + "  ".join(
            f"{p} {m['mean']:.4g} [{_num(m['ci_low'])}, {_num(m['ci_high'])}]" for p, m in c["means"].items())
        yield "                 pairs: " + "  ".join(
            f"{q['upper']}-{q['lower']} {q['mean_diff']:.4g} [{_num(q['ci_low'])}, {_num(q['ci_high'])}] "
            f"{q['result']}" for q in c["pairs"] if q["adjacent"])
    if pl.get("report"):
        yield f"placement      {pl['report'][-1]}"
    sizes = summary.get("sample_size", {})
    if sizes:
        yield "sample size    r by N: " + "  ".join(f"{n}: {r['pearson_r']:.3f}" for n, r in sizes.items())
    if "total" in summary.get("timings", {}):
        yield f"took {summary['timings']['total']:.1f} s"


def _num(x):
    return "nan" if x is None else f"{x:.4g}"


def _add_demo(sub):
    p = sub.add_parser("demo", help="build the sample bundle (simulated data on the real HCP-MMP atlas), or with "
                                    "--study a sample study (3 subjects x 4 layers) through `jne sweep`")
    p.add_argument("--out", help="the bundle (required), or with --study the study folder (default demo-study)")
    p.add_argument("--study", action="store_true",
                   help="a simulated study with a planted layer trend (truth.json), run by `jne sweep`")
    p.add_argument("--jobs", type=int, default=2, help="with --study: cells at a time (default 2)")
    p.add_argument("--small", action="store_true", help="a small bundle in a minute or two on a CPU")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--trunk", choices=("shared", "level", "roi"), default="roi",
                   help="encoder trunk: one pair per ROI (default, the sample's), per level, or shared by all")
    p.add_argument("--simulations", action="store_true", help="also run Result I simulations into the bundle")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--quiet", action="store_true")


def _cmd_demo_study(a):
    import json

    from .demo import build_demo_study, study_truth_text

    if a.simulations:
        raise InputError("--simulations", "does not apply to --study")
    out = Path(a.out or "demo-study")
    path, counts = build_demo_study(out, small=a.small, seed=a.seed, device=a.device,
                                    jobs=a.jobs, overwrite=a.overwrite,
                                    log=(lambda line: None) if a.quiet else None)
    print(study_truth_text(json.loads((out / "truth.json").read_text())))
    print(f"wrote {out} (study.json, cells/, truth.json, study.toml, inputs/)")
    return 1 if counts["failed"] else 0


def _cmd_demo(a):
    from .demo import build_demo

    if a.study:
        return _cmd_demo_study(a)
    if not a.out:
        raise InputError("--out", "is required (the bundle to write)")
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
                                    progress=not a.quiet, simulations=sims, trunk=a.trunk)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"wrote {path}")


def _add_sweep(sub):
    p = sub.add_parser("sweep", help="run every subject x layer x setting of a study file, each as a bundle "
                                     "(locally or on a Ray cluster)")
    p.add_argument("study", help="the study file (TOML: subjects, features + layers, settings, [run] options)")
    p.add_argument("--address", help="run on this Ray cluster (HOST:PORT, ray://HOST:PORT or auto; needs "
                                     "jnecore[cluster]), one cell per task, one GPU per task when it has GPUs")
    p.add_argument("--jobs", type=int, default=1, help="cells at a time on this machine (default 1)")
    p.add_argument("--threads", type=int, help="torch threads per cell on this machine (default cores // jobs)")
    p.add_argument("--resume", action="store_true", help="continue a study folder: run only the cells not done")
    p.add_argument("--out", help="the study folder (default: the study file's `out`)")
    p.add_argument("--overwrite", action="store_true", help="run every cell again, replacing its bundle")


def _cmd_sweep(a):
    from .sweep import run_sweep

    _, counts, _ = run_sweep(a.study, out=a.out, jobs=a.jobs, threads=a.threads, address=a.address,
                             resume=a.resume, overwrite=a.overwrite)
    return 1 if counts["failed"] else 0


def _add_dashboard(sub):
    p = sub.add_parser("dashboard", help="start the Streamlit dashboard over result bundles")
    p.add_argument("paths", nargs="*", help="bundles or folders holding bundles (default: the sample bundle)")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--headless", action="store_true", help="do not open a browser")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; any other needs a token and warns)")
    p.add_argument("--token", default=None, help="access token (generated when --host is not loopback)")


def _cmd_dashboard(a):
    from .dashboard_launch import launch

    return launch(a.paths, port=a.port, headless=a.headless, host=a.host, token=a.token)


def _add_figure(sub):
    p = sub.add_parser("figure", help="write a multi-view publication figure of a bundle's map (PNG, SVG or PDF)")
    p.add_argument("bundle")
    p.add_argument("--metric", default="jne", help="jne, r2_linear, r2_nonlinear, r2_diff or noise_ceiling")
    p.add_argument("--out", required=True, help="output file ending .png, .svg or .pdf")
    p.add_argument("--layout", default="2x2", help="2x2 (default) or 1x4")
    p.add_argument("--surface", default="inflated", help="inflated, very_inflated, pial, white, midthickness")
    p.add_argument("--dpi", type=int, default=200)
    p.add_argument("--width", type=int, default=1600, help="width in CSS pixels")
    p.add_argument("--threshold", type=float, default=None)
    p.add_argument("--significant-only", action="store_true")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")


def _cmd_figure(a):
    from .bundle import load_bundle
    from .plotting._surface_views import bundle_figure, save_surface_figure

    for flag, value in (("--dpi", a.dpi), ("--width", a.width)):
        if value < 1:
            raise InputError(flag, f"must be an integer >= 1, got {value}")
    if Path(a.out).exists() and not a.overwrite:
        raise InputError(a.out, "exists: choose another --out or pass --overwrite")
    b = load_bundle(a.bundle)
    fig = bundle_figure(b, a.metric, layout=a.layout, surf_mesh=a.surface, significant_only=a.significant_only,
                        threshold=a.threshold)
    rows = 2 if a.layout == "2x2" else 1
    path = save_surface_figure(fig, a.out, width=a.width, height=int(a.width / (2 if rows == 2 else 4.2)) + 20,
                               dpi=a.dpi)
    print(f"wrote {path}")


def _add_info(sub):
    p = sub.add_parser("info", help="print a readable summary of a bundle")
    p.add_argument("bundle")


COMMANDS = {"run": cmd_run, "nsd-prepare": _cmd_nsd, "info": _cmd_info, "simulate": _cmd_simulate,
            "demo": _cmd_demo, "sweep": _cmd_sweep, "dashboard": _cmd_dashboard, "features": cmd_features, "figure": _cmd_figure}


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
    for add in (add_run_parser, _add_nsd, _add_info, _add_simulate, _add_demo, _add_sweep, _add_dashboard,
                add_features_parser, _add_figure):
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
    elif args.command == "sweep" or (args.command == "demo" and args.study):
        msg = "error: interrupted; the cells done so far are kept (rerun with --resume to run the others)"
    elif args.command == "features":
        msg += interrupt_note(args)
    return msg


def _command_flags(parser: argparse.ArgumentParser, command: str) -> set:
    """The option strings (``--metric`` ...) of one subcommand."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            return set(action.choices[command]._option_string_actions)
    return set()



def main(argv=None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help / --version (0) or a one-line usage error (2)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    previous = {}
    clear_stop()
    if threading.current_thread() is threading.main_thread():
        previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, _stop_then_raise(Terminated)),
                    signal.SIGINT: signal.signal(signal.SIGINT, _stop_then_raise(KeyboardInterrupt))}
    try:
        code = COMMANDS[args.command](args)
    except InputError as exc:  # a library parameter's name becomes the flag the user typed
        print(f"error: {error_text(exc, _command_flags(parser, args.command))}", file=sys.stderr)
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
