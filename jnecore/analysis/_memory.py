"""How much memory an analysis will need, known before it starts.

The peak is what stays resident for the whole fit (the responses as given, their float32 z-scored
working copy, the interpreter and libraries) plus the largest of the stages' own needs: the
encoder fits (parameters, AdamW state, the best-epoch copy and one loss chunk), the scoring
(predictions and the bootstrap's float64 copies of the test rows) and JNE (JNE-SS and the
engine's chunk budget). The terms follow the code: change one there, change it here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["MemoryEstimate", "estimate_memory", "BASE_BYTES"]

#: Python, torch, numpy, pandas, scikit-learn and pyarrow once imported (measured: ~0.5 GB)
BASE_BYTES = 550 * 2**20
_GiB = 2**30


@dataclass
class MemoryEstimate:
    """Estimated peak bytes of a run, with its parts.

    Attributes
    ----------
    total : int
        The estimated peak (bytes).
    parts : {name: int}
        What is resident throughout (``base``, ``responses``, ``working copy``) and each stage's own
        need (``fit``, ``scoring``, ``jne``): ``total`` is the first three plus the largest stage.
    device : str
        "cpu" or "cuda": where ``total`` lives (on CUDA: GPU memory).
    """

    total: int
    parts: dict = field(default_factory=dict)
    device: str = "cpu"

    def describe(self) -> str:
        """One line: the total and its parts in GB."""
        parts = ", ".join(f"{k} {v / _GiB:.2f}" for k, v in self.parts.items())
        return f"{self.total / _GiB:.2f} GB ({parts})"


def _fit_bytes(n_rows: int, n_features: int, n_outputs: int, hidden: int, n_blocks: int, batch: int,
               chunk_budget: int) -> int:
    params = n_features * hidden + n_blocks * hidden * hidden + hidden * n_outputs
    state = 5 * 4 * params  # weights, gradients, AdamW's two moments, the best-epoch copy
    rows = min(batch, max(1, chunk_budget // (max(n_outputs, 1) * 4)))  # the reused output buffer
    chunk = rows * n_outputs * 4 + rows * hidden * 4 * (n_blocks + 2) * 3
    return state + chunk


def estimate_memory(n_stimuli: int, n_outputs: int, n_features: int, *, hidden: int, n_blocks: int = 2,
                    n_test: int, n_train: int | None = None, fit_batch_size: int | None = None,
                    largest_partition: int | None = None, responses_itemsize: int = 4,
                    device: str = "cpu") -> MemoryEstimate:
    """Estimate the peak memory of :meth:`jnecore.JNEAnalysis.fit` on data of this size.

    Parameters
    ----------
    n_stimuli, n_outputs, n_features : int
        N, V and D.
    hidden, n_blocks : int
        The encoder's width and residual blocks.
    n_test : int
        Test stimuli (rows of JNE-SS); ``n_train`` the training rows (default N - 2 n_test).
    fit_batch_size : int, optional
        Optimiser batch (default: full batch).
    largest_partition : int, optional
        Columns of the largest encoder (``trunk="roi"`` / ``"level"``; default all V).
    responses_itemsize : int
        Bytes per value of the responses as given (4 for float32, 8 for float64).
    device : {"cpu", "cuda"}

    Returns
    -------
    MemoryEstimate
    """
    from ..encoders._fit import _CHUNK_BYTES

    N, V, D = int(n_stimuli), int(n_outputs), int(n_features)
    n_train = int(n_train) if n_train is not None else max(1, N - 2 * int(n_test))
    part = int(largest_partition or V)
    batch = int(fit_batch_size or n_train)
    cuda = device == "cuda"
    fit = _fit_bytes(n_train, D, part, hidden, n_blocks, batch, _CHUNK_BYTES["cuda" if cuda else "cpu"])
    if part < V:  # the partition's training and validation columns are copied out
        fit += (n_train + int(n_test)) * part * 4
    if cuda:  # the fit's data on the GPU: training and validation rows of the partition
        fit += (N - int(n_test)) * part * 4
        return MemoryEstimate(total=int(fit + 512 * 2**20), parts={"fit": int(fit), "cuda context": 512 * 2**20},
                              device="cuda")
    scoring = int(n_test) * V * 2 * 4 + 6 * 64 * 2**20  # a prediction and the next; float64 blocks
    jne = int(n_test) * V * 4 + 256 * 2**20         # JNE-SS, and the engine's chunk budget
    parts = {"base": BASE_BYTES, "responses": N * V * int(responses_itemsize), "working copy": N * V * 4,
             "standardize": 2 * 64 * 2**20, "fit": int(fit), "scoring": int(scoring), "jne": int(jne)}
    resident = parts["base"] + parts["responses"] + parts["working copy"]
    total = resident + max(parts["standardize"], parts["fit"], parts["scoring"], parts["jne"])
    return MemoryEstimate(total=int(total), parts=parts, device="cpu")


def available_bytes(device: str = "cpu") -> int:
    """Memory a new allocation can use now: MemAvailable on the CPU, free GPU memory on CUDA."""
    import torch

    from ..backend import _cpu_available_bytes

    if device == "cuda":
        free, _total = torch.cuda.mem_get_info()
        return int(free)
    return int(_cpu_available_bytes())


def check_memory(estimate: MemoryEstimate, *, responses=None, available: int | None = None):
    """Raise :class:`jnecore.validation.InputError` when ``estimate`` exceeds the memory available.

    What the process already holds counts as available to it: the libraries (``base``) and, when
    ``responses`` is an in-memory array rather than a memory map, the responses themselves.

    Returns
    -------
    (needed, available) : bytes still to be allocated, and bytes available
    """
    import numpy as np

    from ..validation import InputError

    available = available_bytes(estimate.device) if available is None else int(available)
    held = 0
    if estimate.device == "cpu":
        held = estimate.parts.get("base", 0)
        base = responses
        while base is not None and not isinstance(base, np.memmap):
            base = getattr(base, "base", None)
        if responses is not None and base is None:
            held += estimate.parts.get("responses", 0)
    needed = estimate.total - held
    if needed > available:
        big = max(("working copy", "fit", "scoring", "jne"), key=lambda k: estimate.parts.get(k, 0))
        advice = ("fewer response columns (e.g. `jne nsd-prepare --keep rois`) or a machine with more memory"
                  if big != "fit" else "a smaller `hidden`, fewer response columns, or a device with more memory")
        raise InputError("Y", f"this run needs about {needed / _GiB:.1f} GB more {estimate.device.upper()} memory "
                              f"but {available / _GiB:.1f} GB are available (estimate: {estimate.describe()}): "
                              f"use {advice}")
    return needed, available
