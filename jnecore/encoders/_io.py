"""Saving and loading encoders as safetensors (no pickle), with their config in the metadata."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ._residual_mlp import ResidualMLP

__all__ = ["save_encoder", "load_encoder"]


def save_encoder(model: ResidualMLP, path) -> Path:
    """Write ``model``'s weights and config to ``path`` (.safetensors), atomically."""
    path = Path(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {"format": "jnecore.ResidualMLP", "config": json.dumps(model.config)}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".safetensors")
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=meta)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def load_encoder(path) -> ResidualMLP:
    """Rebuild a :class:`ResidualMLP` from a file written by :func:`save_encoder`."""
    path = Path(path)
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable safetensors file ({exc})") from None
    if meta.get("format") != "jnecore.ResidualMLP" or "config" not in meta:
        raise ValueError(f"{path}: not a jnecore encoder (no ResidualMLP config in its metadata)")
    model = ResidualMLP(**json.loads(meta["config"]))
    try:
        model.load_state_dict(tensors)
    except RuntimeError as exc:
        raise ValueError(f"{path}: weights do not match the stored config ({str(exc).splitlines()[0]})") from None
    return model.eval()
