"""End-to-end ``jne run`` benchmark: seconds per stage and peak RSS, for one or more source trees.

Each run is its own process under ``/usr/bin/time -v`` (peak RSS from "Maximum resident set
size"); stage seconds come from the bundle's manifest. Several ``--tree`` folders (for example a
``git archive`` of an earlier commit and the working tree) are run interleaved on the same data, so
a before / after comparison shares one machine state.

    python benchmarks/bench_pipeline.py --tree /tmp/before --tree . --N 2000 --V 20000 --D 32 \
        --hidden 64 --max-epochs 15 --repeats 2 --write
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def make_data(folder: Path, N: int, V: int, D: int, seed: int):
    """Features (N, D) and responses (N, V) float32 with a nonlinear planted signal, as .npy."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, D)).astype(np.float32)
    Y = np.empty((N, V), dtype=np.float32)
    step = 4096
    for j in range(0, V, step):
        W = rng.normal(size=(D, min(step, V - j))).astype(np.float32) / np.sqrt(D)
        Y[:, j:j + W.shape[1]] = np.abs(X @ W) + rng.normal(size=(N, W.shape[1])).astype(np.float32)
    np.save(folder / "X.npy", X)
    np.save(folder / "Y.npy", Y)


def run_once(tree: Path, data: Path, out: Path, args) -> dict:
    """One `jne run` from ``tree``; returns wall seconds, peak RSS (bytes) and the stage timings."""
    env = dict(os.environ, PYTHONPATH=str(tree.resolve()), OMP_NUM_THREADS=str(args.threads))
    cmd = ["/usr/bin/time", "-v", sys.executable, "-c", "import sys; from jnecore.cli import main; sys.exit(main())",
           "run", "--features", str(data / "X.npy"), "--responses", str(data / "Y.npy"), "--out", str(out),
           "--hidden", str(args.hidden), "--max-epochs", str(args.max_epochs), "--patience", str(args.max_epochs),
           "--n-boot", str(args.n_boot), "--seed", "0", "--device", "cpu", "--quiet", "--overwrite"]
    cmd += ["--groups" if args.legacy_groups else "--grouping", "none"]
    where = subprocess.run([sys.executable, "-c", "import jnecore; print(jnecore.__file__)"], env=env, cwd=data,
                           capture_output=True, text=True).stdout.strip()
    if Path(where).resolve().parent != (tree / "jnecore").resolve():
        raise SystemExit(f"{tree}: jnecore imports from {where}, not from this tree")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=data)  # not the repo: '' is on sys.path
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{tree}: jne run failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1)) * 1024
    est = _estimate(tree, data, args)
    man = json.loads((out / "manifest.json").read_text())
    epochs = {k: v.get("epochs_run") for k, v in man.get("fits", {}).items()}
    return dict(wall=wall, rss=rss, timings=man.get("timings", {}), epochs=epochs, estimate=est, V=args.V)


def _estimate(tree: Path, data: Path, args):
    """The tree's own estimate of the run's peak (None for a tree that has none)."""
    code = ("from jnecore import JNEAnalysis; a = JNEAnalysis(hidden={h}); "
            "print(a.memory_estimate({n}, {v}, {d}).total)").format(h=args.hidden, n=args.N, v=args.V, d=args.D)
    env = dict(os.environ, PYTHONPATH=str(tree.resolve()))
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=data, capture_output=True, text=True)
    return float(proc.stdout.strip()) if proc.returncode == 0 and proc.stdout.strip() else None


def markdown(rows, args, load) -> str:
    lines = [f"<!-- {args.section}:start -->", f"## `jne run` end to end (CPU): {args.title}", "",
             f"Command: `python benchmarks/bench_pipeline.py {' '.join(sys.argv[1:])}` "
             f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} logical cores, Python {platform.python_version()}; "
             f"load average (1 min) before / after: {load[0]:.1f} / {load[1]:.1f}. "
             f"N={args.N}, D={args.D}, hidden {args.hidden}, {args.max_epochs} epochs (no early "
             f"stop), {args.n_boot} bootstrap resamples, grouping none; fastest of {args.repeats} runs per tree, "
             "interleaved.", "",
             "| tree | V | wall s | peak RSS | estimate (error) | target 2NV*4 + 1.5 GB | split | fit linear "
             "| fit nonlinear | s / epoch | scoring | jne | summaries |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for (tree, _), r in rows:
        t = r["timings"]
        per_epoch = (t.get("fit_linear", 0) + t.get("fit_nonlinear", 0)) / max(1, sum(r["epochs"].values()))
        est = (f"{r['estimate'] / 2**30:.2f} GiB ({(r['estimate'] - r['rss']) / r['rss']:+.0%})"
               if r["estimate"] else "not made")
        target = (2 * args.N * r["V"] * 4 + 1.5 * 2**30) / 2**30
        cells = [f"{t.get(k, float('nan')):.2f}" for k in ("split", "fit_linear", "fit_nonlinear", "scoring", "jne",
                                                            "summaries")]
        cells.insert(4, f"{per_epoch:.2f}")
        lines.append(f"| {tree} | {r['V']:,} | {r['wall']:.1f} | {r['rss'] / 2**30:.2f} GiB | {est} | {target:.2f} GiB | "
                     + " | ".join(cells) + " |")
    lines += ["", "Peak RSS is the whole process's (`/usr/bin/time -v`); stage seconds are from the bundle's "
              "manifest; s / epoch is both fits' seconds over their epochs. Responses are float32 .npy files "
              "(read memory-mapped).", f"<!-- {args.section}:end -->"]
    return "\n".join(lines) + "\n"


def write_results(text: str, path: Path, section: str):
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    pat = re.compile(rf"<!-- {re.escape(section)}:start -->.*?<!-- {re.escape(section)}:end -->\n?", re.S)
    new = pat.sub(lambda _: text, old) if pat.search(old) else old.rstrip("\n") + "\n\n" + text
    tmp = path.with_suffix(".tmp")
    tmp.write_text(new)
    os.replace(tmp, path)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tree", action="append", default=[], help="source tree holding jnecore/ (repeatable)")
    p.add_argument("--legacy-tree", action="append", default=[],
                   help="a tree whose `jne run` still names the grouping flag --groups")
    p.add_argument("--N", type=int, default=2000)
    p.add_argument("--V", type=int, nargs="+", default=[20000])
    p.add_argument("--D", type=int, default=32)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--max-epochs", type=int, default=15)
    p.add_argument("--n-boot", type=int, default=200)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--write", action="store_true", help="record the table in benchmarks/RESULTS.md")
    p.add_argument("--section", default="bench_pipeline", help="the RESULTS.md section to (re)write")
    p.add_argument("--title", default="seconds per stage and peak memory", help="the section's heading")
    args = p.parse_args(argv)
    trees = [(Path(t), False) for t in args.tree or [str(REPO)]] + [(Path(t), True) for t in args.legacy_tree]
    work = Path(tempfile.mkdtemp(prefix="jne-bench-pipeline-"))
    load0 = os.getloadavg()[0]
    sizes = list(args.V)
    try:
        best = {}
        for V in sizes:
            args.V = V
            make_data(work, args.N, V, args.D, seed=0)
            for rep in range(args.repeats):
                for tree, legacy in trees:
                    args.legacy_groups = legacy
                    r = run_once(tree, work, work / "out", args)
                    print(f"{tree} V={V} run {rep + 1}: {r['wall']:.1f} s, {r['rss'] / 2**30:.2f} GiB, "
                          f"estimate {r['estimate']}, {r['timings']}", flush=True)
                    key = (str(tree), V)
                    if key not in best or r["wall"] < best[key]["wall"]:
                        best[key] = r
        text = markdown(list(best.items()), args, (load0, os.getloadavg()[0]))
        print(text)
        if args.write:
            write_results(text, REPO / "benchmarks" / "RESULTS.md", args.section)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
