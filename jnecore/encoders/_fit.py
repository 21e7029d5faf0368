"""Training an encoder: AdamW on MSE, full batch, early stopping on validation loss."""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..backend import resolve_device
from ..cancel import check_stop
from ..progress import progress_bar

__all__ = ["FitHistory", "fit_encoder"]


@dataclass
class FitHistory:
    """Per-epoch losses of :func:`fit_encoder` and where it stopped."""

    train_loss: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    best_epoch: int = -1
    best_val_loss: float = math.inf
    epochs_run: int = 0
    stopped_early: bool = False
    batch_size: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _tensor(a, device):
    t = a.detach() if isinstance(a, torch.Tensor) else torch.as_tensor(np.asarray(a))
    return t.to(device=device, dtype=torch.float32)


def _fits_full_batch(device, n_bytes) -> bool:
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return n_bytes * 4 < free  # data, activations and gradients with room to spare


def fit_encoder(model: nn.Module, X_train, Y_train, X_val, Y_val, *, lr: float = 1e-3,
                weight_decay: float = 0.01, max_epochs: int = 512, patience: int = 8,
                batch_size: int | None = None, device="auto", seed: int = 0,
                progress: bool = False, stop=check_stop) -> FitHistory:
    """Fit ``model`` in place by AdamW on the mean squared error, with early stopping.

    Parameters
    ----------
    model : nn.Module
        Maps (n, D) to (n, V); trained in place and left on ``device`` holding the weights of the
        best validation epoch (a deep copy taken at that epoch, not the last epoch's weights).
    X_train, Y_train : array (n_train, D), (n_train, V)
    X_val, Y_val : array (n_val, D), (n_val, V)
    lr, weight_decay : float
        AdamW settings (PyTorch defaults, as in the paper).
    max_epochs, patience : int
        Stop after ``patience`` epochs without a lower validation loss.
    batch_size : int, optional
        ``None`` trains full batch (the paper), falling back to mini-batches of 1024 when the data
        do not fit the device.
    seed : int
        Seeds initialisation-independent randomness (batch order); deterministic on the CPU.
    progress : bool
        Show a progress bar over epochs.
    stop : callable
        Called before every batch; raises to cancel (default :func:`jnecore.cancel.check_stop`).

    Returns
    -------
    FitHistory
    """
    dev = resolve_device(device)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    Xt, Yt = _tensor(X_train, dev), _tensor(Y_train, dev)
    Xv, Yv = _tensor(X_val, dev), _tensor(Y_val, dev)
    if Xt.shape[0] != Yt.shape[0] or Xv.shape[0] != Yv.shape[0]:
        raise ValueError("features and responses must have the same number of rows")
    if Xt.shape[0] < 1 or Xv.shape[0] < 1:
        raise ValueError("training and validation sets must be non-empty")
    n = Xt.shape[0]
    if batch_size is None:
        batch_size = n if _fits_full_batch(dev, (Xt.numel() + Yt.numel()) * 4) else 1024
    batch_size = int(min(max(1, batch_size), n))
    model.to(dev).train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    hist = FitHistory(batch_size=batch_size)
    best_state = copy.deepcopy(model.state_dict())
    since_best = 0
    t0 = time.perf_counter()
    bar = progress_bar(range(max_epochs), desc="fit encoder", enabled=progress, unit="epoch")
    for epoch in bar:
        model.train()
        order = torch.randperm(n, generator=gen).to(dev) if batch_size < n else None
        total = 0.0
        for a in range(0, n, batch_size):
            stop()
            idx = order[a:a + batch_size] if order is not None else slice(None)
            xb, yb = Xt[idx], Yt[idx]
            opt.zero_grad(set_to_none=True)
            loss = torch.mean((model(xb) - yb) ** 2)
            loss.backward()
            opt.step()
            total += loss.item() * xb.shape[0]
        model.eval()
        with torch.no_grad():
            val = torch.mean((model(Xv) - Yv) ** 2).item()
        hist.train_loss.append(total / n)
        hist.val_loss.append(val)
        hist.epochs_run = epoch + 1
        if val < hist.best_val_loss:
            hist.best_val_loss, hist.best_epoch, since_best = val, epoch, 0
            best_state = copy.deepcopy(model.state_dict())  # a copy, never the live tensors
        else:
            since_best += 1
            if since_best >= patience:
                hist.stopped_early = True
                break
        if hasattr(bar, "set_postfix_str"):
            bar.set_postfix_str(f"val {val:.4g}")
    model.load_state_dict(best_state)
    model.eval()
    hist.seconds = time.perf_counter() - t0
    return hist
