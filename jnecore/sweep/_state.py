"""``<study>/study.json``: the state of every cell, updated atomically under a study-level lock.

``study.json`` = ``{"schema": "jne-study/1", "name", "study_file", "created", "cells": [...]}``;
each cell has id, subject, layer, layer_index, setting, params, state (pending / running / done /
failed), reason (one line or None), bundle (relative to the study folder), started, finished (ISO
UTC or None) and seconds. Every read-modify-write holds ``<study>/.study.lock`` (``flock``,
blocking: updates are short), and each write goes to a temporary file renamed into place, so a
reader never sees half a file. Which sweep runs a cell is decided by the cell's own lock
(:func:`jnecore._atomic.lock_out` on the cell's bundle folder), not by this file.
"""

from __future__ import annotations

import contextlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path

from ..validation import InputError

__all__ = ["SCHEMA", "STATES", "STATE_FILE", "cell_state", "init_state", "read_state", "study_lock", "update_cell", "utc_now"]

SCHEMA = "jne-study/1"
STATES = ("pending", "running", "done", "failed")
STATE_FILE = "study.json"
_RUN_KEYS = ("state", "reason", "started", "finished", "seconds")


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@contextlib.contextmanager
def study_lock(folder):
    """Hold ``<folder>/.study.lock`` (waiting for another holder) for the block."""
    import fcntl

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / ".study.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock; the file stays, so every holder locks the same inode


def _write(folder: Path, state: dict):
    path = folder / STATE_FILE
    tmp = folder / f".{STATE_FILE}.tmp-{os.getpid()}"
    with open(tmp, "w") as fh:
        json.dump(state, fh, indent=1)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_state(folder) -> dict | None:
    """The study.json of ``folder`` (None when there is none)."""
    path = Path(folder) / STATE_FILE
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise InputError(path, f"is not a readable study file ({exc})") from None
    if not isinstance(state, dict) or state.get("schema") != SCHEMA or not isinstance(state.get("cells"), list):
        raise InputError(path, f"is not a {SCHEMA} study.json")
    return state


def init_state(folder, *, name: str, study_file, cells: list, resume: bool, overwrite: bool) -> dict:
    """Create or take over ``<folder>/study.json`` for ``cells`` (from :func:`expand_cells`).

    A folder with a study.json needs ``resume`` (keep each cell's state) or ``overwrite`` (every
    cell pending again); a done cell whose parameters changed since needs ``overwrite``. Other
    files in the folder (the study's inputs, notes) are left alone; a bundle folder is refused. Cells of
    the old study.json that the study file no longer has are kept as they are.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(folder, "exists and is not a folder: choose another study `out`")
    with study_lock(folder):
        old = read_state(folder)
        if old is None and (folder / "manifest.json").exists():
            raise InputError(folder, "is a result bundle, not a study folder: choose another study `out`")
        if old is not None and not (resume or overwrite):
            raise InputError(folder / STATE_FILE, "exists: pass --resume to run the cells not done, or "
                                                  "--overwrite to run every cell again")
        before = {c["id"]: c for c in (old or {}).get("cells", [])}
        out = []
        for cell in cells:
            prev = before.pop(cell["id"], None)
            run = {"state": "pending", "reason": None, "started": None, "finished": None, "seconds": None}
            if prev is not None and not overwrite:
                if prev.get("state") == "done" and (prev.get("params") != cell["params"]
                                                    or prev.get("layer_index") != cell["layer_index"]):
                    raise InputError(study_file, f"cell {cell['id']} was done with other settings "
                                                 f"({prev.get('params')}): pass --overwrite to run it again")
                run = {k: prev.get(k) for k in _RUN_KEYS}
            out.append({**cell, **run})
        out.extend(before.values())
        state = {"schema": SCHEMA, "name": name, "study_file": str(study_file),
                 "created": (old or {}).get("created") or utc_now(), "cells": out}
        _write(folder, state)
    return state


def update_cell(folder, cell_id: str, **fields) -> dict:
    """Set ``fields`` of one cell of ``<folder>/study.json``; returns the cell as written."""
    folder = Path(folder)
    with study_lock(folder):
        state = read_state(folder)
        if state is None:
            raise InputError(folder / STATE_FILE, "is missing")
        for cell in state["cells"]:
            if cell["id"] == cell_id:
                cell.update(fields)
                _write(folder, state)
                return dict(cell)
    raise InputError(folder / STATE_FILE, f"has no cell {cell_id!r}")


def cell_state(folder, cell_id: str) -> dict | None:
    """One cell of ``<folder>/study.json`` as it is now."""
    with study_lock(folder):
        state = read_state(folder)
    return next((c for c in (state or {}).get("cells", []) if c["id"] == cell_id), None)
