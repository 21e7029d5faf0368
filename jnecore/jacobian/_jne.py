"""Exact, memory-bounded Jacobian Nonlinearity Estimator (JNE) and its sample-specific form.

For an encoder f: R^D -> R^V and stimuli x_1..x_N, with J_i = df(x_i)/dx (V x D):

    Jbar     = mean_i J_i
    s_iv     = || J_i[v, :] - Jbar[v, :] ||          (L1 over the D inputs by default)
    mu_v     = mean_i s_iv
    JNE_v    = sqrt(mean_i (s_iv - mu_v)^2)          (population std, divide by N)
    JNE-SS_iv = (s_iv - mu_v)^2

Two exact ways to get there, neither of which ever holds the N x V x D tensor:

``readout``  for models ending in a linear readout y = W_out h(x): J_i = W_out T_i with T_i the
             trunk Jacobian (H x D), so J_i - Jbar = W_out (T_i - Tbar). The trunk Jacobians come
             from forward mode (H x D each, cached when they fit the budget), and the big product
             W_out (T_i - Tbar) is formed block by block (samples x voxels) and reduced at once.
``forward``  for any module: forward-mode Jacobians of the whole model (V x D per sample) under
             vmap, one sample chunk at a time, in two passes (mean, then deviations).

For an exact :class:`jnecore.encoders.ResidualMLP` with an elementwise activation the trunk
Jacobians use the closed form T = phi'(a_0) W_1, T <- T + phi'(a_k) (W_k T) per block (phi' from a
jvp of phi), the same numbers forward mode gives without pushing D identity tangents through the
input layer: about 1.4x less CPU time for the whole JNE at the benchmark's sizes.

Memory: every block is sized from :func:`jnecore.backend.memory_budget` (a quarter of free GPU
memory up to 2 GiB; on the CPU an eighth of available memory up to 256 MiB). The N x H x D trunk
Jacobians are kept between passes when they fit twice the budget on a GPU or 1 GiB on the CPU,
else recomputed; the (N, V) result is the only array that grows with V.

Means are taken around the first sample's Jacobian (Jbar = J_0 + mean_i (J_i - J_0)), so a model
whose Jacobian does not change gives deviations that are exactly zero, not float noise.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.func import jacfwd, jvp, vmap

from ..backend import memory_budget, resolve_device
from ..cancel import check_stop
from ..progress import progress_bar

__all__ = ["JNEResult", "compute_jne", "split_readout", "NORMS"]

NORMS = ("l1", "l2", "zl1", "zl2")
METHODS = ("auto", "readout", "forward")


@dataclass
class JNEResult:
    """What :func:`compute_jne` returns.

    Attributes
    ----------
    jne : ndarray (V,)
        JNE per output (voxel / vertex).
    ss : ndarray (N, V)
        JNE-SS, (s_iv - mu_v)^2, per stimulus and output.
    mean_deviation : ndarray (V,)
        mu_v, the mean deviation of a sample's Jacobian row from the mean Jacobian row.
    norm, method, device : str
        What was computed and how (``method`` is ``"readout"`` or ``"forward"``).
    seconds : float
        Wall time of the computation, transfers included.
    batch_size, voxel_batch_size : int
        The chunk sizes used (samples per chunk, outputs per block).
    """

    jne: np.ndarray
    ss: np.ndarray
    mean_deviation: np.ndarray
    norm: str
    method: str
    device: str
    seconds: float
    batch_size: int
    voxel_batch_size: int


def split_readout(model: nn.Module):
    """Return ``(trunk, W_out)`` when ``model`` ends in a linear readout, else ``None``.

    Recognised: modules with a callable ``features`` and an ``nn.Linear`` ``readout`` (such as
    :class:`jnecore.encoders.ResidualMLP`), ``nn.Sequential`` ending in ``nn.Linear``, and a bare
    ``nn.Linear``. The readout bias does not enter the Jacobian.
    """
    readout = getattr(model, "readout", None)
    if isinstance(readout, nn.Linear) and callable(getattr(model, "features", None)):
        return model.features, readout.weight
    if isinstance(model, nn.Sequential) and len(model) >= 1 and isinstance(model[-1], nn.Linear):
        trunk = model[:-1] if len(model) > 1 else nn.Identity()
        return trunk, model[-1].weight
    if isinstance(model, nn.Linear):
        return nn.Identity(), model.weight
    return None


def _row_norm(block: torch.Tensor, norm: str) -> torch.Tensor:
    """Norm over the last axis (the D inputs); ``block`` may be overwritten."""
    if norm.endswith("l1"):
        return block.abs_().sum(-1)
    return block.square_().sum(-1).sqrt_()


def _zscore_rows(block: torch.Tensor) -> torch.Tensor:
    """z-score along the last axis (population std); constant rows become 0."""
    mean = block.mean(-1, keepdim=True)
    centred = block - mean
    std = centred.square().mean(-1, keepdim=True).sqrt_()
    return centred / torch.where(std > 0, std, torch.ones_like(std))


def _single(fn):
    return lambda x: fn(x.unsqueeze(0)).squeeze(0)


_ELEMENTWISE = (nn.ReLU, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Tanh, nn.Identity)


def _structured_trunk_jacobian(model):
    """Closed-form trunk Jacobian ``(c, D) -> (c, H, D)`` for a ResidualMLP, else ``None``.

    Only for the exact class (a subclass may override ``features``) with an elementwise activation.
    """
    from ..encoders import ResidualMLP

    if type(model) is not ResidualMLP or type(model.phi) not in _ELEMENTWISE:
        return None
    phi = model.phi

    def jac(X):
        a = model.input(X)
        h, d = jvp(phi, (a,), (torch.ones_like(a),))  # d = phi'(a), elementwise
        T = d.unsqueeze(-1) * model.input.weight  # (c, H, D)
        for layer in model.blocks:
            a = layer(h)
            out, d = jvp(phi, (a,), (torch.ones_like(a),))
            U = torch.matmul(layer.weight, T)  # one batched GEMM per block
            T.add_(U.mul_(d.unsqueeze(-1)))
            h = out + h
        return T

    return jac


class _TrunkJacobians:
    """Trunk Jacobians T_i (H x D) for sample chunks, cached when they fit ``cache_bytes``."""

    def __init__(self, trunk, X, H, cache_bytes, jac=None):
        self._jac = jac if jac is not None else vmap(jacfwd(_single(trunk)))
        self.X = X
        self._cache = None
        N, D = X.shape
        if N * H * D * X.element_size() <= cache_bytes:
            self._cache = torch.empty((N, H, D), dtype=X.dtype, device=X.device)

    def get(self, start, stop, filled):
        if self._cache is not None and filled:
            return self._cache[start:stop]
        T = self._jac(self.X[start:stop])
        if self._cache is not None:
            self._cache[start:stop] = T
        return T


def _plan(n, per_sample_bytes, budget, batch_size):
    if batch_size is not None:
        return max(1, min(n, int(batch_size)))
    return max(1, min(n, budget // max(per_sample_bytes, 1)))


def _jne_readout(trunk, W, X, norm, budget, batch_size, voxel_batch_size, bar, jac=None):
    N, D = X.shape
    V = W.shape[0]
    isz = X.element_size()
    H = W.shape[1]
    # forward mode through the trunk holds about D tangents of every activation per sample
    chunk = _plan(N, 6 * H * D * isz, budget, batch_size)
    cache_bytes = 2 * budget if X.device.type == "cuda" else max(budget, 1 << 30)
    T = _TrunkJacobians(trunk, X, H, cache_bytes, jac)
    vb = voxel_batch_size or max(1, min(V, budget // max(2 * chunk * D * isz, 1)))
    vb = int(min(V, vb))
    starts = range(0, N, chunk)
    zscored = norm.startswith("z")

    T0 = T.get(0, 1, False)[0].clone()
    if not zscored:
        # pass 1: Tbar around T_0 (the shift keeps a constant Jacobian's deviations exactly zero)
        acc = torch.zeros_like(T0)
        for a in starts:
            b = min(N, a + chunk)
            acc += (T.get(a, b, False) - T0).sum(0)
            bar.update(b - a)
            check_stop()
        mean_shift = acc / N  # Tbar - T0
    W_flat = W.contiguous()

    def layout(Tc, centred=False):
        # (c, H, D) -> (H, c*D), the GEMM's right operand, built once per chunk (not per voxel
        # block); centred: T_i - Tbar = (T_i - T_0) - (Tbar - T_0), written straight into it
        c = Tc.shape[0]
        R = torch.empty((H, c, D), dtype=Tc.dtype, device=Tc.device)
        if centred:
            torch.sub(Tc.permute(1, 0, 2), T0.unsqueeze(1), out=R)
            R.sub_(mean_shift.unsqueeze(1))
        else:
            R.copy_(Tc.permute(1, 0, 2))
        return R.view(H, c * D)

    def products(R, v0, v1):
        # (vb, H) @ (H, c*D) as one GEMM -> (vb, c, D)
        return (W_flat[v0:v1] @ R).view(v1 - v0, R.shape[1] // D, D)

    s = torch.empty((N, V), dtype=X.dtype, device=X.device)
    filled = T._cache is not None
    if not zscored:
        for a in starts:
            b = min(N, a + chunk)
            delta = layout(T.get(a, b, filled), centred=True)  # T_i - Tbar, (H, c*D)
            for v0 in range(0, V, vb):
                v1 = min(V, v0 + vb)
                s[a:b, v0:v1] = _row_norm(products(delta, v0, v1), norm).T
            bar.update(b - a)
        check_stop()
        return s, chunk, vb

    # z-scored norms: Zbar is not linear in T, so it is accumulated block by block first
    z0_rows = torch.empty((V, D), dtype=X.dtype, device=X.device)
    R0 = layout(T0.unsqueeze(0))
    for v0 in range(0, V, vb):
        v1 = min(V, v0 + vb)
        z0_rows[v0:v1] = _zscore_rows(products(R0, v0, v1)[:, 0, :])
    zsum = torch.zeros((V, D), dtype=X.dtype, device=X.device)
    for a in starts:  # pass 1 of the z-scored norms: computes (and caches) the trunk Jacobians
        b = min(N, a + chunk)
        Rc = layout(T.get(a, b, False))
        for v0 in range(0, V, vb):
            v1 = min(V, v0 + vb)
            zsum[v0:v1] += (_zscore_rows(products(Rc, v0, v1)) - z0_rows[v0:v1, None, :]).sum(1)
        bar.update(b - a)
        check_stop()
    zshift = zsum / N  # Zbar - Z0
    for a in starts:
        b = min(N, a + chunk)
        Rc = layout(T.get(a, b, True))
        for v0 in range(0, V, vb):
            v1 = min(V, v0 + vb)
            dev = _zscore_rows(products(Rc, v0, v1)) - z0_rows[v0:v1, None, :] - zshift[v0:v1, None, :]
            s[a:b, v0:v1] = _row_norm(dev, norm).T
        bar.update(b - a)
        check_stop()
    return s, chunk, vb


def _jne_forward(model, X, norm, budget, batch_size, bar):
    N, D = X.shape
    jac = vmap(jacfwd(_single(model)))
    J0 = jac(X[:1])[0]  # (V, D)
    V = J0.shape[0]
    isz = X.element_size()
    chunk = _plan(N, 4 * V * D * isz, budget, batch_size)
    zscored = norm.startswith("z")
    prep = _zscore_rows if zscored else (lambda J: J)
    J0 = prep(J0)
    acc = torch.zeros_like(J0)
    starts = range(0, N, chunk)
    for a in starts:
        b = min(N, a + chunk)
        acc += (prep(jac(X[a:b])) - J0).sum(0)
        bar.update(b - a)
        check_stop()
    mean_shift = acc / N
    s = torch.empty((N, V), dtype=X.dtype, device=X.device)
    for a in starts:
        b = min(N, a + chunk)
        s[a:b] = _row_norm((prep(jac(X[a:b])) - J0) - mean_shift, norm)
        bar.update(b - a)
        check_stop()
    return s, chunk, V


def _as_tensor(X, device, dtype):
    if isinstance(X, torch.Tensor):
        return X.detach().to(device=device, dtype=dtype)
    arr = np.asarray(X)
    if arr.dtype.kind not in "fiu":
        raise ValueError(f"X must be numeric, got dtype {arr.dtype}")
    return torch.as_tensor(arr, dtype=dtype, device=device)


def compute_jne(
    model: nn.Module,
    X,
    *,
    norm: str = "l1",
    device="auto",
    batch_size: int | None = None,
    dtype: torch.dtype | None = None,
    progress: bool = False,
    method: str = "auto",
    voxel_batch_size: int | None = None,
) -> JNEResult:
    """Exact JNE and JNE-SS of ``model`` at the stimuli ``X``.

    Parameters
    ----------
    model : torch.nn.Module
        Maps (n, D) to (n, V). It is copied, put in eval mode and moved to ``device``; the
        caller's module is left untouched.
    X : ndarray or Tensor (N, D)
        Stimulus features (N >= 1).
    norm : {"l1", "l2", "zl1", "zl2"}
        Norm of the Jacobian-row deviation; the ``z`` variants z-score each Jacobian row across
        the D inputs first (the paper's appendix).
    device : "auto", "cpu", "cuda" or torch.device
        ``"auto"`` uses CUDA when present.
    batch_size : int, optional
        Samples per chunk. ``None`` picks it from the device's free memory.
    dtype : torch.dtype, optional
        Compute dtype; defaults to the model's parameter dtype (float32 for most models).
    progress : bool
        Show a tqdm bar.
    method : {"auto", "readout", "forward"}
        ``auto`` uses the readout factorisation when the model ends in a linear readout.
    voxel_batch_size : int, optional
        Outputs per block in the readout product; ``None`` picks it from memory.

    Returns
    -------
    JNEResult
        ``jne`` (V,), ``ss`` (N, V), ``mean_deviation`` (V,), as numpy arrays in ``dtype``.
    """
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}: use one of {', '.join(NORMS)}")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: use one of {', '.join(METHODS)}")
    if batch_size is not None and int(batch_size) < 1:
        raise ValueError("batch_size must be a positive integer")
    dev = resolve_device(device)
    if dtype is None:
        param = next(iter(model.parameters()), None)
        dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    Xt = _as_tensor(X, dev, dtype)
    if Xt.ndim != 2 or Xt.shape[0] < 1 or Xt.shape[1] < 1:
        raise ValueError(f"X must be a non-empty (N, D) array, got shape {tuple(Xt.shape)}")
    if not torch.isfinite(Xt).all():
        raise ValueError("X contains non-finite values")

    t0 = time.perf_counter()
    work = copy.deepcopy(model).to(device=dev, dtype=dtype).eval()
    for p in work.parameters():
        p.requires_grad_(False)
    split = split_readout(work) if method in ("auto", "readout") else None
    if method == "readout" and split is None:
        raise ValueError("method='readout' needs a model ending in nn.Linear (a `readout` with `features`, "
                         "or nn.Sequential): use method='forward'")
    budget = memory_budget(dev)
    N = Xt.shape[0]
    bar = progress_bar(total=2 * N, desc=f"JNE ({norm})", enabled=progress, unit="stim")
    # exact fp32 matmuls: TF32 would change the numbers on Ampere and later
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with torch.no_grad():
            if split is not None:
                trunk, W = split
                s, chunk, vb = _jne_readout(trunk, W, Xt, norm, budget, batch_size, voxel_batch_size, bar,
                                            _structured_trunk_jacobian(work))
                used = "readout"
            else:
                s, chunk, vb = _jne_forward(work, Xt, norm, budget, batch_size, bar)
                used = "forward"
            red = torch.float64 if dev.type == "cpu" or dtype == torch.float64 else torch.float32
            s64 = s.to(red)
            mu = s64.mean(0)
            ss = (s64 - mu).square_()
            jne = ss.mean(0).sqrt_()
            out = (jne.to(dtype).cpu().numpy(), ss.to(dtype).cpu().numpy(), mu.to(dtype).cpu().numpy())
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32
        bar.close()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    return JNEResult(
        jne=out[0], ss=out[1], mean_deviation=out[2], norm=norm, method=used, device=str(dev),
        seconds=time.perf_counter() - t0, batch_size=int(chunk), voxel_batch_size=int(vb),
    )
