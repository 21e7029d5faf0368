"""One cell: lock its bundle folder, record it running, run it as `jne run` would, record the end.

:func:`run_cell` takes and returns plain dicts, so a spawned process or a Ray task can run it.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ..validation import InputError
from ._state import cell_state, update_cell, utc_now

__all__ = ["cell_spec", "cell_namespace", "run_cell"]


def cell_spec(study, cell: dict, *, overwrite: bool = False, threads: int | None = None) -> dict:
    """Everything a worker needs to run ``cell`` of ``study`` (plain, picklable values)."""
    inputs = dict(study.subjects[cell["subject"]])
    features = inputs.pop("features", None) or str(study.features)
    return {"folder": str(Path(study.out).resolve()), "cell": dict(cell), "study_name": study.name,
            "features": f"{features}:{cell['layer']}", "inputs": inputs,
            "params": study.params(cell["setting"]), "overwrite": overwrite, "threads": threads}


def cell_namespace(spec: dict, out) -> argparse.Namespace:
    """The `jne run` options of a cell, as its parser would give them."""
    from ..cli import build_parser

    ns = build_parser().parse_args(["run", "--out", str(out), "--quiet"])
    ns.features = spec["features"]
    for key, value in spec["inputs"].items():
        setattr(ns, key, value)
    for key, value in spec["params"].items():
        setattr(ns, key, value)
    ns.overwrite = spec["overwrite"]
    return ns


def nsd_feature_rows(spec: dict):
    """The rows of a 73k-row feature file (``jne features`` on ``nsd_stimuli.hdf5``) that a
    ``jne nsd-prepare`` subject saw, from its stimulus_ids.csv (0-based 73k ids); None when the
    subject is not a prepared folder or the feature file is not 73,000 rows long."""
    import json

    import h5py

    prepared = spec["inputs"].get("prepared")
    if not prepared:
        return None
    file, _, layer = spec["features"].rpartition(":")
    try:
        with h5py.File(file, "r") as fh:
            n = fh[layer].shape[0]
    except (OSError, KeyError):
        return None  # `jne run` names the problem when it reads the file
    info = json.loads((Path(prepared) / "prepare.json").read_text())
    ids_file = (info.get("files") or {}).get("stimulus_ids")
    if n != 73000 or not ids_file:
        return None
    from ..io import read_labels

    ids = read_labels(str(Path(prepared) / ids_file))
    try:
        return np.asarray([int(float(x)) for x in ids], dtype=np.int64)
    except ValueError:
        raise InputError(Path(prepared) / ids_file, "stimulus ids must be 0-based 73k ids to pick rows of "
                                                    f"{file} (73,000 rows)") from None


def _study_meta(spec: dict) -> dict:
    c = spec["cell"]
    return {"name": spec["study_name"], "subject": c["subject"], "layer": c["layer"],
            "layer_index": int(c["layer_index"]), "setting": c["setting"], "params": dict(c["params"])}


def _first_line(exc) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def _result(cell, state, reason=None, seconds=None, warnings=()):
    return {"id": cell["id"], "state": state, "reason": reason, "seconds": seconds, "warnings": list(warnings)}


def _finished_bundle(out: Path, meta: dict) -> bool:
    import json

    try:
        return json.loads((out / "manifest.json").read_text()).get("study") == meta
    except (OSError, ValueError):
        return False


def run_cell(spec: dict) -> dict:
    """Run one cell (see :func:`cell_spec`); returns {id, state, reason, seconds, warnings}.

    ``state`` is done, failed (``reason``: the line `jne run` would print) or skipped (another
    sweep holds the cell, or has done it). Only an interrupt (KeyboardInterrupt) propagates; the
    cell is then pending again.
    """
    from .._atomic import check_out, lock_out
    from .._run_cli import check_run_args, error_text, run_locked

    folder, cell = Path(spec["folder"]), spec["cell"]
    out = folder / cell["bundle"]
    meta = _study_meta(spec)
    try:
        lock = lock_out(out)
        lock.__enter__()
    except InputError as exc:
        import re

        pid = re.search(r"PID (\w+)", exc.problem)
        return _result(cell, "skipped", "being run by another sweep" + (f" (PID {pid.group(1)})" if pid else ""))
    try:
        now = cell_state(folder, cell["id"]) or {}
        if now.get("state") == "done" and (out / "manifest.json").is_file() and not spec["overwrite"]:
            return _result(cell, "skipped", "done by another sweep")
        if not spec["overwrite"] and _finished_bundle(out, meta):  # written, then the sweep was stopped
            update_cell(folder, cell["id"], state="done", reason=None, finished=now.get("finished") or utc_now())
            return _result(cell, "done", seconds=now.get("seconds"))
        started = time.perf_counter()
        update_cell(folder, cell["id"], state="running", reason=None, started=utc_now(), finished=None,
                    seconds=None)
        warnings, state, reason = [], "done", None
        threads = None
        try:
            if spec.get("threads"):
                import torch

                threads = torch.get_num_threads()
                torch.set_num_threads(int(spec["threads"]))
            ns = cell_namespace(spec, out)
            ns.feature_rows = nsd_feature_rows(spec)
            analysis = check_run_args(ns)
            check_out(out, ns.overwrite)
            _, read_warnings, run_warnings = run_locked(ns, analysis, manifest_extra={"study": meta})
            warnings = list(read_warnings) + list(run_warnings)
        except InputError as exc:
            state, reason = "failed", error_text(exc)
        except KeyboardInterrupt:
            update_cell(folder, cell["id"], state="pending", reason="interrupted", finished=None)
            raise
        except Exception as exc:  # the cell fails; the sweep goes on
            state, reason = "failed", _first_line(exc)
        finally:
            if threads is not None:
                import torch

                torch.set_num_threads(threads)
        seconds = round(time.perf_counter() - started, 3)
        update_cell(folder, cell["id"], state=state, reason=reason, finished=utc_now(), seconds=seconds)
        return _result(cell, state, reason, seconds, warnings)
    finally:
        lock.__exit__(None, None, None)
