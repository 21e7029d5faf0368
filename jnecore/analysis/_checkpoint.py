"""Fitted encoders saved the moment they are fitted, so an interrupted analysis resumes.

A checkpoint is a folder (``<out>.partial`` beside a bundle being written) holding
``checkpoint.json`` (a key: the sha256 of the inputs and fit settings, and each encoder's fit
history) and one ``NAME.safetensors`` per fitted encoder. :meth:`JNEAnalysis.fit` takes one as
its ``checkpoint`` argument; nothing in it is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np

from ..bundle._contract import encoder_filename
from ..encoders import load_encoder, save_encoder
from ..validation import InputError

__all__ = ["EncoderCheckpoint", "checkpoint_dir_for", "inputs_key"]


def checkpoint_dir_for(out) -> Path:
    """Where the fitted encoders of a run writing ``out`` are checkpointed: ``<out>.partial``."""
    out = Path(out)
    return out.parent / f"{out.name}.partial"


def inputs_key(arrays: dict, settings: dict) -> str:
    """sha256 of named arrays (dtype, shape and bytes) and of JSON-able settings."""
    h = hashlib.sha256()
    for name, a in arrays.items():
        if a is None:
            continue
        a = np.ascontiguousarray(a if np.asarray(a).dtype != object else np.asarray(a).astype(str))
        h.update(f"{name}:{a.dtype.str}:{a.shape};".encode())
        h.update(memoryview(a).cast("B"))
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return h.hexdigest()


class EncoderCheckpoint:
    """A folder of fitted encoders for ``resume``.

    Parameters
    ----------
    path : path of the folder
    key : str, from :func:`inputs_key`; a folder made with another key is not reused
    settings : dict, recorded in checkpoint.json for the reader
    resume : bool
        Reuse the encoders found under the same key (an error when the key differs); otherwise
        the folder is cleared first.
    """

    MARKER = "checkpoint.json"

    def __init__(self, path, key: str, settings: dict, *, resume: bool = False):
        self.path, self.key, self.settings, self.resume = Path(path), key, settings, resume
        self.fits: dict = {}
        self.warnings: list = []
        self._found: dict = {}

    def _write_meta(self):
        meta = {"format": "jnecore.checkpoint", "key": self.key, "fit_config": self.settings, "fits": self.fits,
                "encoders": sorted(self.fits)}
        tmp = self.path / f".{self.MARKER}.tmp"
        tmp.write_text(json.dumps(meta, indent=2, default=float))
        os.replace(tmp, self.path / self.MARKER)

    def _is_ours(self) -> bool:
        return (self.path / self.MARKER).is_file()

    def open(self) -> "EncoderCheckpoint":
        """Create (or, with ``resume``, read) the folder; returns self."""
        if self.path.exists():
            if not self.path.is_dir() or (any(self.path.iterdir()) and not self._is_ours()):
                raise InputError(self.path, "exists and is not a jne checkpoint: move it away")
            if self.resume and self._is_ours():
                self._read()
            else:
                shutil.rmtree(self.path)
        elif self.resume:
            self.warnings.append(f"resume: no checkpoint at {self.path}; fitting from the start")
        self.path.mkdir(parents=True, exist_ok=True)
        self._write_meta()
        return self

    def _read(self):
        try:
            meta = json.loads((self.path / self.MARKER).read_text())
        except (OSError, ValueError):
            meta = {}
        if meta.get("key") != self.key:
            raise InputError("resume", f"{self.path} was made with other inputs or fit settings: "
                                       "start again without resuming")
        for name, hist in (meta.get("fits") or {}).items():
            f = self.path / f"{encoder_filename(name)}.safetensors"
            if f.is_file():
                try:
                    self._found[name] = (load_encoder(f), hist)
                except ValueError:
                    continue
        self.fits = {k: v for k, v in (meta.get("fits") or {}).items() if k in self._found}

    @property
    def reused(self) -> list:
        """Names of the encoders taken from the folder."""
        return sorted(self._found)

    def load(self, name: str, config: dict):
        """(model, history) saved under ``name``, or None; InputError when its config differs."""
        if name not in self._found:
            return None
        model, hist = self._found[name]
        if model.config != config:
            raise InputError("resume", f"{self.path}: the saved {name} encoder does not match this run")
        return model.cpu(), hist

    def save(self, name: str, model, history: dict):
        """Save one fitted encoder and its history at once."""
        save_encoder(model, self.path / f"{encoder_filename(name)}.safetensors")
        self.fits[name] = history
        self._write_meta()

    def remove(self, *, only_if_empty: bool = False):
        """Delete the folder (with ``only_if_empty``: only when nothing was saved in it)."""
        if only_if_empty and self.fits:
            return
        if self.path.is_dir() and self._is_ours():
            shutil.rmtree(self.path, ignore_errors=True)
