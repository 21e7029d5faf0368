"""compute_jne against an independent, naive reference built from the paper's definitions.

The reference below uses only torch autograd (one reverse pass per output) and numpy in float64;
it deliberately imports nothing from ``jnecore.jacobian``.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from jnecore import compute_jne
from jnecore.encoders import ResidualMLP


NORMS = ("l1", "l2", "zl1", "zl2")


pytestmark = pytest.mark.usefixtures("one_thread")
N, D, H, V = 13, 6, 10, 9


# ---------------------------------------------------------------- independent reference


def naive_jacobian(model: nn.Module, X) -> np.ndarray:
    """Full (N, V, D) Jacobian: one autograd backward of y[:, v].sum() w.r.t. X per output v."""
    model = copy.deepcopy(model).double().eval()
    Xt = torch.as_tensor(np.asarray(X, dtype=np.float64)).clone().requires_grad_(True)
    y = model(Xt)
    n, v_out = y.shape
    J = np.empty((n, v_out, Xt.shape[1]))
    for v in range(v_out):
        (g,) = torch.autograd.grad(y[:, v].sum(), Xt, retain_graph=True)
        J[:, v, :] = g.detach().numpy()
    return J


def reference_jne(J: np.ndarray, norm: str):
    """(jne (V,), ss (N, V), mu (V,)) from the definitions, float64."""
    J = np.asarray(J, dtype=np.float64)
    if norm.startswith("z"):
        m = J.mean(-1, keepdims=True)
        sd = J.std(-1, keepdims=True)  # population std across the D inputs
        J = (J - m) / np.where(sd > 0, sd, 1.0)
    dev = J - J.mean(0, keepdims=True)
    if norm.endswith("l1"):
        s = np.abs(dev).sum(-1)
    else:
        s = np.sqrt((dev ** 2).sum(-1))
    mu = s.mean(0)
    ss = (s - mu) ** 2
    return np.sqrt(ss.mean(0)), ss, mu


def assert_matches(res, ref, rtol):
    jne, ss, mu = ref
    scale_s = max(mu.max(), 1e-30)
    np.testing.assert_allclose(res.mean_deviation, mu, rtol=rtol, atol=rtol * scale_s)
    np.testing.assert_allclose(res.jne, jne, rtol=rtol, atol=rtol * scale_s)
    np.testing.assert_allclose(res.ss, ss, rtol=4 * rtol, atol=rtol * scale_s ** 2)


# ---------------------------------------------------------------- models


class TwoPath(nn.Module):
    """No ``readout``/``features`` and not a Sequential: only the forward path applies."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(D, H)
        self.b = nn.Linear(D, V)
        self.c = nn.Linear(H, V)

    def forward(self, x):
        return torch.tanh(self.b(x)) * self.c(nn.functional.silu(self.a(x)))


def make_model(kind: str) -> nn.Module:
    torch.manual_seed(1)
    if kind == "seq_gelu_tanh":  # biases, smooth activations, linear readout
        m = nn.Sequential(nn.Linear(D, H), nn.GELU(), nn.Linear(H, H), nn.Tanh(), nn.Linear(H, V))
    elif kind == "seq_nonlinear_readout":  # ends in Tanh: forward path only
        m = nn.Sequential(nn.Linear(D, H), nn.SiLU(), nn.Linear(H, V), nn.Tanh())
    elif kind == "resmlp_relu":
        m = ResidualMLP(D, V, hidden=H)
    elif kind == "resmlp_gelu_bias":
        m = ResidualMLP(D, V, hidden=H, activation="gelu", bias=True)
    elif kind == "twopath":
        m = TwoPath()
    else:  # pragma: no cover
        raise KeyError(kind)
    # make the nonlinearity matter: larger weights than the default init
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(2.0)
    return m


def make_X(n=N, d=D, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


EXPECTED_METHOD = {
    "seq_gelu_tanh": "readout",
    "seq_nonlinear_readout": "forward",
    "resmlp_relu": "readout",
    "resmlp_gelu_bias": "readout",
    "twopath": "forward",
}


@pytest.fixture(scope="module")
def references():
    """Naive Jacobians for every test model (computed once per module)."""
    X = make_X()
    out = {}
    for kind in EXPECTED_METHOD:
        m = make_model(kind)
        out[kind] = (m, X, naive_jacobian(m, X))
    return out


# ---------------------------------------------------------------- the reference itself


def test_reference_sees_nonlinearity_and_linearity():
    """Sanity of the reference: a nonlinear model has JNE > 0, a linear one JNE == 0."""
    X = make_X()
    J = naive_jacobian(make_model("seq_gelu_tanh"), X)
    assert J.shape == (N, V, D)
    assert reference_jne(J, "l1")[0].min() > 1e-3
    lin = nn.Linear(D, V)
    Jl = naive_jacobian(lin, X)
    np.testing.assert_allclose(Jl, np.broadcast_to(lin.weight.detach().double().numpy(), Jl.shape), rtol=1e-12)
    assert np.all(reference_jne(Jl, "l1")[0] < 1e-12)


# ---------------------------------------------------------------- against the reference


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("kind", list(EXPECTED_METHOD))
def test_matches_naive_reference_float32(references, kind, norm):
    model, X, J = references[kind]
    res = compute_jne(model, X, norm=norm, device="cpu")
    assert res.method == EXPECTED_METHOD[kind]
    assert res.jne.dtype == np.float32
    assert_matches(res, reference_jne(J, norm), rtol=1e-5)  # observed errors ~3e-7


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("kind", ["seq_gelu_tanh", "resmlp_gelu_bias", "seq_nonlinear_readout", "twopath"])
def test_float64_matches_reference_tightly(references, kind, norm):
    model, X, J = references[kind]
    res = compute_jne(model, X, norm=norm, device="cpu", dtype=torch.float64)
    assert res.jne.dtype == np.float64
    jne, ss, mu = reference_jne(J, norm)
    np.testing.assert_allclose(res.mean_deviation, mu, rtol=1e-12)
    np.testing.assert_allclose(res.jne, jne, rtol=1e-10, atol=1e-14 * mu.max())
    np.testing.assert_allclose(res.ss, ss, rtol=1e-10, atol=1e-14 * mu.max() ** 2)


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("kind", ["seq_gelu_tanh", "resmlp_relu", "resmlp_gelu_bias"])
def test_readout_path_equals_forward_path(references, kind, norm):
    model, X, _ = references[kind]
    r = compute_jne(model, X, norm=norm, device="cpu", method="readout", dtype=torch.float64)
    f = compute_jne(model, X, norm=norm, device="cpu", method="forward", dtype=torch.float64)
    assert (r.method, f.method) == ("readout", "forward")
    np.testing.assert_allclose(r.jne, f.jne, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(r.ss, f.ss, rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(r.mean_deviation, f.mean_deviation, rtol=1e-10)


@pytest.mark.parametrize("n_blocks", [0, 1, 3])
@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "gelu", "silu", "tanh"])
def test_residual_mlp_every_activation_and_depth(activation, n_blocks):
    """ResidualMLP (its readout fast path) against the naive reference, float64."""
    torch.manual_seed(2)
    m = ResidualMLP(D, V, hidden=H, n_blocks=n_blocks, activation=activation, bias=n_blocks == 1)
    X = make_X(seed=4)
    ref = reference_jne(naive_jacobian(m, X), "l1")
    res = compute_jne(m, X, device="cpu", dtype=torch.float64, batch_size=5)
    assert res.method == "readout"
    np.testing.assert_allclose(res.jne, ref[0], rtol=1e-10, atol=1e-14 * ref[2].max())
    np.testing.assert_allclose(res.mean_deviation, ref[2], rtol=1e-12)


class _TanhFeatures(ResidualMLP):
    """A subclass whose trunk differs from ResidualMLP's: no shortcut may assume eq. 7."""

    def features(self, x):
        return torch.tanh(super().features(x))


@pytest.mark.parametrize("norm", ["l1", "zl2"])
def test_residual_mlp_variants_with_other_trunks(norm):
    torch.manual_seed(2)
    sub = _TanhFeatures(D, V, hidden=H, activation="gelu")
    swapped = ResidualMLP(D, V, hidden=H, activation="gelu")
    swapped.phi = nn.Softmax(dim=-1)  # not elementwise
    X = make_X(seed=5)
    for m in (sub, swapped):
        ref = reference_jne(naive_jacobian(m, X), norm)
        res = compute_jne(m, X, norm=norm, device="cpu", dtype=torch.float64)
        assert res.method == "readout"
        np.testing.assert_allclose(res.jne, ref[0], rtol=1e-10, atol=1e-14 * ref[2].max())


def test_numpy_and_tensor_inputs_agree(references):
    model, X, _ = references["resmlp_gelu_bias"]
    a = compute_jne(model, X, device="cpu")
    b = compute_jne(model, torch.from_numpy(X), device="cpu")
    np.testing.assert_array_equal(a.jne, b.jne)


# ---------------------------------------------------------------- linear models


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("kind", ["resmlp_linear", "linear", "seq_linears"])
def test_linear_model_has_zero_jne(kind, norm):
    torch.manual_seed(3)
    if kind == "resmlp_linear":
        m = ResidualMLP(D, V, hidden=H, activation=None)
    elif kind == "linear":
        m = nn.Linear(D, V)
    else:
        m = nn.Sequential(nn.Linear(D, H), nn.Linear(H, H), nn.Linear(H, V))
    X = make_X(n=40)
    res = compute_jne(m, X, norm=norm, device="cpu")
    J = naive_jacobian(m, X)
    if norm.startswith("z"):
        J = (J - J.mean(-1, keepdims=True)) / J.std(-1, keepdims=True)
    row = np.abs(J).sum(-1).mean() if norm.endswith("l1") else np.sqrt((J ** 2).sum(-1)).mean()
    assert res.jne.shape == (V,)
    assert np.all(res.jne <= 1e-6 * row), (res.jne.max(), row)
    assert np.all(res.ss <= (1e-6 * row) ** 2)


def test_forward_path_linear_model_has_zero_jne():
    torch.manual_seed(3)
    m = nn.Sequential(nn.Linear(D, H), nn.Linear(H, V))
    X = make_X(n=30)
    res = compute_jne(m, X, device="cpu", method="forward")
    row = np.abs(naive_jacobian(m, X)).sum(-1).mean()
    assert res.method == "forward"
    assert np.all(res.jne <= 1e-6 * row)


# ---------------------------------------------------------------- chunking


@pytest.mark.parametrize("norm", ["l1", "zl2"])
def test_chunking_invariance_readout(references, norm):
    model, X, _ = references["resmlp_gelu_bias"]
    base = compute_jne(model, X, norm=norm, device="cpu", batch_size=N)
    for bs in (1, 7, N):
        for vb in (1, 5, None):
            r = compute_jne(model, X, norm=norm, device="cpu", batch_size=bs, voxel_batch_size=vb)
            assert r.method == "readout"
            assert r.batch_size == bs
            if vb is not None:
                assert r.voxel_batch_size == vb
            np.testing.assert_allclose(r.jne, base.jne, rtol=1e-5, atol=1e-6 * base.mean_deviation.max())
            np.testing.assert_allclose(r.ss, base.ss, rtol=1e-4, atol=1e-6 * base.mean_deviation.max() ** 2)
            np.testing.assert_allclose(r.mean_deviation, base.mean_deviation, rtol=1e-5)


@pytest.mark.parametrize("norm", ["l1", "zl1"])
def test_chunking_invariance_forward(references, norm):
    model, X, _ = references["seq_nonlinear_readout"]
    base = compute_jne(model, X, norm=norm, device="cpu", batch_size=N)
    for bs in (1, 7):
        r = compute_jne(model, X, norm=norm, device="cpu", batch_size=bs)
        assert r.method == "forward"
        np.testing.assert_allclose(r.jne, base.jne, rtol=1e-5, atol=1e-6 * base.mean_deviation.max())
        np.testing.assert_allclose(r.mean_deviation, base.mean_deviation, rtol=1e-5)


def test_chunking_exact_in_float64(references):
    model, X, J = references["seq_gelu_tanh"]
    ref = reference_jne(J, "l1")
    for bs, vb in ((1, 1), (4, 3), (N, None)):
        r = compute_jne(model, X, device="cpu", dtype=torch.float64, batch_size=bs, voxel_batch_size=vb)
        np.testing.assert_allclose(r.jne, ref[0], rtol=1e-9)


# ---------------------------------------------------------------- JNE-SS


def test_ss_shape_and_mean_equals_jne_squared(references):
    model, X, _ = references["resmlp_relu"]
    for method in ("readout", "forward"):
        res = compute_jne(model, X, device="cpu", method=method)
        assert res.ss.shape == (N, V)
        assert res.mean_deviation.shape == (V,)
        assert np.all(res.ss >= 0)
        np.testing.assert_allclose(res.ss.mean(0), res.jne ** 2, rtol=1e-5)


def test_single_sample_gives_zero():
    model = make_model("seq_gelu_tanh")
    res = compute_jne(model, make_X(n=1), device="cpu")
    assert res.ss.shape == (1, V)
    assert np.all(res.jne == 0) and np.all(res.mean_deviation == 0)


# ---------------------------------------------------------------- caller's model untouched


@pytest.mark.parametrize("method", ["auto", "forward"])
def test_callers_model_is_not_modified(method):
    model = ResidualMLP(D, V, hidden=H, activation="gelu", bias=True)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    compute_jne(model, make_X(), device="cpu", dtype=torch.float64, method=method)
    assert model.training
    assert all(m.training for m in model.modules())
    for k, v in model.state_dict().items():
        assert v.dtype == torch.float32 and v.device.type == "cpu"
        assert torch.equal(v, before[k]), k
    assert all(p.requires_grad for p in model.parameters())
    assert all(p.grad is None for p in model.parameters())


def test_dropout_is_disabled_during_computation():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(D, H), nn.Tanh(), nn.Dropout(0.5), nn.Linear(H, V)).train()
    X = make_X()
    a = compute_jne(model, X, device="cpu")
    b = compute_jne(model, X, device="cpu")
    np.testing.assert_array_equal(a.jne, b.jne)
    ref = reference_jne(naive_jacobian(model, X), "l1")  # naive_jacobian puts a copy in eval mode
    np.testing.assert_allclose(a.jne, ref[0], rtol=1e-5, atol=1e-6 * ref[2].max())


# ---------------------------------------------------------------- bad inputs


def test_bad_inputs_raise_value_error():
    model = make_model("resmlp_relu")
    X = make_X()
    with pytest.raises(ValueError, match="norm"):
        compute_jne(model, X, norm="l3", device="cpu")
    with pytest.raises(ValueError, match="method"):
        compute_jne(model, X, method="reverse", device="cpu")
    with pytest.raises(ValueError, match="readout"):
        compute_jne(make_model("seq_nonlinear_readout"), X, method="readout", device="cpu")
    with pytest.raises(ValueError, match="readout"):
        compute_jne(make_model("twopath"), X, method="readout", device="cpu")
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="finite"):
        compute_jne(model, bad, device="cpu")
    bad[3, 2] = np.inf
    with pytest.raises(ValueError, match="finite"):
        compute_jne(model, bad, device="cpu")
    with pytest.raises(ValueError, match="shape"):
        compute_jne(model, X[0], device="cpu")
    with pytest.raises(ValueError, match="shape"):
        compute_jne(model, X[None], device="cpu")
    with pytest.raises(ValueError, match="shape"):
        compute_jne(model, X[:0], device="cpu")
    with pytest.raises(ValueError):
        compute_jne(model, X, batch_size=0, device="cpu")
    with pytest.raises(ValueError):
        compute_jne(model, np.array([["a"] * D] * N), device="cpu")
