#!/usr/bin/env python
"""Benchmark the JNE engine against the per-voxel baseline and a plain analytic two-pass.

    python benchmarks/bench_jne.py [--quick] [--device cpu|cuda] [--out benchmarks/RESULTS.md]

Variants, each in its own subprocess (so the peak resident size is per variant):

``ours``      :func:`jnecore.compute_jne` with ``method="auto"`` (the readout path for a ResidualMLP):
              JNE and JNE-SS, memory bounded by the chunk size.
``baseline``  the authors' approach: one reverse pass per voxel (``y[:, v].sum().backward()`` with
              ``X.requires_grad``), the whole N x V x D Jacobian kept in memory, then JNE from it
              (deviations taken in place, so its peak is one Jacobian, not two).
``analytic``  the closed-form ResidualMLP Jacobian for all samples at once,
              J_i = W_out (I + D2 W3)(I + D1 W2) D0 W1 (ReLU masks D_k), the full N x V x D tensor
              from one GEMM, then Jbar = mean, s = |J - Jbar|.sum(-1), JNE = std(s).

The table reports wall and CPU time (after a small warm-up call in the same process), peak memory
(peak RSS on the CPU, ``torch.cuda.max_memory_allocated`` on a GPU), the largest
|JNE - JNE_analytic| and the time ratios to ``ours``. The per-voxel baseline runs in full at
V=2000 on the CPU; at V=8000 (or when a full run would exceed ``--baseline-max-seconds``) it is
timed on its first ``--probe`` voxels, and on a GPU on a 200-voxel subset, and its time for all V
voxels is a labelled linear extrapolation. On a GPU the analytic variant runs on a voxel subset
(the full tensor is 61 GB at NSD scale) and serves as the correctness check on those voxels.

The script rewrites its own block of the results file, between ``<!-- bench_jne:start -->`` and
``<!-- bench_jne:end -->``, keeping the other device's section. ``--quick`` (tiny sizes, a smoke
run) prints the table and writes only when ``--out`` is given.
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
START, END = "<!-- bench_jne:start -->", "<!-- bench_jne:end -->"

# (N, D, H, V, baseline) per device. baseline: "full" runs every voxel's backward pass; "probe" times
# the first --probe voxels and extrapolates to V; "subset" runs --gpu-baseline-voxels voxels in full
# (so they join the correctness check) and extrapolates the time linearly to V.
CONFIGS = {
    "cpu": [(500, 256, 512, 2000, "full"), (500, 256, 512, 8000, "probe")],
    "cpu-quick": [(40, 16, 32, 60, "full"), (40, 16, 32, 200, "probe")],
    "cuda": [(1000, 768, 1024, 20000, "subset")],
    "cuda-quick": [(100, 64, 128, 2000, "subset")],
}


# ---------------------------------------------------------------------------- worker side


def _peak_rss_bytes() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux


def _build(N, D, H, V, device, seed):
    import torch

    from jnecore.encoders import ResidualMLP

    torch.manual_seed(seed)
    model = ResidualMLP(D, V, hidden=H, activation="relu")
    g = torch.Generator().manual_seed(seed + 1)
    X = torch.randn(N, D, generator=g)
    return model.to(device).eval(), X.to(device)


def _sync(device):
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _ours(model, X, device, n_vox):
    from jnecore import compute_jne

    res = compute_jne(model, X, device=device, norm="l1", method="auto")
    return res.jne[:n_vox], dict(method=res.method, batch_size=res.batch_size,
                                 voxel_batch_size=res.voxel_batch_size, ss_shape=list(res.ss.shape))


def _baseline(model, X, device, n_vox, max_seconds, probe):
    """One backward pass per voxel; the full (N, n_vox, D) Jacobian in memory.

    Stops after ``probe`` voxels when the projected time exceeds ``max_seconds`` (0: always).
    """
    import torch

    N, D = X.shape
    Xr = X.clone().requires_grad_(True)
    y = model(Xr)
    J = torch.empty((N, n_vox, D), dtype=X.dtype, device=device)
    t0, c0 = time.perf_counter(), time.process_time()
    for v in range(n_vox):
        Xr.grad = None
        y[:, v].sum().backward(retain_graph=True)
        J[:, v, :] = Xr.grad
        if v + 1 == probe and probe < n_vox:
            _sync(device)
            per_voxel = (time.perf_counter() - t0) / probe
            if per_voxel * n_vox > max_seconds:
                return None, dict(voxels_run=probe, per_voxel_s=per_voxel,
                                  per_voxel_cpu_s=(time.process_time() - c0) / probe,
                                  jacobian_bytes=N * n_vox * D * X.element_size())
    with torch.no_grad():
        Jbar = J.mean(0)
        J.sub_(Jbar).abs_()
        s = J.sum(-1)  # (N, n_vox)
        jne = s.std(0, unbiased=False)
    return jne.cpu().numpy(), dict(voxels_run=n_vox, jacobian_bytes=J.numel() * J.element_size())


def _analytic(model, X, device, n_vox):
    """Closed-form ResidualMLP (ReLU) Jacobian for all samples, then JNE in two passes."""
    import torch

    with torch.no_grad():
        N, D = X.shape
        W1 = model.input.weight
        H = W1.shape[0]
        a = X @ W1.T
        T = (a > 0).to(X.dtype)[:, :, None] * W1  # (N, H, D): D0 W1
        h = torch.relu(a)
        for layer in model.blocks:  # T <- (I + D_k W_k) T
            a = h @ layer.weight.T
            mask = (a > 0).to(X.dtype)
            T = T + mask[:, :, None] * torch.matmul(layer.weight, T)
            h = torch.relu(a) + h
        W_out = model.readout.weight[:n_vox]
        # one GEMM: (V, H) @ (H, N*D) -> J laid out (V, N, D)
        J = (W_out @ T.permute(1, 0, 2).reshape(H, N * D)).view(n_vox, N, D)
        del T
        Jbar = J.mean(1, keepdim=True)  # pass 1
        J.sub_(Jbar).abs_()  # pass 2
        s = J.sum(-1)  # (V, N)
        jne = s.std(1, unbiased=False)
    return jne.cpu().numpy(), dict(jacobian_bytes=J.numel() * J.element_size())


def worker(args) -> None:
    threads = args.threads
    import numpy as np
    import torch

    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(threads)
    torch.backends.cuda.matmul.allow_tf32 = False
    N, D, H, V = args.N, args.D, args.H, args.V
    n_vox = args.n_vox or V
    model, X = _build(N, D, H, V, device, args.seed)

    # warm-up on tiny data: first-call costs (vmap/jvp setup, allocator, BLAS threads) are not timed
    wm, wX = _build(4, D, 8, 3, device, args.seed)
    if args.variant == "ours":
        _ours(wm, wX, device, 3)
    elif args.variant == "baseline":
        _baseline(wm, wX, device, 3, 1e9, 10**9)
    else:
        _analytic(wm, wX, device, 3)
    del wm, wX
    _sync(device)

    rss_before = _peak_rss_bytes()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        mem_before = torch.cuda.memory_allocated(device)
    import resource

    runs = []  # (wall, cpu) per repeat; the per-voxel baseline runs once
    for _ in range(1 if args.variant == "baseline" else max(1, args.repeats)):
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        if args.variant == "ours":
            jne, info = _ours(model, X, device, n_vox)
        elif args.variant == "baseline":
            jne, info = _baseline(model, X, device, n_vox, args.baseline_max_seconds, args.probe)
        else:
            jne, info = _analytic(model, X, device, n_vox)
        _sync(device)
        seconds = time.perf_counter() - t0
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        runs.append((seconds, (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)))
    seconds, cpu_s = min(runs)  # the fastest repeat (the least disturbed by other jobs)
    out = dict(variant=args.variant, seconds=seconds, cpu_seconds=cpu_s, n_vox=n_vox, peak_rss=_peak_rss_bytes(),
               rss_before=rss_before, threads=torch.get_num_threads(), walls=[r[0] for r in runs], **info)
    if device.type == "cuda":
        out["peak_gpu"] = torch.cuda.max_memory_allocated(device)
        out["gpu_before"] = mem_before
        out["gpu_name"] = torch.cuda.get_device_name(device)
    if jne is not None:
        np.save(args.result + ".npy", np.asarray(jne, dtype=np.float64))
    with open(args.result, "w") as fh:
        json.dump(out, fh)


# ---------------------------------------------------------------------------- driver side


def _run_variant(variant, cfg, n_vox, args, tmp, max_seconds=None):
    N, D, H, V = cfg
    result = os.path.join(tmp, f"{variant}-{N}-{D}-{H}-{V}-{n_vox}.json")
    max_seconds = args.baseline_max_seconds if max_seconds is None else max_seconds
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_worker", variant, "--_result", result,
           "--device", args.device, "--threads", str(args.threads), "--seed", str(args.seed),
           "--baseline-max-seconds", str(max_seconds), "--probe", str(args.probe), "--repeats", str(args.repeats),
           "--_cfg", f"{N},{D},{H},{V},{n_vox}"]
    env = dict(os.environ)
    if args.device == "cpu":
        for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[k] = str(args.threads)
    print(f"  {variant:9s} N={N} D={D} H={H} V={V} voxels={n_vox} ...", end="", flush=True, file=sys.stderr)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        print(" failed", file=sys.stderr)
        sys.stderr.write(proc.stdout + proc.stderr)
        return dict(variant=variant, error=(proc.stderr.strip().splitlines() or ["?"])[-1], n_vox=n_vox)
    with open(result) as fh:
        out = json.load(fh)
    import numpy as np

    out["jne"] = np.load(result + ".npy") if os.path.exists(result + ".npy") else None
    # time for all V voxels: per-voxel costs scale linearly (baseline); a probe run is per voxel
    if "per_voxel_s" in out:
        out["full_seconds"] = out["per_voxel_s"] * V
        out["full_cpu_seconds"] = out["per_voxel_cpu_s"] * V
    elif variant == "baseline" and n_vox < V:
        out["full_seconds"] = out["seconds"] * V / n_vox
        out["full_cpu_seconds"] = out["cpu_seconds"] * V / n_vox
    elif n_vox == V:
        out["full_seconds"], out["full_cpu_seconds"] = out["seconds"], out["cpu_seconds"]
    print(f" {out['seconds']:.2f} s", file=sys.stderr)
    return out


def _fmt_bytes(b):
    if b is None:
        return "n/a"
    if b >= 2**30:
        return f"{b / 2**30:.2f} GiB"
    return f"{b / 2**20:.0f} MiB" if b >= 2**20 else f"{b / 2**10:.0f} KiB"


def _machine(device):
    import torch

    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    lines = [f"CPU: {cpu} ({os.cpu_count()} logical cores visible)",
             f"torch {torch.__version__}, Python {platform.python_version()}"]
    if device == "cuda" and torch.cuda.is_available():
        lines.append(f"GPU: {torch.cuda.get_device_name(0)}")
    return lines


def run(args) -> str:
    key = args.device + ("-quick" if args.quick else "")
    is_gpu = args.device == "cuda"
    load0 = os.getloadavg()
    rows, floors = [], []
    with tempfile.TemporaryDirectory(prefix="bench_jne-") as tmp:
        for N, D, H, V, mode in CONFIGS[key]:
            cfg = (N, D, H, V)
            floor = 2 * N * V * H * D
            floors.append(f"N={N} D={D} H={H} V={V}: 2*N*V*H*D = {floor:.3g} flop")
            ours = _run_variant("ours", cfg, V, args, tmp)
            ana = _run_variant("analytic", cfg, min(V, args.gpu_analytic_voxels) if is_gpu else V, args, tmp)
            if mode == "subset":
                base = _run_variant("baseline", cfg, min(V, args.gpu_baseline_voxels), args, tmp)
            else:
                base = _run_variant("baseline", cfg, V, args, tmp, max_seconds=0 if mode == "probe" else None)
            for r in (ours, base, ana):
                rows.append((cfg, r, ours, ana.get("jne"), floor))
    return _render(args, rows, floors, load0, os.getloadavg())


def _render(args, rows, floors, load0, load1) -> str:
    import numpy as np

    is_gpu = args.device == "cuda"
    mem_col = "peak GPU memory (allocated)" if is_gpu else "peak RSS (before the call)"
    head = ["N", "D", "H", "V", "variant", "voxels run", "wall s", "CPU s", mem_col,
            "max abs dJNE vs analytic (rel)", "wall / ours", "CPU / ours"]
    if is_gpu:
        head.append(f"readout flop floor / (wall x {args.peak_tflops:g} TFLOP/s)")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    names = {"baseline": "per-voxel backward (authors')", "analytic": "analytic two-pass (full J)"}
    for (N, D, H, V), r, ours, ref, floor in rows:
        variant = r["variant"]
        if "error" in r:
            cells = [N, D, H, V, names.get(variant, variant), r["n_vox"], "failed", "", "", r["error"][:80], "", ""]
            lines.append("| " + " | ".join(map(str, cells + ([""] if is_gpu else []))) + " |")
            continue
        n_run = r.get("voxels_run", r["n_vox"])
        probe = n_run < r["n_vox"]  # stopped early: extrapolated from the first voxels
        extrap = "full_seconds" in r and n_run < V
        wall, cpu = f"{r['seconds']:.2f}", f"{r['cpu_seconds']:.1f}"
        if extrap:
            wall = f"~{r['full_seconds']:.0f} (extrapolated; {r['seconds']:.1f} s for {n_run} voxels)"
            cpu = f"~{r['full_cpu_seconds']:.0f} (extrapolated)"
        elif n_run < V:
            wall += f" ({n_run}-voxel subset)"
        if probe:
            mem = f"not measured (its Jacobian alone: {_fmt_bytes(r['jacobian_bytes'])})"
        elif is_gpu:
            mem = _fmt_bytes(r.get("peak_gpu"))
            if variant != "ours" and n_run < V:
                mem += f" (for V={V} the Jacobian alone: {_fmt_bytes(r['jacobian_bytes'] * V // n_run)})"
        else:
            mem = f"{_fmt_bytes(r['peak_rss'])} ({_fmt_bytes(r['rss_before'])})"
        if variant == "analytic":
            diff = "reference"
        elif r.get("jne") is not None and ref is not None:
            m = min(len(ref), len(r["jne"]))
            d = np.abs(r["jne"][:m] - ref[:m]).max()
            diff = f"{d:.2e} ({d / max(np.abs(ref[:m]).max(), 1e-30):.1e})" + (f" on {m} voxels" if m < V else "")
        else:
            diff = "n/a"
        if variant == "ours":
            ratio_w = ratio_c = "1"
        elif "full_seconds" in r and "full_seconds" in ours:
            ratio_w = f"{r['full_seconds'] / ours['full_seconds']:.1f}x"
            ratio_c = f"{r['full_cpu_seconds'] / max(ours['full_cpu_seconds'], 1e-9):.1f}x"
        else:
            ratio_w = ratio_c = "n/a (voxel subset)"
        if variant == "ours":
            name = f"ours ({r.get('method')} path, chunks {r.get('batch_size')} x {r.get('voxel_batch_size')})"
        else:
            name = names[variant]
        cells = [N, D, H, V, name, n_run, wall, cpu, mem, diff, ratio_w, ratio_c]
        if is_gpu:
            cells.append(f"{floor / (r['seconds'] * args.peak_tflops * 1e12):.1%}" if variant == "ours" else "")
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    checks = _targets(rows) if not (is_gpu or args.quick) else []

    cmd = "python benchmarks/bench_jne.py " + " ".join(sys.argv[1:])
    date = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    threads = f"{args.threads} torch threads" if not is_gpu else "GPU"
    out = [
        f"Command: `{cmd.strip()}` ({date}{', quick smoke run: sizes too small to mean anything' if args.quick else ''})",
        "",
        "Machine: " + "; ".join(_machine(args.device)) + f"; {threads}.",
        f"Load average (1 min) before / after: {load0[0]:.1f} / {load1[0]:.1f}"
        + (" -- a shared machine: other jobs ran at the same time, so wall times are noisy and the CPU-time "
           "ratios are the steadier comparison" if max(load0[0], load1[0] - args.threads) > 1 and not is_gpu else ""),
        "",
        *lines,
        "",
        *checks,
        "Arithmetic floor of the readout product (the exact L1 JNE needs every entry of W_out (T_i - Tbar)):",
        "",
        *[f"- {f}" for f in floors],
        "",
        f"Wall times follow a small warm-up call in the same process; ours and the analytic variant "
        f"report the fastest of {args.repeats} repeats (CPU s of that repeat), the baseline one run. "
        + ("Peak GPU memory is torch.cuda.max_memory_allocated over the timed call. " if is_gpu else
           "Peak RSS is the process's whole resident peak (Python, torch, model and data included; the "
           "value before the timed call in brackets). ")
        + "The per-voxel baseline keeps the whole N x V x D float32 Jacobian; the analytic "
        "two-pass also materialises it (one GEMM) before reducing. CPU s is user + system time of "
        "the timed call (both threads; spinning OpenMP threads count too). Extrapolated rows scale the "
        "measured per-voxel cost to all V voxels.",
    ]
    return "\n".join(out) + "\n"


def _targets(rows) -> list:
    """The engine's CPU targets, read off the table (wall and CPU time)."""
    by = {}
    for (N, D, H, V), r, _ours, _ref, _floor in rows:
        if "error" not in r:
            by[(V, r["variant"])] = r
    out = []
    Vs = sorted({V for V, _ in by})
    small, large = Vs[0], Vs[-1]

    def ratio(V, other, key):
        o, x = by.get((V, "ours")), by.get((V, other))
        if o is None or x is None or key not in x or key not in o:
            return None
        return x[key] / max(o[key], 1e-9)

    rb = [ratio(small, "baseline", k) for k in ("full_seconds", "full_cpu_seconds")]
    if None not in rb:
        out.append(f"- per-voxel baseline / ours at V={small}: {rb[0]:.1f}x wall, {rb[1]:.1f}x CPU "
                   f"(target >= 5x): {'met' if min(rb) >= 5 else 'NOT met'}")
    for V in Vs:
        ra = [ratio(V, "analytic", k) for k in ("full_seconds", "full_cpu_seconds")]
        if None not in ra:
            out.append(f"- analytic two-pass / ours at V={V}: {ra[0]:.2f}x wall, {ra[1]:.2f}x CPU "
                       f"(target: ours no slower, >= 1 with a 5% noise allowance on both): "
                       f"{'met' if min(ra) >= 0.95 else 'NOT met'}")
    o = by.get((large, "ours"))
    if o is not None:
        out.append(f"- ours' peak RSS at V={large}: {_fmt_bytes(o['peak_rss'])} (target <= 1.5 GB): "
                   f"{'met' if o['peak_rss'] <= 1.5e9 else 'NOT met'}")
    return (["Targets:", "", *out, ""]) if out else []


def write_section(path: Path, device: str, body: str) -> None:
    title = "## JNE engine (GPU)" if device == "cuda" else "## JNE engine (CPU)"
    sub_start, sub_end = f"<!-- bench_jne:{device}:start -->", f"<!-- bench_jne:{device}:end -->"
    sub = f"{sub_start}\n{title}\n\n{body}{sub_end}"
    text = path.read_text() if path.exists() else "# Benchmarks\n\n"
    if START in text and END in text:
        pre, rest = text.split(START, 1)
        block, post = rest.split(END, 1)
    else:
        pre, block, post = text.rstrip("\n") + "\n\n", "", "\n"
    if sub_start in block and sub_end in block:
        block = re.sub(re.escape(sub_start) + ".*?" + re.escape(sub_end), lambda _m: sub, block, flags=re.S)
    else:
        parts = [p for p in (block.strip("\n"), sub) if p]
        if device == "cpu":
            parts.reverse()  # CPU section first
        block = "\n\n".join(parts)
    path.write_text(f"{pre}{START}\n{block.strip(chr(10))}\n{END}{post}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny sizes, a smoke run")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--out", type=Path, default=None,
                   help=f"results file (default {DEFAULT_OUT.relative_to(HERE.parent)}; --quick writes only when given)")
    p.add_argument("--threads", type=int, default=2, help="torch threads on the CPU (default 2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=3,
                   help="timed repeats of ours and the analytic variant; the fastest is reported (default 3)")
    p.add_argument("--peak-tflops", type=float, default=67.0,
                   help="peak fp32 TFLOP/s of the GPU for the flop-floor fraction (default 67, H100 SXM)")
    p.add_argument("--baseline-max-seconds", type=float, default=3600.0,
                   help="a full per-voxel baseline run is extrapolated instead when it would take longer")
    p.add_argument("--probe", type=int, default=None,
                   help="voxels timed before extrapolating the per-voxel baseline (default 100, quick 20)")
    p.add_argument("--gpu-baseline-voxels", type=int, default=200)
    p.add_argument("--gpu-analytic-voxels", type=int, default=4000)
    p.add_argument("--_worker", choices=("ours", "baseline", "analytic"), help=argparse.SUPPRESS)
    p.add_argument("--_result", help=argparse.SUPPRESS)
    p.add_argument("--_cfg", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.probe is None:
        args.probe = 20 if args.quick else 100
    if args._worker:
        N, D, H, V, n_vox = map(int, args._cfg.split(","))
        ns = argparse.Namespace(variant=args._worker, result=args._result, device=args.device,
                                threads=args.threads, seed=args.seed, N=N, D=D, H=H, V=V, n_vox=n_vox,
                                repeats=args.repeats,
                                baseline_max_seconds=args.baseline_max_seconds, probe=args.probe)
        worker(ns)
        return 0
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            p.error("--device cuda but no CUDA GPU is visible")
    body = run(args)
    print(body)
    out = args.out if args.out is not None else (None if args.quick else DEFAULT_OUT)
    if out is not None:
        write_section(out, args.device, body)
        print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
