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


#: bytes of (rows x outputs) float32 temporaries one loss chunk may hold (see :func:`chunk_rows`)
_CHUNK_BYTES = {"cpu": 256 * 2**20, "cuda": 2 * 2**30}


def chunk_rows(n_outputs: int, device, copies: int = 4) -> int:
    """Rows per loss chunk, so that one chunk's ``copies`` (rows, n_outputs) float32 temporaries
    fit the budget (4 through autograd; 1, the reused buffer, for a linear readout)."""
    budget = _CHUNK_BYTES["cuda" if torch.device(device).type == "cuda" else "cpu"]
    return max(1, int(budget // (max(n_outputs, 1) * 4 * copies)))


def _linear_readout(model):
    """``model.readout`` when ``model(x)`` is ``readout(features(x))`` by construction: an exact
    :class:`ResidualMLP` with no hooks (else None: the generic autograd path is used)."""
    from torch.nn.modules import module as _module

    from ._residual_mlp import ResidualMLP

    if not isinstance(model, ResidualMLP) or type(model).forward is not ResidualMLP.forward \
            or "forward" in vars(model) or type(model).features is not ResidualMLP.features:
        return None
    hooked = any(getattr(m, name) for m in (model, model.readout)
                 for name in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks"))
    if hooked or _module._global_forward_hooks or _module._global_forward_pre_hooks:
        return None
    return model.readout


class _ChunkedLoss:
    """sum((model(X) - Y)^2) over row chunks; with ``backward``, ``scale`` times its gradient is
    added to the parameters (the same gradient one pass over all rows gives).

    For a linear readout the (rows, V) output lives in one reused buffer and the readout's gradient
    is accumulated in place (``addmm_``): no (rows, V) tensor is allocated per chunk, which at whole
    brain V is what costs page faults and memory bandwidth. Other models go through autograd.
    """

    def __init__(self, model, rows: int, n_outputs: int, device):
        self.model, self.rows = model, rows
        self.readout = _linear_readout(model)
        self.buf = (torch.empty((rows, n_outputs), device=device) if self.readout is not None else None)

    def __call__(self, X, Y, *, backward: bool, scale: float = 1.0) -> float:
        total = 0.0
        for r0 in range(0, X.shape[0], self.rows):
            xc, yc = X[r0:r0 + self.rows], Y[r0:r0 + self.rows]
            total += self._readout(xc, yc, backward, scale) if self.readout is not None \
                else self._autograd(xc, yc, backward, scale)
        return total

    def _autograd(self, xc, yc, backward, scale):
        sse = torch.nn.functional.mse_loss(self.model(xc), yc, reduction="sum")
        if backward:
            (sse * scale).backward()
        return float(sse.detach())

    def _readout(self, xc, yc, backward, scale):
        lin = self.readout
        h = self.model.features(xc) if backward else self.model.features(xc).detach()
        hd = h.detach()
        with torch.no_grad():
            err = torch.mm(hd, lin.weight.t(), out=self.buf[:len(xc)])  # (rows, V)
            if lin.bias is not None:
                err.add_(lin.bias)
            err.sub_(yc)
            sse = float(torch.dot(err.view(-1), err.view(-1)))
            if not backward:
                return sse
            g = 2.0 * scale  # d(scale * sse) / d(output) = g * err
            if lin.weight.grad is None:
                lin.weight.grad = torch.zeros_like(lin.weight)
            lin.weight.grad.addmm_(err.t(), hd, alpha=g)
            if lin.bias is not None:
                lin.bias.grad = (lin.bias.grad if lin.bias.grad is not None else 0) + g * err.sum(0)
            grad_h = torch.mm(err, lin.weight).mul_(g)
        if h.requires_grad:
            h.backward(grad_h)
        return sse


def _train_epoch(model, opt, Xt, Yt, batch_size: int, order, stop, loss: _ChunkedLoss) -> float:
    """One pass over the training rows (in ``order`` when mini-batched); the mean squared error.

    Each optimiser batch is processed in chunks of at most ``rows`` rows whose gradients add up to
    the batch's, so a full batch of a whole-brain model needs only a chunk's memory.
    """
    model.train()
    n, total, n_out = Xt.shape[0], 0.0, Yt.shape[1]
    for a in range(0, n, batch_size):
        stop()
        idx = order[a:a + batch_size] if order is not None else slice(None)
        xb, yb = Xt[idx], Yt[idx]
        opt.zero_grad(set_to_none=True)
        total += loss(xb, yb, backward=True, scale=1.0 / (xb.shape[0] * n_out))
        opt.step()
    return total / (n * n_out)


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
    copies = 1 if _linear_readout(model) is not None else 4
    rows = min(chunk_rows(Yt.shape[1], dev, copies), max(batch_size, Xv.shape[0]))
    loss = _ChunkedLoss(model, rows, Yt.shape[1], dev)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    hist = FitHistory(batch_size=batch_size)
    best_state = copy.deepcopy(model.state_dict())
    since_best = 0
    t0 = time.perf_counter()
    bar = progress_bar(range(max_epochs), desc="fit encoder", enabled=progress, unit="epoch")
    for epoch in bar:
        order = torch.randperm(n, generator=gen).to(dev) if batch_size < n else None
        hist.train_loss.append(_train_epoch(model, opt, Xt, Yt, batch_size, order, stop, loss))
        model.eval()
        with torch.no_grad():
            val = loss(Xv, Yv, backward=False) / Yv.numel()
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
