"""Atomic directory writes: build in a temporary sibling, then rename into place."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .validation import InputError

__all__ = ["check_out", "replace_dir"]


def check_out(out, overwrite: bool):
    """Refuse (:class:`InputError`) an existing, non-empty ``out`` unless ``overwrite``.

    Called before any work starts, so a refused run costs nothing and leaves ``out`` untouched.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise InputError(out, "exists and is not empty: choose another `out` or pass `overwrite`")


def replace_dir(tmp: Path, out: Path, *, overwrite: bool = True):
    """Rename the finished directory ``tmp`` to ``out``.

    An empty ``out`` is replaced; a non-empty one is moved aside, swapped and then removed when
    ``overwrite``, and refused (left untouched, :class:`InputError`) otherwise. If the rename fails
    the old ``out`` is put back.
    """
    tmp, out = Path(tmp), Path(out)
    check_out(out, overwrite)
    old = None
    if out.exists():
        if out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        else:
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, old)
    try:
        os.replace(tmp, out)
    except BaseException:
        if old is not None and old.exists():
            os.replace(old, out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
