"""Exact, memory-bounded Jacobian Nonlinearity Estimator (JNE) and its sample-specific form.

For an encoder f: R^D -> R^V and stimuli x_1..x_N, with J_i = df(x_i)/dx (V x D):

    Jbar     = mean_i J_i
    s_iv     = || J_i[v, :] - Jbar[v, :] ||          (L1 over the D inputs by default)
    mu_v     = mean_i s_iv
    JNE_v    = sqrt(mean_i (s_iv - mu_v)^2)          (population std, divide by N)
    JNE-SS_iv = (s_iv - mu_v)^2

Norms (``norm=``):

``l1``   the paper's definition: sum_d |J_i[v, d] - Jbar[v, d]|.
``l2``   this project's variant, the Euclidean norm of the same deviation: it measures the same
         change of the local linear map but weighs a few large entries more than many small ones.
``zl1``, ``zl2``  this project's variants: each Jacobian row is first z-scored across the D
         inputs (minus its mean over d, divided by its population std over d; a constant row
         becomes 0), Jbar is the mean of the z-scored rows, then L1 / L2. They measure how the
         *pattern* of a voxel's input sensitivity changes across stimuli and are blind to its
         gain and offset: a Jacobian that only rescales across stimuli, J_i = c_i J_0 (c_i > 0),
         gets JNE 0 under ``zl1`` / ``zl2`` but not under ``l1`` / ``l2``.

Two exact ways to get there, neither of which ever holds the N x V x D tensor:

``readout``  for models whose forward is known to be y = W_out h(x) + b: a ResidualMLP, an
             nn.Sequential ending in nn.Linear or an nn.Linear (by class, with their own forward
             and no forward hooks; see :func:`split_readout`), and ``model(x)`` checked against
             ``readout(features(x))`` on probe stimuli. Then J_i = W_out T_i with T_i the trunk
             Jacobian (H x D), so J_i - Jbar = W_out (T_i - Tbar). The trunk Jacobians come
             from forward mode (H x D each, cached when they fit the budget), and the big product
             W_out (T_i - Tbar) is formed block by block (samples x voxels) and reduced at once.
``forward``  for any module: forward-mode Jacobians of the whole model (V x D per sample) under
             vmap, one sample chunk at a time, in two passes (mean, then deviations). Every model
             not proven to be a readout model (for instance one with ``features`` and ``readout``
             attributes whose forward applies a sigmoid after the readout) takes this path.

For an exact :class:`jnecore.encoders.ResidualMLP` with an elementwise activation the trunk
Jacobians use the closed form T = phi'(a_0) W_1, T <- T + phi'(a_k) (W_k T) per block (phi' from a
jvp of phi), the same numbers forward mode gives without pushing D identity tangents through the
input layer: about 1.4x less CPU time for the whole JNE at the benchmark's sizes.

Memory: every block is sized from :func:`jnecore.backend.memory_budget` (a quarter of free GPU
memory up to 2 GiB; on the CPU an eighth of available memory up to 256 MiB). The N x H x D trunk
Jacobians are kept between passes when they fit twice the budget on a GPU or 1 GiB on the CPU,
else recomputed; the (N, V) result is the only array that grows with V.

Means are taken around the first sample's Jacobian (Jbar = J_0 + mean_i (J_i - J_0)), so a model
whose Jacobian does not change gives deviations that are exactly zero, not float noise. Everything
runs under :func:`jnecore.backend.exact_fp32` (no TF32).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.func import jacfwd, jvp, vmap

from ..backend import exact_fp32, memory_budget, resolve_device
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


def _plain(module: nn.Module, cls: type) -> bool:
    """``module`` is a ``cls`` that runs ``cls.forward`` as written: not overridden, no forward hooks."""
    return (isinstance(module, cls) and type(module).forward is cls.forward and "forward" not in vars(module)
            and not module._forward_hooks and not module._forward_pre_hooks)


def _readout_parts(model: nn.Module):
    """``(trunk, readout)`` with ``model(x) == readout(trunk(x))`` by construction, else ``None``."""
    from ..encoders import ResidualMLP

    if _plain(model, ResidualMLP) and _plain(model.readout, nn.Linear):
        return model.features, model.readout  # forward is readout(features(x)); features may be overridden
    if _plain(model, nn.Sequential) and len(model) >= 1 and _plain(model[-1], nn.Linear):
        layers = list(model)
        return (nn.Sequential(*layers[:-1]) if len(layers) > 1 else nn.Identity()), layers[-1]
    if _plain(model, nn.Linear):
        return nn.Identity(), model
    return None


def split_readout(model: nn.Module):
    """Return ``(trunk, W_out)`` when ``model``'s forward is known to be ``W_out trunk(x) + b``, else ``None``.

    Recognised by class, not by attribute names: a :class:`jnecore.encoders.ResidualMLP` (or a
    subclass that keeps its ``forward``; ``features`` may be overridden), an ``nn.Sequential``
    ending in ``nn.Linear``, and a bare ``nn.Linear``, each with its class's own ``forward`` and
    no forward hooks on the model or the readout. Anything else, such as a module with
    ``features`` and ``readout`` attributes whose ``forward`` does more, gives ``None``.
    :func:`compute_jne` also checks ``model(x) == readout(trunk(x))`` on probe stimuli before
    using the split. The readout bias does not enter the Jacobian.
    """
    parts = _readout_parts(model)
    return None if parts is None else (parts[0], parts[1].weight)


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


def _spans(n, size):
    """``(start, stop)`` of consecutive blocks of ``size`` covering ``range(n)``."""
    return [(a, min(n, a + size)) for a in range(0, n, size)]


class _ReadoutProducts:
    """Blocks of W_out T_i (or W_out (T_i - Tbar)): one GEMM per (sample chunk, voxel block).

    ``shift`` is Tbar - T_0 once the first pass has set it; ``centred`` layouts subtract T_0 and it.
    """

    def __init__(self, W, T0):
        self.W = W.contiguous()
        self.T0 = T0
        self.shift = None

    def layout(self, Tc, centred=False):
        # (c, H, D) -> (H, c*D), the GEMM's right operand, built once per chunk (not per voxel
        # block); centred: T_i - Tbar = (T_i - T_0) - (Tbar - T_0), written straight into it
        c, H, D = Tc.shape
        R = torch.empty((H, c, D), dtype=Tc.dtype, device=Tc.device)
        if centred:
            torch.sub(Tc.permute(1, 0, 2), self.T0.unsqueeze(1), out=R)
            R.sub_(self.shift.unsqueeze(1))
        else:
            R.copy_(Tc.permute(1, 0, 2))
        return R.view(H, c * D)

    def block(self, R, v0, v1):
        # (vb, H) @ (H, c*D) as one GEMM -> (vb, c, D)
        D = self.T0.shape[1]
        return (self.W[v0:v1] @ R).view(v1 - v0, R.shape[1] // D, D)


def _readout_plain(T, P, N, V, chunk, vb, norm, bar):
    """s (N, V) for the L1 / L2 norms: Tbar is linear in T, so W_out (T_i - Tbar) directly."""
    acc = torch.zeros_like(P.T0)
    for a, b in _spans(N, chunk):  # pass 1: Tbar around T_0 (keeps a constant Jacobian's deviations 0)
        acc += (T.get(a, b, False) - P.T0).sum(0)
        bar.update(b - a)
        check_stop()
    P.shift = acc / N
    s = torch.empty((N, V), dtype=P.T0.dtype, device=P.T0.device)
    for a, b in _spans(N, chunk):
        delta = P.layout(T.get(a, b, True), centred=True)  # T_i - Tbar, (H, c*D)
        for v0, v1 in _spans(V, vb):
            s[a:b, v0:v1] = _row_norm(P.block(delta, v0, v1), norm).T
        bar.update(b - a)
        check_stop()
    return s


def _readout_zscored(T, P, N, V, chunk, vb, norm, bar):
    """s (N, V) for the z-scored norms: Zbar is not linear in T, so it is accumulated block by block."""
    D = P.T0.shape[1]
    like = dict(dtype=P.T0.dtype, device=P.T0.device)
    z0 = torch.empty((V, D), **like)
    R0 = P.layout(P.T0.unsqueeze(0))
    for v0, v1 in _spans(V, vb):
        z0[v0:v1] = _zscore_rows(P.block(R0, v0, v1)[:, 0, :])
    zsum = torch.zeros((V, D), **like)
    for a, b in _spans(N, chunk):  # pass 1: computes (and caches) the trunk Jacobians
        Rc = P.layout(T.get(a, b, False))
        for v0, v1 in _spans(V, vb):
            zsum[v0:v1] += (_zscore_rows(P.block(Rc, v0, v1)) - z0[v0:v1, None, :]).sum(1)
        bar.update(b - a)
        check_stop()
    zshift = zsum / N  # Zbar - Z0
    s = torch.empty((N, V), **like)
    for a, b in _spans(N, chunk):
        Rc = P.layout(T.get(a, b, True))
        for v0, v1 in _spans(V, vb):
            dev = _zscore_rows(P.block(Rc, v0, v1)) - z0[v0:v1, None, :] - zshift[v0:v1, None, :]
            s[a:b, v0:v1] = _row_norm(dev, norm).T
        bar.update(b - a)
        check_stop()
    return s


def _jne_readout(trunk, W, X, norm, budget, batch_size, voxel_batch_size, bar, jac=None):
    N, D = X.shape
    V, H = W.shape
    isz = X.element_size()
    # forward mode through the trunk holds about D tangents of every activation per sample
    chunk = _plan(N, 6 * H * D * isz, budget, batch_size)
    cache_bytes = 2 * budget if X.device.type == "cuda" else max(budget, 1 << 30)
    T = _TrunkJacobians(trunk, X, H, cache_bytes, jac)
    vb = int(min(V, voxel_batch_size or max(1, min(V, budget // max(2 * chunk * D * isz, 1)))))
    P = _ReadoutProducts(W, T.get(0, 1, False)[0].clone())
    run = _readout_zscored if norm.startswith("z") else _readout_plain
    return run(T, P, N, V, chunk, vb, norm, bar), chunk, vb


def _jne_forward(model, X, norm, budget, batch_size, bar):
    N, D = X.shape
    jac = vmap(jacfwd(_single(model)))
    J0 = jac(X[:1])[0]  # (V, D)
    V = J0.shape[0]
    chunk = _plan(N, 4 * V * D * X.element_size(), budget, batch_size)
    prep = _zscore_rows if norm.startswith("z") else (lambda J: J)
    J0 = prep(J0)
    acc = torch.zeros_like(J0)
    for a, b in _spans(N, chunk):
        acc += (prep(jac(X[a:b])) - J0).sum(0)
        bar.update(b - a)
        check_stop()
    mean_shift = acc / N
    s = torch.empty((N, V), dtype=X.dtype, device=X.device)
    for a, b in _spans(N, chunk):
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


def _check_options(norm, method, batch_size):
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}: use one of {', '.join(NORMS)}")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: use one of {', '.join(METHODS)}")
    if batch_size is not None and int(batch_size) < 1:
        raise ValueError("batch_size must be a positive integer")


def _stimuli(X, dev, dtype):
    Xt = _as_tensor(X, dev, dtype)
    if Xt.ndim != 2 or Xt.shape[0] < 1 or Xt.shape[1] < 1:
        raise ValueError(f"X must be a non-empty (N, D) array, got shape {tuple(Xt.shape)}")
    if not torch.isfinite(Xt).all():
        raise ValueError("X contains non-finite values")
    return Xt


def _working_copy(model, dev, dtype):
    """A frozen eval-mode copy on ``dev`` in ``dtype``; the caller's module is left untouched."""
    work = copy.deepcopy(model).to(device=dev, dtype=dtype).eval()
    for p in work.parameters():
        p.requires_grad_(False)
    return work


def _probe(model, X):
    """``(x, model(x))`` for two stimuli, after checking that one and two stimuli give (1, V) and (2, V).

    The Jacobian passes apply the model to one stimulus at a time, so both batch sizes must work.
    """
    N, D = X.shape
    x2 = X[:2] if N > 1 else X.repeat(2, 1)
    outs = [model(x2[:1]), model(x2)]
    ok = all(isinstance(y, torch.Tensor) and y.ndim == 2 and y.shape[0] == n for y, n in zip(outs, (1, 2)))
    if not (ok and outs[0].shape[1] == outs[1].shape[1] >= 1):
        seen = [tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__ for y in outs]
        raise ValueError(f"model must map (n, D) to (n, V): inputs of shape (1, {D}) and (2, {D}) gave "
                         f"outputs of shape {seen[0]} and {seen[1]}, expected (1, V) and (2, V) with one V >= 1")
    return x2, outs[1]


def _proven_readout(model, x, y):
    """``(trunk, W_out)`` when ``model`` is a known readout model and ``readout(trunk(x))`` equals ``y``."""
    parts = _readout_parts(model)
    if parts is None or not y.is_floating_point():
        return None
    trunk, readout = parts
    ref = readout(trunk(x))
    tol = 16 * torch.finfo(y.dtype).eps
    scale = float(y.abs().max()) if y.numel() else 0.0
    if ref.shape != y.shape or not torch.allclose(ref, y, rtol=tol, atol=tol * max(scale, 1e-30)):
        return None
    return trunk, readout.weight


def _deviations(work, Xt, norm, method, budget, batch_size, voxel_batch_size, bar):
    """s (N, V), the chunk sizes and the path used; checks the model's output shape first."""
    x, y = _probe(work, Xt)
    split = _proven_readout(work, x, y) if method != "forward" else None
    if method == "readout" and split is None:
        raise ValueError(
            "method='readout' needs a model whose output is known to be readout(features(x)): a "
            "jnecore.encoders.ResidualMLP, an nn.Sequential ending in nn.Linear or an nn.Linear, with "
            "its class's forward, no forward hooks, and model(x) equal to readout(features(x)) on probe "
            "stimuli; use method='forward' (exact for any model)")
    if split is None:
        return (*_jne_forward(work, Xt, norm, budget, batch_size, bar), "forward")
    trunk, W = split
    s, chunk, vb = _jne_readout(trunk, W, Xt, norm, budget, batch_size, voxel_batch_size, bar,
                                _structured_trunk_jacobian(work))
    return s, chunk, vb, "readout"


def _reduce(s, dev, dtype):
    """(jne (V,), ss (N, V), mu (V,)) as numpy arrays in ``dtype``; float64 reductions on the CPU."""
    red = torch.float64 if dev.type == "cpu" or dtype == torch.float64 else torch.float32
    s64 = s.to(red)
    mu = s64.mean(0)
    ss = (s64 - mu).square_()
    jne = ss.mean(0).sqrt_()
    return tuple(a.to(dtype).cpu().numpy() for a in (jne, ss, mu))


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
        Maps (n, D) to (n, V) for every n (checked on one and on two stimuli; a model that
        returns (n,) or a 3-D array raises ``ValueError``). It is copied, put in eval mode and
        moved to ``device``; the caller's module is left untouched.
    X : ndarray or Tensor (N, D)
        Stimulus features (N >= 1).
    norm : {"l1", "l2", "zl1", "zl2"}
        Norm of the Jacobian-row deviation over the D inputs. ``"l1"`` is the paper's definition.
        ``"l2"`` (Euclidean) is this project's variant; it weighs a few large entries more. The
        ``z`` variants, also this project's, z-score each Jacobian row across the D inputs before
        the L1 / L2 norm: they measure changes in the *pattern* of a voxel's input sensitivity and
        are blind to gain: a Jacobian that only rescales across stimuli, J_i = c_i J_0, gets
        JNE 0 under ``zl1`` / ``zl2`` but not under ``l1`` / ``l2``.
    device : "auto", "cpu", "cuda" or torch.device
        ``"auto"`` uses CUDA when present.
    batch_size : int, optional
        Samples per chunk. ``None`` picks it from the device's free memory.
    dtype : torch.dtype, optional
        Compute dtype; defaults to the model's parameter dtype (float32 for most models).
    progress : bool
        Show a tqdm bar.
    method : {"auto", "readout", "forward"}
        ``auto`` uses the readout factorisation where it is known to equal the model (see
        :func:`split_readout`, plus a check of ``model(x) == readout(features(x))`` on probe
        stimuli) and forward mode through the whole model otherwise. ``"readout"`` raises
        ``ValueError`` for a model where that is not established.
    voxel_batch_size : int, optional
        Outputs per block in the readout product; ``None`` picks it from memory.

    Returns
    -------
    JNEResult
        ``jne`` (V,), ``ss`` (N, V), ``mean_deviation`` (V,), as numpy arrays in ``dtype``.

    Notes
    -----
    Runs under :func:`jnecore.backend.exact_fp32` (no TF32 in matmuls or cuDNN).
    """
    _check_options(norm, method, batch_size)
    dev = resolve_device(device)
    if dtype is None:
        param = next(iter(model.parameters()), None)
        dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    Xt = _stimuli(X, dev, dtype)
    t0 = time.perf_counter()
    work = _working_copy(model, dev, dtype)
    bar = progress_bar(total=2 * Xt.shape[0], desc=f"JNE ({norm})", enabled=progress, unit="stim")
    try:
        with exact_fp32(), torch.no_grad():
            s, chunk, vb, used = _deviations(work, Xt, norm, method, memory_budget(dev), batch_size,
                                             voxel_batch_size, bar)
            jne, ss, mu = _reduce(s, dev, dtype)
    finally:
        bar.close()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    return JNEResult(
        jne=jne, ss=ss, mean_deviation=mu, norm=norm, method=used, device=str(dev),
        seconds=time.perf_counter() - t0, batch_size=int(chunk), voxel_batch_size=int(vb),
    )
