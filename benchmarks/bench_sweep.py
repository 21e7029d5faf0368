#!/usr/bin/env python
"""Wall time of one sweep: locally with --jobs 1 and --jobs 2, and on a local Ray instance.

    python benchmarks/bench_sweep.py [--small] [--ray-cpus 2] [--write]

The study is `jne demo --study`'s (3 subjects x 4 layers = 12 cells; ``--small``: its
StudySpec.small() sizes): its inputs, feature file and study.toml are written once, then the same
study file is swept four times into fresh study folders, in this order: local --jobs 1 (with the
default cores // jobs torch threads, then with --threads 1), local --jobs 2, Ray (``ray.init(num_cpus=--ray-cpus)`` started here, one CPU per task). Each time
includes starting the worker processes (spawned) or Ray's workers, not ``ray.init`` itself,
which is timed on its own. ``--write`` replaces this script's block of ``benchmarks/RESULTS.md``
between ``<!-- bench_sweep:start -->`` and ``<!-- bench_sweep:end -->``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))


def _cells_seconds(path: Path) -> float:
    return sum(c["seconds"] or 0.0 for c in json.loads(path.read_text())["cells"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--ray-cpus", type=int, default=2)
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()

    from jnecore._demo_study import StudySpec, _study_toml, _write_inputs, simulate_study
    from jnecore.sweep import run_sweep

    spec = StudySpec.small() if a.small else StudySpec()
    rows = []
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        sim = simulate_study(spec)
        _write_inputs(root, sim)
        simulate_s = time.perf_counter() - t
        (root / "study.toml").write_text(_study_toml(spec, spec.n_subjects, "cpu"))
        runs = (("local, --jobs 1 (2 torch threads)", dict(jobs=1)),
                ("local, --jobs 1 --threads 1", dict(jobs=1, threads=1)),
                ("local, --jobs 2 (1 torch thread each)", dict(jobs=2)))
        for i, (label, kw) in enumerate(runs):
            t = time.perf_counter()
            path, counts, _ = run_sweep(root / "study.toml", out=root / f"local{i}", log=lambda s: None, **kw)
            rows.append((label, time.perf_counter() - t, _cells_seconds(path), counts))
            print(rows[-1], flush=True)
        import ray

        t = time.perf_counter()
        ray.init(num_cpus=a.ray_cpus, include_dashboard=False, logging_level="ERROR", log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": str(HERE.parent), "OMP_NUM_THREADS": "1"}})
        init_s = time.perf_counter() - t
        try:
            t = time.perf_counter()
            path, counts, _ = run_sweep(root / "study.toml", out=root / "ray", ray=True, log=lambda s: None)
            rows.append((f"local Ray ({a.ray_cpus} CPUs, one per task)", time.perf_counter() - t,
                         _cells_seconds(path), counts))
            print(rows[-1], flush=True)
        finally:
            ray.shutdown()
    load1 = os.getloadavg()[0]

    import torch

    cmd = "python benchmarks/bench_sweep.py" + (" --small" if a.small else "") + f" --ray-cpus {a.ray_cpus}"
    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = ["<!-- bench_sweep:start -->",
             f"## `jne sweep`: the demo study ({spec.n_subjects} subjects x 4 layers = 12 cells, N={spec.n_stimuli}, "
             f"V={len(sim['vertices'])}, hidden {spec.hidden}, trunk {spec.trunk}), local and on local Ray", "",
             f"Command: `{cmd}` ({when}); simulating the study took {simulate_s:.1f} s; `ray.init` "
             f"{init_s:.1f} s (not included below)", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} logical cores, torch {torch.__version__}, "
             f"ray {ray.__version__}, Python {platform.python_version()}; load average (1 min) before / after "
             f"{load0:.1f} / {load1:.1f} (shared machine).", "",
             "| runner | wall s | sum of cell s | cells done / failed |", "|---|---|---|---|"]
    for label, wall, cells, counts in rows:
        lines.append(f"| {label} | {wall:.1f} | {cells:.1f} | {counts['done']} / {counts['failed']} |")
    lines += ["", "By default each job gets cores // jobs torch threads (Ray tasks: one). Cell seconds are those "
                  "study.json records (lock to bundle written).", "<!-- bench_sweep:end -->", ""]
    text = "\n".join(lines)
    print(text)
    if a.write:
        from bench_pipeline import write_results

        write_results(text, HERE / "RESULTS.md", "bench_sweep")


if __name__ == "__main__":
    main()
