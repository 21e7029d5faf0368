"""Run the three Result I simulations and write them into a bundle's ``simulations/`` folder."""

from __future__ import annotations

import json
import math
import platform
import time
from pathlib import Path

import torch

from ..backend import resolve_device
from ._activations import SIM_ACTIVATIONS
from ._placement import INITS, PLACEMENTS, network_placement, placement_order, placement_summary
from ._sample_size import SAMPLE_SIZES, sample_size, sample_size_summary
from ._single_neuron import single_neuron, single_neuron_summary

__all__ = ["run_simulations", "SIMULATION_FILES"]

#: file name -> columns every reader may rely on (more columns may follow)
SIMULATION_FILES = {
    "single_neuron.parquet": ["activation", "centre", "jne", "second_derivative", "abs_second_derivative",
                              "kink", "jne_taylor"],
    "single_neuron_summary.parquet": ["activation", "pearson_r", "spearman_r", "n_centres"],
    "placement.parquet": ["activation", "placement", "repeat", "jne"],
    "placement_summary.parquet": ["activation", "placement", "mean", "std", "sem", "n", "rank"],
    "sample_size.parquet": ["n_samples", "pearson_r", "spearman_r", "n_windows", "n_kink_windows"],
    "sample_size_curve.parquet": ["n_samples", "centre", "jne", "abs_second_derivative", "kink"],
    "simulations.json": [],
}

_FULL = dict(
    single_neuron=dict(limit=10.0, step=0.02, half_width=0.001, n_points=1001),
    placement=dict(n_features=768, hidden=768, n_samples=1000, limit=10.0, init_std=1.0, bias=False),
    sample_size=dict(sizes=list(SAMPLE_SIZES), limit=10.0, step=0.02, half_width=0.001),
)
_QUICK = dict(
    single_neuron=dict(limit=10.0, step=0.2, half_width=0.001, n_points=101),
    placement=dict(n_features=32, hidden=32, n_samples=100, limit=10.0, init_std=1.0, bias=False),
    sample_size=dict(sizes=list(SAMPLE_SIZES), limit=10.0, step=0.2, half_width=0.001),
)
QUICK_MAX_REPEATS = 3


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("jnecore")
    except Exception:  # running from a source tree
        return "unknown"


def _clean(x):
    """JSON-safe: NaN / inf -> None, numpy scalars -> Python."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if hasattr(x, "item") and not isinstance(x, (str, bytes)):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def run_simulations(
    out_dir,
    *,
    repeats: int = 200,
    seed: int = 0,
    device="auto",
    residual: bool = True,
    init: str = "default",
    progress: bool = False,
    quick: bool = False,
    bias: bool = False,
) -> dict:
    """Run the single-neuron, placement and sample-size simulations; write tables and a summary.

    Parameters
    ----------
    out_dir : path
        Folder to write into (created if missing; nothing is written elsewhere). Usually a result
        bundle's ``simulations/``.
    repeats : int
        Random initialisations of the placement network (200 in the paper).
    seed : int
        Master seed; every experiment and repeat draws from its own stream derived from it.
    device : "auto", "cpu", "cuda"
        Where the placement network runs (the 1-D experiments run in float64 on the same device).
    residual : bool
        Residual (h1 = phi(a2) + h0) or plain second layer in the placement network.
    init : {"default", "xavier", "normal"}
        Weight initialisation of the placement network.
    progress : bool
        Progress bar over the placement repeats.
    quick : bool
        A seconds-long smoke run: 101 centres of 101 points, a 32-32-1 network on 100 inputs, at
        most 3 repeats. Not for reporting.
    bias : bool
        Biases in the placement network (the paper's encoders have none).

    Returns
    -------
    dict
        What ``simulations.json`` holds: ``config``, ``single_neuron`` (correlations per
        activation), ``placement`` (mean / std / sem per activation and placement, measured order
        and paired fractions per activation), ``sample_size`` (r per N), ``timings`` (seconds),
        ``files``.

    Files (columns in :data:`SIMULATION_FILES`)
    -------------------------------------------
    single_neuron.parquet, single_neuron_summary.parquet, placement.parquet,
    placement_summary.parquet, sample_size.parquet, sample_size_curve.parquet, simulations.json.
    """
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}: use one of {', '.join(INITS)}")
    if int(repeats) < 1:
        raise ValueError("repeats must be a positive integer")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dev = resolve_device(device)
    preset = _QUICK if quick else _FULL
    n_rep = min(int(repeats), QUICK_MAX_REPEATS) if quick else int(repeats)
    timings = {}
    t_all = time.perf_counter()

    t0 = time.perf_counter()
    sn = single_neuron(SIM_ACTIVATIONS, device=dev, **preset["single_neuron"])
    sn_sum = single_neuron_summary(sn)
    timings["single_neuron"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    pl = network_placement(SIM_ACTIVATIONS, PLACEMENTS, repeats=n_rep, seed=seed, residual=residual, init=init,
                           device=dev, progress=progress, **{**preset["placement"], "bias": bool(bias)})
    pl_sum = placement_summary(pl)
    order = placement_order(pl)
    timings["placement"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    ss_curve = sample_size(seed=seed, device=dev, **preset["sample_size"])
    ss_sum = sample_size_summary(ss_curve)
    timings["sample_size"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    sn.to_parquet(out / "single_neuron.parquet", index=False)
    sn_sum.to_parquet(out / "single_neuron_summary.parquet", index=False)
    pl.to_parquet(out / "placement.parquet", index=False)
    pl_sum.to_parquet(out / "placement_summary.parquet", index=False)
    ss_sum.to_parquet(out / "sample_size.parquet", index=False)
    ss_curve.to_parquet(out / "sample_size_curve.parquet", index=False)
    timings["write"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - t_all

    placement_stats = {}
    for act, g in pl_sum.groupby("activation", sort=False):
        placement_stats[act] = {
            row.placement: {"mean": row.mean, "std": row.std, "sem": row.sem, "n": row.n, "rank": row.rank}
            for row in g.itertuples(index=False)
        }
        placement_stats[act]["order"] = order[act]["order"]
        placement_stats[act]["ranked"] = order[act]["ranked"]
        placement_stats[act]["paired_fraction_lower"] = order[act]["paired_fraction_lower"]

    result = {
        "config": {
            "repeats": n_rep, "repeats_requested": int(repeats), "seed": int(seed), "device": str(dev),
            "residual": bool(residual), "init": init, "quick": bool(quick),
            "activations": list(SIM_ACTIVATIONS), "placements": list(PLACEMENTS),
            "single_neuron": {**preset["single_neuron"], "dtype": "float64"},
            "placement": {**preset["placement"], "bias": bool(bias), "dtype": "float32",
                          "network": "a1=W1 x(+b1); h0=phi1(a1); h1=phi2(W2 h0(+b2))" + (" + h0" if residual else "")
                          + "; y=w3 h1(+b3)"},
            "sample_size": {**preset["sample_size"], "function": "abs(sin(x))", "dtype": "float64"},
            "jnecore_version": _version(), "torch_version": torch.__version__,
            "torch_threads": torch.get_num_threads(), "machine": platform.machine(),
        },
        "single_neuron": {
            row.activation: {"pearson_r": row.pearson_r, "spearman_r": row.spearman_r,
                             "median_ratio_to_taylor": row.median_ratio_to_taylor}
            for row in sn_sum.itertuples(index=False)
        },
        "placement": placement_stats,
        "sample_size": {
            str(row.n_samples): {"pearson_r": row.pearson_r, "spearman_r": row.spearman_r}
            for row in ss_sum.itertuples(index=False)
        },
        "timings": timings,
        "files": sorted(SIMULATION_FILES),
    }
    result = _clean(result)
    with open(out / "simulations.json", "w") as fh:
        json.dump(result, fh, indent=2)
    return result
