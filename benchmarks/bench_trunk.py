#!/usr/bin/env python
"""Cost and effect of the encoder trunk: one shared trunk (the paper) vs one per level vs one per ROI.

    python benchmarks/bench_trunk.py [--stride 8] [--n-stimuli 2000] [--hidden 96] [--threads 1] [--write]

The demo generator (:func:`jnecore.demo.simulate_responses`) on the real HCP-MMP visual vertex set
(:func:`jnecore.atlas.visual_vertices`, every ``--stride``-th vertex of each parcel, as
``jne demo`` thins it) gives one data set; :class:`jnecore.JNEAnalysis` fits it with
``trunk="shared"``, ``"level"`` and ``"roi"``, each in its own process under ``/usr/bin/time -v``
(the script re-invokes itself with ``--one TRUNK``), so the peak resident size is per choice. The
data are simulated once, in the driver, and loaded by each child, so a child's peak is its analysis'
(plus Python, torch and the data), not the generator's.

Reported per choice: wall seconds per stage (``analysis.timings_``), the process's wall time and
peak RSS, the number of encoder pairs and of significant vertices, and the planted margins: for
FFC (face), PHA1-3 + RSC (outdoor scene) and LO2 / PH / TPOJ1 (body), the MoM of the planted
category over the largest MoM of the other categories; for V1 (nothing planted), the top category's
MoM over the runner-up's (:func:`jnecore.summaries.selectivity_margins`).

``--write`` replaces (or appends) this script's own block of ``benchmarks/RESULTS.md``, between
``<!-- bench_trunk:start -->`` and ``<!-- bench_trunk:end -->``; the rest of the file is untouched.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "RESULTS.md"
START, END = "<!-- bench_trunk:start -->", "<!-- bench_trunk:end -->"
TRUNKS = ("shared", "level", "roi")
#: ROI groups of the demo's planted category gain (jnecore.demo.CATEGORY_GAIN) and the planted category
GROUPS = {"FFC": ("FFC",), "PHA1-3+RSC": ("PHA1", "PHA2", "PHA3", "RSC"), "LO2/PH/TPOJ1": ("LO2", "PH", "TPOJ1"),
          "V1": ("V1",)}
PLANTED = {"FFC": "face", "PHA1-3+RSC": "outdoor scene", "LO2/PH/TPOJ1": "body", "V1": None}
STAGES = ("split", "grouping", "fit", "fit_linear", "fit_nonlinear", "scoring", "jne")


def _spec(args):
    from jnecore.demo import DemoSpec

    return DemoSpec(n_stimuli=args.n_stimuli, n_features=args.n_features, hidden=args.hidden, n_units=args.n_units,
                    vertex_stride=args.stride, n_boot=args.n_boot, max_epochs=args.max_epochs,
                    fit_batch_size=args.batch_size, seed=args.seed)


def _vertices(stride: int):
    from jnecore.atlas import visual_vertices

    v = visual_vertices()
    keep = v.groupby("roi", sort=False).cumcount().to_numpy() % stride == 0
    return v[keep].reset_index(drop=True)


def planted_margins(analysis, rois) -> dict:
    """{ROI group: {"top", "margin"}} of a fitted analysis (margins as in the module docstring)."""
    import numpy as np

    from jnecore.summaries import roi_group_table, selectivity_margins

    merged = np.asarray(rois).astype(str).astype(object)  # object: group names are longer than ROI names
    for name, members in GROUPS.items():
        merged[np.isin(merged, members)] = name
    sig = analysis.significant_ & np.isfinite(analysis.jne_)
    table = roi_group_table(analysis.jne_ss_, analysis.groups_["category"].to_numpy(), merged, vertex_mask=sig)
    m = selectivity_margins(table[table["roi"].isin(list(GROUPS))], expected=PLANTED).set_index("roi")
    out = {}
    for name, cat in PLANTED.items():
        if name in m.index:
            row = m.loc[name]
            out[name] = dict(top=str(row["top"]), margin=float(row["expected_margin"] if cat else row["margin"]),
                             n_vertices=int((merged[sig] == name).sum()))
    return out


def simulate(args, path: Path) -> None:
    """The data set, once, to ``path`` (npz): the children only load it, so their peak RSS is the fit's."""
    import numpy as np

    from jnecore.demo import simulate_responses

    v = _vertices(args.stride)
    sim = simulate_responses(v, _spec(args))
    np.savez(path, X=sim["X"], Y=sim["Y"], categories=sim["categories"], rois=v["roi"].to_numpy().astype(str),
             levels=v["level"].to_numpy().astype(str))


def worker(args) -> None:
    """One trunk choice: load the data, fit, write the timings and margins as JSON to ``args.json``."""
    import numpy as np
    import torch

    from jnecore import JNEAnalysis

    if args.threads:
        torch.set_num_threads(args.threads)
    spec, d = _spec(args), np.load(args.data)
    a = JNEAnalysis(hidden=spec.hidden, n_blocks=2, max_epochs=spec.max_epochs, patience=8, n_boot=spec.n_boot,
                    seed=spec.seed, fit_batch_size=spec.fit_batch_size, device="cpu", trunk=args.one,
                    test_fraction=args.test_fraction, grouping="categories")
    t0 = time.perf_counter()
    a.fit(d["X"], d["Y"], groups=d["categories"], rois=d["rois"], levels=d["levels"])
    fit_s = time.perf_counter() - t0
    epochs = {k: h.get("epochs_run", 0) for k, h in a.fit_history_.items()}
    res = dict(trunk=args.one, fit_seconds=fit_s, timings=a.timings_, partitions=len(a.partitions_),
               significant=int(a.significant_.sum()), vertices=int(d["Y"].shape[1]), n_test=a.n_test_,
               epochs=sum(epochs.values()), margins=planted_margins(a, d["rois"]), threads=torch.get_num_threads())
    Path(args.json).write_text(json.dumps(res))


# ---------------------------------------------------------------------------- driver side


def _forwarded(args) -> list:
    return ["--stride", str(args.stride), "--n-stimuli", str(args.n_stimuli), "--n-features", str(args.n_features),
            "--hidden", str(args.hidden), "--n-units", str(args.n_units), "--max-epochs", str(args.max_epochs),
            "--batch-size", str(args.batch_size), "--n-boot", str(args.n_boot), "--seed", str(args.seed),
            "--test-fraction", str(args.test_fraction),
            "--threads", str(args.threads)]


def run_one(trunk: str, args, tmp: Path) -> dict:
    """Run ``--one trunk`` under ``/usr/bin/time -v``; its JSON plus peak RSS (bytes) and wall seconds."""
    out = tmp / f"{trunk}.json"
    cmd = ["/usr/bin/time", "-v", sys.executable, str(Path(__file__).resolve()), "--one", trunk, "--json", str(out),
           "--data", str(tmp / "data.npz"), *_forwarded(args)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"--one {trunk} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    res = json.loads(out.read_text())
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", proc.stderr)
    res["peak_rss"] = int(rss.group(1)) * 1024 if rss else None
    res["process_wall"] = (int(wall.group(1) or 0) * 3600 + int(wall.group(2)) * 60 + float(wall.group(3))
                           if wall else None)
    user = re.search(r"User time \(seconds\): ([\d.]+)", proc.stderr)
    system = re.search(r"System time \(seconds\): ([\d.]+)", proc.stderr)
    res["process_cpu"] = float(user.group(1)) + float(system.group(1)) if user and system else None
    return res


def render(args, rows, load) -> str:
    """The markdown section (without the start / end markers)."""
    import torch

    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    r0 = rows[0]
    lines = [
        "## Encoder trunk: shared (the paper) vs one per level vs one per ROI",
        "",
        f"Command: `python benchmarks/bench_trunk.py {' '.join(_forwarded(args))}` ({when}). Machine: "
        f"{platform.machine()}, {os.cpu_count()} logical cores, torch {torch.__version__}, {r0['threads']} torch "
        f"thread(s); load average (1 min) before / after {load[0]:.1f} / {load[1]:.1f} (the machine is shared, "
        "so wall times are upper bounds).",
        "",
        f"Data: the demo generator on every {args.stride}th vertex of each HCP-MMP visual parcel "
        f"({r0['vertices']} vertices, 35 ROIs, 3 levels), {args.n_stimuli} stimuli (D = {args.n_features}), "
        f"{r0['n_test']} test stimuli; ResidualMLP hidden {args.hidden}, 2 blocks, mini-batch {args.batch_size}, "
        f"early stopping (patience 8, at most {args.max_epochs} epochs), seed {args.seed}. Each choice ran in its "
        "own process under `/usr/bin/time -v` (peak RSS and process wall time from it: imports, loading the "
        "simulated data, which the driver made once, and the whole analysis).",
        "",
        "| trunk | encoder pairs | epochs (all fits) | " + " | ".join(f"{s} s" for s in STAGES)
        + " | process wall s | CPU s | peak RSS | significant |",
        "|---|---|---|" + "---|" * len(STAGES) + "---|---|---|---|",
    ]
    for r in rows:
        t = r["timings"]
        lines.append(f"| {r['trunk']} | {r['partitions']} | {r['epochs']} | "
                     + " | ".join(f"{t.get(s, float('nan')):.1f}" for s in STAGES)
                     + f" | {r['process_wall']:.0f} | {r['process_cpu']:.0f} | {r['peak_rss'] / 2**20:.0f} MiB"
                     + f" | {r['significant']} |")
    lines += ["", "Planted margins (MoM of the planted category / largest MoM of the other categories over the "
              "group's significant vertices; V1, where nothing is planted: top / runner-up; the top category in "
              "brackets):", "",
              "| trunk | " + " | ".join(f"{g} ({PLANTED[g] or 'none planted'})" for g in GROUPS) + " |",
              "|---|" + "---|" * len(GROUPS)]
    for r in rows:
        cells = [f"x{r['margins'][g]['margin']:.2f} ({r['margins'][g]['top']})" if g in r["margins"] else "n/a"
                 for g in GROUPS]
        lines.append(f"| {r['trunk']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_section(path: Path, body: str) -> None:
    """Replace this script's block of ``path`` (or append it); nothing else in the file changes."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    block = f"{START}\n{body.strip()}\n{END}"
    if START in text and END in text:
        pre, rest = text.split(START, 1)
        text = pre + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    tmp = path.with_suffix(".trunk.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)  # one rename: a reader never sees half a file


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stride", type=int, default=8, help="keep every STRIDE-th vertex of each parcel")
    p.add_argument("--n-stimuli", type=int, default=2000)
    p.add_argument("--n-features", type=int, default=64)
    p.add_argument("--hidden", type=int, default=96)
    p.add_argument("--n-units", type=int, default=48)
    p.add_argument("--max-epochs", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--n-boot", type=int, default=100)
    p.add_argument("--test-fraction", type=float, default=0.1, help="the paper's 0.1 by default")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--trunks", nargs="+", default=list(TRUNKS), choices=TRUNKS)
    p.add_argument("--write", action="store_true", help=f"write the section into {DEFAULT_OUT.name}")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--one", choices=TRUNKS, help=argparse.SUPPRESS)
    p.add_argument("--json", help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one:
        worker(args)
        return 0
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        simulate(args, Path(tmp) / "data.npz")
        rows = []
        for trunk in args.trunks:
            rows.append(run_one(trunk, args, Path(tmp)))
            print(f"{trunk}: {rows[-1]['process_wall']:.0f} s", file=sys.stderr, flush=True)
    body = render(args, rows, (load0, os.getloadavg()[0]))
    print(body)
    if args.write:
        write_section(args.out, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
