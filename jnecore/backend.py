"""Device selection and memory budgets shared by the engine and the encoder fitting."""

from __future__ import annotations

import os

import torch

__all__ = ["resolve_device", "memory_budget"]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto" | "cpu" | "cuda" | "cuda:N"`` into a :class:`torch.device`.

    ``"auto"`` picks CUDA when a GPU is visible, else the CPU. Asking for CUDA on a machine
    without one raises ``ValueError`` with what to do instead.
    """
    if isinstance(device, torch.device):
        dev = device
    elif device in (None, "auto"):
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(f"unknown device {device!r}: use auto, cpu or cuda") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device cuda was asked for but no CUDA GPU is visible: use --device cpu or auto")
    return dev


def _cpu_available_bytes() -> int:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 4 << 30


def memory_budget(device: torch.device) -> int:
    """Bytes that one chunk of Jacobian work may use on ``device``.

    On a GPU: a quarter of the free memory, at most 2 GiB; with the trunk-Jacobian cache (at most
    twice this) the whole JNE computation stays under 8 GB. On the CPU: an eighth of the available memory, at most 256 MiB, which keeps
    blocks cache-friendly and the peak resident size small.
    """
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(min(free // 4, 2 << 30))
    return int(min(_cpu_available_bytes() // 8, 256 << 20))

