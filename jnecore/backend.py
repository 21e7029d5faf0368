"""Device selection, memory budgets and exact-FP32 precision, shared by the engine and the fitting."""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

import torch

__all__ = ["resolve_device", "memory_budget", "exact_fp32"]


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
        raise ValueError("cuda was asked for but no CUDA GPU is visible: use cpu or auto")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"{dev} does not exist: this machine has {torch.cuda.device_count()} CUDA GPU(s), "
                         f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device type {dev.type!r} cannot compute here: use auto, cpu or cuda")
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


# torch >= 2.9 keeps FP32 precision as a tree, generic -> {cuda, mkldnn} -> {matmul, conv, rnn}: a
# node left unset ("none", or torch's own default for cuDNN conv and rnn) follows a parent that is
# set; one set explicitly keeps its value. Older torch has only the legacy flags.
_NEW_PRECISION_API = hasattr(torch._C, "_get_fp32_precision_getter") and hasattr(torch._C, "_set_fp32_precision_setter")
_ROOT = ("generic", "all")
_NODES = (("cuda", "all"), ("mkldnn", "all"),
          *((b, op) for b in ("cuda", "mkldnn") for op in ("matmul", "conv", "rnn")))  # parents first


@contextmanager
def _exact_fp32_tree() -> Iterator[None]:
    get, put = torch._C._get_fp32_precision_getter, torch._C._set_fp32_precision_setter
    root = get(*_ROOT)
    overridden: dict = {}  # nodes set explicitly to something else, with their value
    legacy = None
    try:
        put(*_ROOT, "ieee")  # every node that is not set explicitly follows
        for node in _NODES:
            if get(*node) != "ieee":
                overridden[node] = get(*node)
                put(*node, "ieee")
        # with both matmul nodes "ieee" torch reports the legacy matmul precision without complaint;
        # cuBLAS checks that it agrees ("highest") with cuda.matmul's "ieee"
        legacy = torch.get_float32_matmul_precision()
        if legacy != "highest":
            torch.backends.cuda.matmul.allow_tf32 = False  # legacy "highest"; touches only cuda.matmul
        yield
    finally:
        if legacy == "high":
            torch.backends.cuda.matmul.allow_tf32 = True
        elif legacy == "medium":
            torch.set_float32_matmul_precision("medium")
        for node, value in overridden.items():
            put(*node, value)
        put(*_ROOT, root)


@contextmanager
def _exact_fp32_legacy() -> Iterator[None]:
    # torch < 2.9: cuBLAS TF32 is float32_matmul_precision != "highest"; cuDNN has its own flag
    saved = (torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32)
    try:
        torch.set_float32_matmul_precision("highest")
        torch.backends.cudnn.allow_tf32 = False
        yield
    finally:
        torch.set_float32_matmul_precision(saved[0])
        torch.backends.cudnn.allow_tf32 = saved[1]


@contextmanager
def exact_fp32() -> Iterator[None]:
    """Exact IEEE FP32 for matmuls and cuDNN (no TF32, no bf16) inside the block.

    On torch >= 2.9 (the ``fp32_precision`` API), ``torch.backends.fp32_precision`` is set to
    ``"ieee"``, so every node that is not set explicitly follows it, and every node that is set
    otherwise (``torch.backends.cuda.matmul``, ``torch.backends.cudnn`` and its ``conv`` / ``rnn``,
    ``torch.backends.mkldnn`` and its ``matmul`` / ``conv`` / ``rnn``) is set to ``"ieee"``. The
    legacy matmul precision is made ``"highest"`` when it is not (cuBLAS checks that the two
    agree), so ``torch.get_float32_matmul_precision()`` reads ``"highest"`` and
    ``torch.backends.cuda.matmul.allow_tf32`` False inside. The legacy cuDNN switch is left alone:
    setting it would turn torch's default for cuDNN conv and rnn into explicit settings that no
    longer follow ``torch.backends.fp32_precision`` afterwards; while it is on (the default),
    reading ``torch.backends.cudnn.allow_tf32`` inside the block raises torch's "mix of the legacy
    and new APIs" error. On older torch the legacy flags are set: float32 matmul precision
    ``"highest"`` and ``torch.backends.cudnn.allow_tf32 = False``.

    On exit, normal or by an exception, every setting that was changed is put back, so each node
    reads as before and a node that followed its parent still does. Not thread-safe: the flags are
    process-global.
    """
    guard = _exact_fp32_tree if _NEW_PRECISION_API else _exact_fp32_legacy
    with guard():
        yield
