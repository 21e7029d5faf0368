"""compute_jne against an independent, naive reference built from the paper's definitions.

The reference below uses only torch autograd (one reverse pass per output) and numpy in float64;
it deliberately imports nothing from ``jnecore.jacobian``.
"""

from __future__ import annotations

import copy
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from torch import nn

from jnecore import compute_jne
from jnecore.backend import exact_fp32
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


# ---------------------------------------------------------------- readout shortcut only where proven


class SigmoidHead(nn.Module):
    """Has ``features`` and an ``nn.Linear`` ``readout``, but forward applies a sigmoid after it."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(D, H), nn.Tanh())
        self.readout = nn.Linear(H, V)

    def forward(self, x):
        return torch.sigmoid(self.readout(self.features(x)))


class DecoyFeatures(nn.Module):
    """``features`` and ``readout`` exist, but forward goes through ``trunk``, not ``features``."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(D, H), nn.ReLU())
        self.trunk = nn.Sequential(nn.Linear(D, H), nn.GELU())
        self.readout = nn.Linear(H, V)

    def forward(self, x):
        return self.readout(self.trunk(x))


class Wrapper(nn.Module):
    """A ResidualMLP held as ``.net``, plus a nonlinear output stage."""

    def __init__(self):
        super().__init__()
        self.net = ResidualMLP(D, V, hidden=H, activation="gelu", bias=True)

    def forward(self, x):
        return torch.nn.functional.softplus(self.net(x))


class SeqWithOwnForward(nn.Sequential):
    """An nn.Sequential ending in nn.Linear whose forward squares the output."""

    def forward(self, x):
        return super().forward(x) ** 2


def _hooked_resmlp():
    m = ResidualMLP(D, V, hidden=H, activation="gelu", bias=True)
    m.register_forward_hook(lambda mod, inp, out: torch.tanh(out))
    return m


UNPROVEN = {"sigmoid_head": SigmoidHead, "decoy_features": DecoyFeatures, "wrapper": Wrapper,
            "seq_own_forward": lambda: SeqWithOwnForward(nn.Linear(D, H), nn.Tanh(), nn.Linear(H, V)),
            "resmlp_forward_hook": _hooked_resmlp}


def _unproven(kind):
    torch.manual_seed(7)
    m = UNPROVEN[kind]()
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(2.0)
    return m


@pytest.mark.parametrize("dtype, rtol", [(torch.float32, 1e-5), (torch.float64, 1e-9)])
@pytest.mark.parametrize("kind", list(UNPROVEN))
def test_models_not_proven_readout_use_forward_and_match_reference(kind, dtype, rtol):
    m = _unproven(kind)
    X = make_X(seed=8)
    for norm in ("l1", "zl2"):
        res = compute_jne(m, X, norm=norm, device="cpu", dtype=dtype)
        assert res.method == "forward"
        assert_matches(res, reference_jne(naive_jacobian(m, X), norm), rtol=rtol)
    with pytest.raises(ValueError, match="method='readout'"):
        compute_jne(m, X, device="cpu", method="readout")


@pytest.mark.parametrize("kind", ["sigmoid_head", "decoy_features", "resmlp_forward_hook"])
def test_readout_of_features_is_not_the_model(kind):
    """The tests above can fail: the readout(features(x)) shortcut gives a different JNE."""
    m = _unproven(kind)
    X = make_X(seed=8)
    true = reference_jne(naive_jacobian(m, X), "l1")[0]

    class Shortcut(nn.Module):
        def __init__(self):
            super().__init__()
            self.m = m

        def forward(self, x):
            return self.m.readout(self.m.features(x))

    wrong = reference_jne(naive_jacobian(Shortcut(), X), "l1")[0]
    assert np.max(np.abs(wrong - true)) > 0.1 * np.max(true)


def test_split_readout_recognises_known_classes_only():
    """Known classes still take the readout path, and split_readout refuses the others."""
    from jnecore import split_readout

    torch.manual_seed(0)
    assert split_readout(ResidualMLP(D, V, hidden=H)) is not None
    assert split_readout(nn.Sequential(nn.Linear(D, H), nn.ReLU(), nn.Linear(H, V))) is not None
    assert split_readout(nn.Linear(D, V)) is not None
    for kind in UNPROVEN:
        assert split_readout(_unproven(kind)) is None, kind


def test_probe_catches_what_the_class_check_cannot():
    """A global forward hook changes a ResidualMLP's output without touching the module: the probe
    check model(x) == readout(features(x)) sends it to the forward path, which matches the reference."""
    from torch.nn.modules.module import register_module_forward_hook

    m = ResidualMLP(D, V, hidden=H, activation="gelu", bias=True)
    X = make_X(seed=8)
    def squash(mod, inp, out):
        return torch.tanh(out) if isinstance(mod, ResidualMLP) else out

    handle = register_module_forward_hook(squash)
    try:
        res = compute_jne(m, X, device="cpu", dtype=torch.float64)
        assert res.method == "forward"
        assert_matches(res, reference_jne(naive_jacobian(m, X), "l1"), rtol=1e-9)
        with pytest.raises(ValueError, match="method='readout'"):
            compute_jne(m, X, device="cpu", method="readout")
    finally:
        handle.remove()
    assert compute_jne(m, X, device="cpu").method == "readout"


# ---------------------------------------------------------------- output shape checked


class _OneVoxel(nn.Module):
    """(n, D) -> (n,): one voxel without its axis."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(D, 1)

    def forward(self, x):
        return torch.tanh(self.lin(x))[:, 0]


class _Squeezed(nn.Module):
    """(n, D) -> (n, V), except (V,) for n = 1."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(D, V)

    def forward(self, x):
        return torch.tanh(self.lin(x)).squeeze()


class _ThreeD(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(D, V)

    def forward(self, x):
        y = torch.tanh(self.lin(x))
        return torch.stack([y, y ** 2], dim=-1)  # (n, V, 2)


@pytest.mark.parametrize("n", [1, 4])
@pytest.mark.parametrize("batch_size", [1, 4, None])
@pytest.mark.parametrize("method", ["auto", "forward"])
def test_one_voxel_output_without_its_axis_is_refused(n, batch_size, method):
    with pytest.raises(ValueError, match=r"\(1,\) and \(2,\), expected \(1, V\) and \(2, V\)"):
        compute_jne(_OneVoxel(), make_X(n=n), device="cpu", batch_size=batch_size, method=method)


def test_squeezed_and_3d_outputs_are_refused():
    with pytest.raises(ValueError, match=rf"\({V},\) and \(2, {V}\)"):
        compute_jne(_Squeezed(), make_X(n=4), device="cpu")
    with pytest.raises(ValueError, match=rf"\(1, {V}, 2\) and \(2, {V}, 2\), expected"):
        compute_jne(_ThreeD(), make_X(n=4), device="cpu")


def test_one_voxel_with_its_axis_works():
    """The positive control: the same model returning (n, 1) is accepted and matches the reference."""
    one = _OneVoxel()

    class WithAxis(nn.Module):
        def __init__(self):
            super().__init__()
            self.one = one

        def forward(self, x):
            return self.one(x)[:, None]

    X = make_X(n=4)
    res = compute_jne(WithAxis(), X, device="cpu", dtype=torch.float64)
    assert res.jne.shape == (1,) and res.ss.shape == (4, 1)
    ref = reference_jne(naive_jacobian(WithAxis(), X), "l1")
    np.testing.assert_allclose(res.jne, ref[0], rtol=1e-10)


# ---------------------------------------------------------------- norms: gain-only modulation


def test_gain_only_jacobian_is_invisible_to_zscored_norms():
    """J_i = c_i A (c_i > 0): JNE > 0 under l1/l2 with a closed form, and exactly 0 under zl1/zl2.

    Readout path: y = w2 softplus(w1 . x + b1), so J_i = sigmoid(w1 . x_i + b1) w2 w1^T, one gain
    c_i for every voxel. Forward path: y_v = softplus(w_v . x + b_v), J_i[v] = sigmoid(.) w_v, a
    gain c_iv per voxel row (z-scoring works row by row, so it is blind to that too).
    """
    torch.manual_seed(4)
    X = make_X(n=30, seed=9)
    Xd = X.astype(np.float64)
    readout_model = nn.Sequential(nn.Linear(D, 1), nn.Softplus(), nn.Linear(1, V))
    row_model = nn.Sequential(nn.Linear(D, V), nn.Softplus())
    w1, b1 = (t.detach().double().numpy() for t in (readout_model[0].weight, readout_model[0].bias))
    A = readout_model[2].weight.detach().double().numpy() @ w1  # (V, D)
    c_common = 1 / (1 + np.exp(-(Xd @ w1.T + b1)))  # (N, 1)
    W, b = (t.detach().double().numpy() for t in (row_model[0].weight, row_model[0].bias))
    c_rows = 1 / (1 + np.exp(-(Xd @ W.T + b)))  # (N, V)
    for model, method, c, rows in ((readout_model, "readout", c_common, A), (row_model, "forward", c_rows, W)):
        dc = np.abs(c - c.mean(0))  # (N, 1) or (N, V)
        for norm, order in (("l1", 1), ("l2", 2)):
            res = compute_jne(model, X, norm=norm, device="cpu", dtype=torch.float64)
            assert res.method == method
            expected = (dc * np.linalg.norm(rows, ord=order, axis=1)).std(0)  # closed form, (V,)
            assert expected.min() > 1e-3
            np.testing.assert_allclose(res.jne, expected, rtol=1e-9)
        for norm in ("zl1", "zl2"):
            for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
                res = compute_jne(model, X, norm=norm, device="cpu", dtype=dtype)
                assert res.method == method
                assert np.all(res.jne <= tol * D), (norm, dtype, res.jne.max())
                assert np.all(res.mean_deviation <= 10 * tol * D)



# ---------------------------------------------------------------- exact FP32 guard

_B = torch.backends
_NEW_API = hasattr(torch._C, "_get_fp32_precision_getter")  # torch >= 2.9
_NEW_READS = {"fp32_precision": lambda: _B.fp32_precision, "cuda.matmul": lambda: _B.cuda.matmul.fp32_precision,
              "cudnn": lambda: _B.cudnn.fp32_precision, "cudnn.conv": lambda: _B.cudnn.conv.fp32_precision,
              "cudnn.rnn": lambda: _B.cudnn.rnn.fp32_precision,
              "mkldnn.matmul": lambda: _B.mkldnn.matmul.fp32_precision,
              "mkldnn.conv": lambda: _B.mkldnn.conv.fp32_precision, "mkldnn.rnn": lambda: _B.mkldnn.rnn.fp32_precision}
EXACT = {"matmul_precision": "highest", "cuda.matmul.allow_tf32": False}
if _NEW_API:
    EXACT.update({k: "ieee" for k in _NEW_READS if k not in ("fp32_precision", "cudnn")})
else:
    EXACT["cudnn.allow_tf32"] = False


def _flags():
    """Every precision flag, read through torch's public API ("raises" where torch refuses the read)."""
    reads = {"matmul_precision": torch.get_float32_matmul_precision,
             "cuda.matmul.allow_tf32": lambda: _B.cuda.matmul.allow_tf32,
             "cudnn.allow_tf32": lambda: _B.cudnn.allow_tf32, **(_NEW_READS if _NEW_API else {})}
    out = {}
    for name, read in reads.items():
        try:
            out[name] = read()
        except RuntimeError:
            out[name] = "raises"
    return out


def _flags_and_inheritance():
    """_flags() now and with the root fp32_precision set to ieee / tf32 (then put back): which settings follow it."""
    out = [_flags()]
    if _NEW_API:
        root = _B.fp32_precision
        for value in ("ieee", "tf32"):
            _B.fp32_precision = value
            out.append(_flags())
        _B.fp32_precision = root
    return out


@pytest.fixture
def precision_reset():
    """Put torch's precision defaults back after a test (cuDNN conv / rnn are never set by these tests)."""
    yield
    torch.set_float32_matmul_precision("highest")
    if _NEW_API:
        for node in (("generic", "all"), ("cuda", "all"), ("mkldnn", "all"), ("cuda", "matmul"),
                     ("mkldnn", "matmul"), ("mkldnn", "conv"), ("mkldnn", "rnn")):
            torch._C._set_fp32_precision_setter(*node, "none")


def _new_api_mix():
    if not _NEW_API:
        pytest.skip("torch < 2.9 has no fp32_precision API")
    _B.fp32_precision = "tf32"
    _B.cuda.matmul.fp32_precision = "tf32"  # without the legacy flag: torch refuses legacy reads now
    _B.mkldnn.matmul.fp32_precision = "bf16"


PRECISION_STATES = {
    "default": lambda: None,
    "legacy_allow_tf32": lambda: setattr(_B.cuda.matmul, "allow_tf32", True),
    "legacy_medium": lambda: torch.set_float32_matmul_precision("medium"),
    "new_api_mix": _new_api_mix,
}


@pytest.mark.parametrize("state", list(PRECISION_STATES))
def test_exact_fp32_sets_and_restores_every_flag(state, precision_reset):
    PRECISION_STATES[state]()
    before = _flags_and_inheritance()
    with exact_fp32():
        inside = _flags()
    assert {k: inside[k] for k in EXACT} == EXACT
    assert _flags_and_inheritance() == before
    with pytest.raises(KeyError, match="inside"):
        with exact_fp32():
            assert {k: _flags()[k] for k in EXACT} == EXACT
            raise KeyError("inside")
    assert _flags_and_inheritance() == before
    if state == "default" and _NEW_API:  # torch's own default: cuDNN conv TF32, following the root
        assert before[0]["cudnn.conv"] == "tf32" and before[1]["cudnn.conv"] == "ieee"


_SEEN: list = []


class _FlagRecorder(nn.Module):
    """Records the precision flags each time forward runs (inside compute_jne's passes)."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(D, V)

    def forward(self, x):
        _SEEN.append(_flags())
        return torch.tanh(self.lin(x))


@pytest.mark.parametrize("state", ["legacy_allow_tf32", "new_api_mix"])
def test_compute_jne_runs_under_exact_fp32(state, precision_reset):
    """Also a regression test: the earlier guard read allow_tf32, which torch refuses after new_api_mix."""
    PRECISION_STATES[state]()
    before = _flags_and_inheritance()
    _SEEN.clear()
    torch.manual_seed(0)
    model, X = _FlagRecorder(), make_X()
    res = compute_jne(model, X, device="cpu")
    assert _SEEN and all({k: seen[k] for k in EXACT} == EXACT for seen in _SEEN)
    assert _flags_and_inheritance() == before
    assert_matches(res, reference_jne(naive_jacobian(model, X), "l1"), rtol=1e-5)
    _SEEN.clear()


def test_exact_fp32_explicit_cudnn_setting_and_legacy_path():
    """In a fresh interpreter (these settings cannot be undone in this one): an explicit cuDNN conv
    setting survives while rnn keeps following the root, and the torch < 2.9 path (forced here)
    sets and restores the legacy flags."""
    code = textwrap.dedent("""
        import torch
        import jnecore.backend as be
        b = torch.backends
        if be._NEW_PRECISION_API:
            b.cudnn.conv.fp32_precision = "tf32"
            with be.exact_fp32():
                assert (b.cudnn.conv.fp32_precision, b.cudnn.rnn.fp32_precision) == ("ieee", "ieee")
            assert (b.cudnn.conv.fp32_precision, b.cudnn.rnn.fp32_precision) == ("tf32", "tf32")
            b.fp32_precision = "ieee"
            assert (b.cudnn.conv.fp32_precision, b.cudnn.rnn.fp32_precision) == ("tf32", "ieee")
            b.fp32_precision = "none"
        be._NEW_PRECISION_API = False
        torch.set_float32_matmul_precision("high")
        b.cudnn.allow_tf32 = True
        try:
            with be.exact_fp32():
                assert torch.get_float32_matmul_precision() == "highest"
                assert not b.cuda.matmul.allow_tf32 and not b.cudnn.allow_tf32
                raise KeyError("inside")
        except KeyError:
            pass
        assert torch.get_float32_matmul_precision() == "high"
        assert b.cuda.matmul.allow_tf32 and b.cudnn.allow_tf32
        print("ok")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
