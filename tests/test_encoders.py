"""The paper's residual MLP encoder, its fitting with early stopping, and safetensors storage."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from jnecore.encoders import ResidualMLP, fit_encoder, load_encoder, save_encoder

D, V, H = 7, 5, 16


pytestmark = pytest.mark.usefixtures("one_thread")


def _x(n=11, d=D, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=dtype)


# ---------------------------------------------------------------- ResidualMLP structure


def test_layer_order_and_shapes():
    m = ResidualMLP(D, V, hidden=H)
    linears = [(name, mod) for name, mod in m.named_modules() if isinstance(mod, nn.Linear)]
    assert [n for n, _ in linears] == ["input", "blocks.0", "blocks.1", "readout"]
    shapes = [tuple(mod.weight.shape) for _, mod in linears]
    assert shapes == [(H, D), (H, H), (H, H), (V, H)]
    assert isinstance(m.blocks, nn.ModuleList)
    assert isinstance(m.phi, nn.ReLU)  # the paper's default
    assert m(_x()).shape == (11, V)
    assert m.features(_x()).shape == (11, H)


def test_no_biases_by_default_and_biases_on_request():
    m = ResidualMLP(D, V, hidden=H)
    assert all(mod.bias is None for mod in m.modules() if isinstance(mod, nn.Linear))
    assert sorted(k for k in m.state_dict()) == ["blocks.0.weight", "blocks.1.weight", "input.weight",
                                                 "readout.weight"]
    mb = ResidualMLP(D, V, hidden=H, bias=True)
    assert all(mod.bias is not None for mod in mb.modules() if isinstance(mod, nn.Linear))


@pytest.mark.parametrize("n_blocks", [0, 1, 3])
def test_n_blocks(n_blocks):
    m = ResidualMLP(D, V, hidden=H, n_blocks=n_blocks)
    assert len(m.blocks) == n_blocks
    assert m(_x()).shape == (11, V)


def test_activation_none_is_linear():
    torch.manual_seed(0)
    m = ResidualMLP(D, V, hidden=H, activation=None).double()
    x, y = _x(seed=1, dtype=torch.float64), _x(seed=2, dtype=torch.float64)
    a, b = 1.7, -0.6
    with torch.no_grad():
        torch.testing.assert_close(m(a * x + b * y), a * m(x) + b * m(y), rtol=1e-12, atol=1e-12)
        # and the relu network is not linear (the check above can fail)
        r = ResidualMLP(D, V, hidden=H).double()
        assert not torch.allclose(r(a * x + b * y), a * r(x) + b * r(y), rtol=1e-3, atol=1e-3)


def _eq7_by_hand(m: ResidualMLP, x: torch.Tensor, phi) -> torch.Tensor:
    """Paper eq. 7: h0 = phi(W1 x); h1 = phi(W2 h0) + h0; h2 = phi(W3 h1) + h1; y = W4 h2."""
    def lin(layer, h):
        out = h @ layer.weight.T
        return out + layer.bias if layer.bias is not None else out

    W1, (W2, W3), W4 = m.input, m.blocks, m.readout
    h0 = phi(lin(W1, x))
    h1 = phi(lin(W2, h0)) + h0
    h2 = phi(lin(W3, h1)) + h1
    return lin(W4, h2)


@pytest.mark.parametrize("activation,phi", [
    ("relu", lambda t: torch.clamp(t, min=0)),
    ("tanh", torch.tanh),
    ("gelu", lambda t: 0.5 * t * (1 + torch.erf(t / np.sqrt(2.0)))),
    ("silu", lambda t: t / (1 + torch.exp(-t))),
    (None, lambda t: t),
])
@pytest.mark.parametrize("bias", [False, True])
def test_forward_is_eq7(activation, phi, bias):
    torch.manual_seed(0)
    m = ResidualMLP(D, V, hidden=H, activation=activation, bias=bias).double()
    x = _x(dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(m(x), _eq7_by_hand(m, x, phi), rtol=1e-12, atol=1e-12)


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="activation"):
        ResidualMLP(D, V, activation="softplus")
    with pytest.raises(ValueError):
        ResidualMLP(0, V)
    with pytest.raises(ValueError):
        ResidualMLP(D, V, n_blocks=-1)


# ---------------------------------------------------------------- fitting


def _planted(n_train=300, n_val=100, n_test=200, noise=0.05, seed=0, d=D, v=V):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((d, v))
    def draw(n):
        X = rng.standard_normal((n, d)).astype(np.float32)
        return X, (X @ A + noise * rng.standard_normal((n, v))).astype(np.float32)
    return A, draw(n_train), draw(n_val), draw(n_test)


def _r2(y, yhat):
    return 1 - ((y - yhat) ** 2).mean(0) / y.var(0)


def test_fit_recovers_planted_linear_map_with_nn_linear():
    A, (Xtr, Ytr), (Xv, Yv), (Xte, Yte) = _planted()
    torch.manual_seed(0)
    m = nn.Linear(D, V)
    hist = fit_encoder(m, Xtr, Ytr, Xv, Yv, lr=0.05, max_epochs=400, device="cpu")
    with torch.no_grad():
        pred = m(torch.from_numpy(Xte)).numpy()
    assert np.all(_r2(Yte, pred) > 0.99)
    np.testing.assert_allclose(m.weight.detach().numpy(), A.T, atol=0.05)
    assert hist.epochs_run >= 1 and len(hist.val_loss) == hist.epochs_run == len(hist.train_loss)
    assert hist.val_loss[0] > 10 * hist.best_val_loss  # it actually learned


def test_fit_recovers_planted_linear_map_with_linear_residual_mlp():
    A, (Xtr, Ytr), (Xv, Yv), (Xte, Yte) = _planted()
    torch.manual_seed(0)
    m = ResidualMLP(D, V, hidden=32, activation=None)
    fit_encoder(m, Xtr, Ytr, Xv, Yv, lr=0.01, max_epochs=400, device="cpu")
    assert not m.training
    with torch.no_grad():
        pred = m(torch.from_numpy(Xte)).numpy()
        # the end-to-end linear map of the network is the planted one
        W = m(torch.eye(D)).numpy()  # rows: images of the basis vectors (no biases)
    assert np.all(_r2(Yte, pred) > 0.95)
    np.testing.assert_allclose(W, A, atol=0.1)


def test_early_stopping_returns_best_not_last_weights():
    # Few noisy training rows and many features: the fit first approaches the clean map, then
    # over-fits the noise, so the validation loss (clean map) rises after some epoch.
    rng = np.random.default_rng(0)
    d, v = 20, 3
    A = rng.standard_normal((d, v))
    Xtr = rng.standard_normal((6, d))
    Ytr = Xtr @ A + 2.0 * rng.standard_normal((6, v))
    Xv = rng.standard_normal((200, d))
    Yv = Xv @ A
    torch.manual_seed(0)
    m = nn.Linear(d, v)
    hist = fit_encoder(m, Xtr, Ytr, Xv, Yv, lr=0.05, max_epochs=500, patience=8, device="cpu")
    assert hist.stopped_early
    assert hist.best_epoch < hist.epochs_run - 1
    assert hist.epochs_run == hist.best_epoch + 1 + 8
    assert hist.best_val_loss == min(hist.val_loss) == hist.val_loss[hist.best_epoch]
    with torch.no_grad():
        Xvt = torch.as_tensor(Xv, dtype=torch.float32)
        Yvt = torch.as_tensor(Yv, dtype=torch.float32)
        final = torch.mean((m(Xvt) - Yvt) ** 2).item()
    assert final == pytest.approx(hist.val_loss[hist.best_epoch], rel=1e-6)
    assert final < hist.val_loss[-1]


def test_fit_is_deterministic_for_a_seed_on_cpu():
    _, (Xtr, Ytr), (Xv, Yv), _ = _planted(n_train=64, n_val=32, noise=0.3)
    torch.manual_seed(5)
    init = ResidualMLP(D, V, hidden=H)
    runs = []
    for seed in (0, 0, 1):
        m = copy.deepcopy(init)
        # mini-batches so the seed drives the batch order
        fit_encoder(m, Xtr, Ytr, Xv, Yv, lr=0.01, max_epochs=15, batch_size=16, seed=seed, device="cpu")
        runs.append(m.state_dict())
    for k in runs[0]:
        assert torch.equal(runs[0][k], runs[1][k]), k
    assert any(not torch.equal(runs[0][k], runs[2][k]) for k in runs[0])


def test_fit_rejects_mismatched_rows():
    m = nn.Linear(D, V)
    X = np.zeros((10, D), np.float32)
    with pytest.raises(ValueError):
        fit_encoder(m, X, np.zeros((9, V)), X, np.zeros((10, V)), device="cpu", max_epochs=1)


# ---------------------------------------------------------------- save / load


@pytest.mark.parametrize("kwargs", [dict(), dict(activation="gelu", bias=True, n_blocks=1), dict(activation=None)])
def test_save_load_round_trip(tmp_path, kwargs):
    torch.manual_seed(0)
    m = ResidualMLP(D, V, hidden=H, **kwargs)
    path = save_encoder(m, tmp_path / "sub" / "enc.safetensors")
    assert path.exists()
    assert not list(path.parent.glob(".tmp-*"))  # atomic write leaves no temporary file
    back = load_encoder(path)
    assert isinstance(back, ResidualMLP)
    assert back.config == m.config
    assert not back.training
    x = _x()
    with torch.no_grad():
        assert torch.equal(back(x), m.eval()(x))
    for k, v in m.state_dict().items():
        assert torch.equal(back.state_dict()[k], v)


def test_load_corrupt_file_raises_value_error_naming_path(tmp_path):
    bad = tmp_path / "garbage.safetensors"
    bad.write_bytes(b"\x00\x13this is not a safetensors file" * 3)
    with pytest.raises(ValueError, match="garbage.safetensors"):
        load_encoder(bad)

    m = ResidualMLP(D, V, hidden=H)
    good = save_encoder(m, tmp_path / "good.safetensors")
    trunc = tmp_path / "truncated.safetensors"
    trunc.write_bytes(good.read_bytes()[:-40])
    with pytest.raises(ValueError, match="truncated.safetensors"):
        load_encoder(trunc)

    with pytest.raises(ValueError, match="missing.safetensors"):
        load_encoder(tmp_path / "missing.safetensors")


def test_load_rejects_foreign_or_mismatched_files(tmp_path):
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2, 2)}, str(foreign))
    with pytest.raises(ValueError, match="foreign.safetensors"):
        load_encoder(foreign)

    m = ResidualMLP(D, V, hidden=H)
    wrong = tmp_path / "wrong.safetensors"
    cfg = dict(m.config, hidden=H + 1)
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(wrong),
              metadata={"format": "jnecore.ResidualMLP", "config": json.dumps(cfg)})
    with pytest.raises(ValueError, match="wrong.safetensors"):
        load_encoder(wrong)


def test_chunked_full_batch_equals_one_pass(monkeypatch):
    """A full batch processed in loss chunks of 3 rows takes the same optimiser steps as one pass:
    the chunks' gradients add up to the batch's (float32 summation order aside)."""
    from jnecore.encoders import _fit

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5)).astype(np.float32)
    Y = np.abs(X @ rng.normal(size=(5, 7))).astype(np.float32)
    fits = []
    for budget in (None, 3 * 7 * 4):
        if budget:
            monkeypatch.setitem(_fit._CHUNK_BYTES, "cpu", budget)
        assert _fit.chunk_rows(7, "cpu", 1) == (3 if budget else _fit.chunk_rows(7, "cpu", 1))
        torch.manual_seed(0)
        m = ResidualMLP(5, 7, hidden=8)
        h = fit_encoder(m, X[:30], Y[:30], X[30:], Y[30:], max_epochs=5, patience=5, device="cpu")
        fits.append((m, h))
    (a, ha), (b, hb) = fits
    for pa, pb in zip(a.parameters(), b.parameters()):
        np.testing.assert_allclose(pa.detach().numpy(), pb.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ha.train_loss, hb.train_loss, rtol=1e-5)
    np.testing.assert_allclose(ha.val_loss, hb.val_loss, rtol=1e-5)


@pytest.mark.parametrize("bias", [False, True])
def test_in_place_readout_gradient_equals_autograd(bias):
    """The whole-brain fast path (reused output buffer, readout gradient by addmm_) gives the
    loss and every parameter's gradient that plain autograd gives on the whole batch."""
    from jnecore.encoders._fit import _ChunkedLoss, _linear_readout

    rng = np.random.default_rng(1)
    X = torch.as_tensor(rng.normal(size=(11, 4)).astype(np.float32))
    Y = torch.as_tensor(rng.normal(size=(11, 9)).astype(np.float32))
    torch.manual_seed(0)
    m = ResidualMLP(4, 9, hidden=6, bias=bias)
    ref = copy.deepcopy(m)
    fast = _ChunkedLoss(m, 4, 9, "cpu")  # chunks of 4, 4 and 3 rows
    assert _linear_readout(m) is m.readout and fast.buf is not None
    sse = fast(X, Y, backward=True, scale=0.5)
    want = ((ref(X) - Y) ** 2).sum()
    (0.5 * want).backward()
    assert sse == pytest.approx(float(want.detach()), rel=1e-5)
    for (name, p), q in zip(m.named_parameters(), ref.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-4, atol=1e-6, err_msg=name)
    # a hooked model or another class takes the generic autograd path
    m.register_forward_hook(lambda *a: None)
    assert _linear_readout(m) is None and _linear_readout(nn.Linear(4, 9)) is None
