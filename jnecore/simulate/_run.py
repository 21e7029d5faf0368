"""Run the three Result I simulations and write them into a bundle's ``simulations/`` folder."""

from __future__ import annotations

import contextlib
import json
import math
import platform
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import torch

from ..backend import resolve_device
from ..validation import InputError
from ._activations import SIM_ACTIVATIONS
from ._common import Windows
from ._order import CONFIDENCE, PAPER_ORDER, order_report, paper_order_holds, placement_tables
from ._placement import ARCHITECTURES, INITS, PLACEMENTS, PlacementSpec, _check_names, network_placement
from ._sample_size import SAMPLE_SIZES, sample_size, sample_size_summary
from ._single_neuron import single_neuron, single_neuron_summary

__all__ = ["run_simulations", "SIMULATION_FILES", "DEFAULT_INITS"]

_CONFIG = ["architecture", "init", "activation"]

#: file name -> columns every reader may rely on (more columns may follow)
SIMULATION_FILES = {
    "single_neuron.parquet": ["activation", "centre", "jne", "second_derivative", "abs_second_derivative",
                              "kink", "jne_taylor"],
    "single_neuron_summary.parquet": ["activation", "pearson_r", "spearman_r", "n_centres"],
    "placement.parquet": _CONFIG + ["placement", "repeat", "jne"],
    "placement_summary.parquet": _CONFIG + ["placement", "mean", "std", "sem", "n", "ci_low", "ci_high", "rank"],
    "placement_pairs.parquet": _CONFIG + ["lower", "upper", "adjacent", "mean_diff", "ci_low", "ci_high",
                                          "fraction_lower", "n", "result"],
    "placement_order.parquet": _CONFIG + ["claimed_order", "measured_order", "verdict", "reason", "n_repeats", "line"],
    "sample_size.parquet": ["n_samples", "pearson_r", "spearman_r", "n_windows", "n_kink_windows"],
    "sample_size_curve.parquet": ["n_samples", "centre", "jne", "abs_second_derivative", "kink"],
    "simulations.json": [],
}

#: the initialisations run by default: PyTorch's default and N(0, 1) weights
DEFAULT_INITS = ("default", "normal")

_FULL = dict(
    single_neuron=dict(windows=Windows(10.0, 0.02, 0.001), n_points=1001),
    placement=dict(n_features=768, hidden=768, n_samples=1000, limit=10.0, init_std=1.0),
    sample_size=dict(sizes=list(SAMPLE_SIZES), windows=Windows(10.0, 0.02, 0.001)),
)
_QUICK = dict(
    single_neuron=dict(windows=Windows(10.0, 0.2, 0.001), n_points=101),
    placement=dict(n_features=32, hidden=32, n_samples=100, limit=10.0, init_std=1.0),
    sample_size=dict(sizes=list(SAMPLE_SIZES), windows=Windows(10.0, 0.2, 0.001)),
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




class _Clock:
    """Seconds per named step (``with clock("name"): ...``) and in all."""

    def __init__(self):
        self.timings = {}
        self._start = time.perf_counter()

    @contextlib.contextmanager
    def __call__(self, name):
        t0 = time.perf_counter()
        yield
        self.timings[name] = time.perf_counter() - t0

    def done(self) -> dict:
        return {**self.timings, "total": time.perf_counter() - self._start}


def _check_args(repeats, architectures, inits) -> tuple[tuple, tuple]:
    if int(repeats) < 1:
        raise InputError("repeats", "must be a positive integer")
    if isinstance(inits, str):
        inits = (inits,)
    if isinstance(architectures, str):
        architectures = (architectures,)
    return _check_names(architectures, ARCHITECTURES, "architectures"), _check_names(inits, INITS, "inits")


def _placement_runs(preset: dict, inits, architectures, *, repeats, seed, device, bias, progress) -> pd.DataFrame:
    """Per-repeat JNE for every init (one :func:`network_placement` each) and architecture."""
    frames = [network_placement(SIM_ACTIVATIONS, PLACEMENTS, spec=PlacementSpec(**preset, init=init, bias=bias),
                                architectures=architectures, repeats=repeats, seed=seed, device=device,
                                progress=progress)
              for init in inits]
    raw = pd.concat(frames, ignore_index=True)  # init, then architecture
    return raw.sort_values("architecture", key=lambda c: c.map(list(architectures).index), kind="stable",
                           ignore_index=True)


def _write_tables(out: Path, tables: dict) -> None:
    for name, df in tables.items():
        df.to_parquet(out / f"{name}.parquet", index=False)


def _placement_json(tables: dict) -> dict:
    """The placement part of simulations.json: one record per configuration."""
    summary, pairs, order = tables["placement_summary"], tables["placement_pairs"], tables["placement_order"]
    configs = []
    for row in order.to_dict("records"):
        key = {k: row[k] for k in _CONFIG}
        sel = lambda df: df.loc[(df[_CONFIG] == pd.Series(key)).all(axis=1)]  # noqa: E731
        means = {r["placement"]: {c: r[c] for c in ("mean", "ci_low", "ci_high", "std", "sem", "n", "rank")}
                 for r in sel(summary).to_dict("records")}
        pair_list = [{c: r[c] for c in ("lower", "upper", "adjacent", "mean_diff", "ci_low", "ci_high",
                                        "fraction_lower", "result")} for r in sel(pairs).to_dict("records")]
        configs.append({**row, "means": means, "pairs": pair_list})
    return {"claimed_order": " < ".join(PAPER_ORDER), "confidence": CONFIDENCE, "configurations": configs,
            "paper_order_holds_in": paper_order_holds(order), "report": order_report(order)}


def _config(preset: dict, *, n_rep, repeats, seed, dev, architectures, inits, quick, bias) -> dict:
    net = "a1=W1 x(+b1); h0=phi1(a1); h1=phi2(W2 h0(+b2)) [+ h0 if residual]; y=w3 h1(+b3)"
    windows = lambda d: {**asdict(d["windows"]), **{k: v for k, v in d.items() if k != "windows"}}  # noqa: E731
    return {
        "repeats": n_rep, "repeats_requested": int(repeats), "seed": int(seed), "device": str(dev),
        "architectures": list(architectures), "inits": list(inits), "quick": bool(quick),
        "activations": list(SIM_ACTIVATIONS), "placements": list(PLACEMENTS), "claimed_order": list(PAPER_ORDER),
        "confidence": CONFIDENCE,
        "single_neuron": {**windows(preset["single_neuron"]), "dtype": "float64"},
        "placement": {**preset["placement"], "bias": bool(bias), "dtype": "float32", "network": net},
        "sample_size": {**windows(preset["sample_size"]), "function": "abs(sin(x))", "dtype": "float64"},
        "jnecore_version": _version(), "torch_version": torch.__version__,
        "torch_threads": torch.get_num_threads(), "machine": platform.machine(),
    }


def _result(config: dict, tables: dict, timings: dict) -> dict:
    return _clean({
        "config": config,
        "single_neuron": {
            row.activation: {"pearson_r": row.pearson_r, "spearman_r": row.spearman_r,
                             "median_ratio_to_taylor": row.median_ratio_to_taylor}
            for row in tables["single_neuron_summary"].itertuples(index=False)
        },
        "placement": _placement_json(tables),
        "sample_size": {
            str(row.n_samples): {"pearson_r": row.pearson_r, "spearman_r": row.spearman_r}
            for row in tables["sample_size"].itertuples(index=False)
        },
        "timings": timings,
        "files": sorted(SIMULATION_FILES),
    })


def run_simulations(
    out_dir,
    *,
    repeats: int = 200,
    seed: int = 0,
    device="auto",
    architectures: Sequence[str] = ARCHITECTURES,
    inits: Sequence[str] = DEFAULT_INITS,
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
        Random initialisations of the placement network per init (200 in the paper).
    seed : int
        Master seed; every experiment and repeat draws from its own stream derived from it.
    device : "auto", "cpu", "cuda"
        Where the placement network runs (the 1-D experiments run in float64 on the same device).
    architectures : sequence of {"residual", "plain"}
        Residual (h1 = phi(a2) + h0) and / or plain second layer; both share each repeat's draw.
    inits : sequence of {"default", "xavier", "normal"}
        Weight initialisations of the placement network, each with its own repeats.
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
        activation), ``placement`` (per architecture x init x activation: means with CIs, paired
        differences, the paper's order next to the measured one and the verdict; the
        configurations where the paper's order holds; ``report`` lines), ``sample_size`` (r per
        N), ``timings`` (seconds), ``files``.

    Files (columns in :data:`SIMULATION_FILES`)
    -------------------------------------------
    single_neuron, single_neuron_summary, placement, placement_summary, placement_pairs,
    placement_order, sample_size, sample_size_curve (.parquet); simulations.json.
    """
    architectures, inits = _check_args(repeats, architectures, inits)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dev = resolve_device(device)
    preset = _QUICK if quick else _FULL
    n_rep = min(int(repeats), QUICK_MAX_REPEATS) if quick else int(repeats)
    clock, tables = _Clock(), {}
    with clock("single_neuron"):
        tables["single_neuron"] = single_neuron(SIM_ACTIVATIONS, device=dev, **preset["single_neuron"])
        tables["single_neuron_summary"] = single_neuron_summary(tables["single_neuron"])
    with clock("placement"):
        raw = _placement_runs(preset["placement"], inits, architectures, repeats=n_rep, seed=seed, device=dev,
                              bias=bool(bias), progress=progress)
        tables["placement"] = raw
        tables.update({f"placement_{k}": v for k, v in placement_tables(raw).items()})
    with clock("sample_size"):
        tables["sample_size_curve"] = sample_size(seed=seed, device=dev, **preset["sample_size"])
        tables["sample_size"] = sample_size_summary(tables["sample_size_curve"])
    with clock("write"):
        _write_tables(out, tables)
    config = _config(preset, n_rep=n_rep, repeats=repeats, seed=seed, dev=dev, architectures=architectures,
                     inits=inits, quick=quick, bias=bool(bias))
    result = _result(config, tables, clock.done())
    with open(out / "simulations.json", "w") as fh:
        json.dump(result, fh, indent=2)
    return result
