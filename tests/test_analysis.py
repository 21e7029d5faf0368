"""JNEAnalysis: scikit-learn conventions, errors that name parameters, and every fitted attribute
checked against an independent recomputation from its own encoders."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone

from jnecore import JNEAnalysis, compute_jne
from jnecore.analysis import split_order, split_stimuli, standardize, subset_outputs
from jnecore.validation import InputError

FAST = dict(hidden=32, max_epochs=80, fit_batch_size=64, n_boot=50, seed=3, grouping="categories")


def _data(n=500, d=4, v=12, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    W = rng.normal(size=(d, v))
    Y = np.abs(X @ W) + 0.3 * rng.normal(size=(n, v))
    Y[:, -2:] = rng.normal(size=(n, 2))  # pure noise columns
    cats = np.array(["a", "b", "c"])[rng.integers(0, 3, n)]
    return X, Y.astype(np.float32), cats


@pytest.fixture(scope="module")
def fitted():
    X, Y, cats = _data()
    return JNEAnalysis(**FAST).fit(X, Y, groups=cats), X, Y, cats


def test_init_does_no_work_and_params_round_trip():
    a = JNEAnalysis(hidden=-5, norm="nope")  # invalid values are accepted until fit
    assert a.get_params()["hidden"] == -5 and not hasattr(a, "jne_")
    a.set_params(hidden=8, norm="l2")
    assert a.get_params()["hidden"] == 8 and clone(a).get_params() == a.get_params()
    assert set(JNEAnalysis().get_params()) >= {"hidden", "n_blocks", "activation", "norm", "n_boot", "alpha",
                                              "device", "seed", "trunk", "baseline"}


@pytest.mark.parametrize("params,name", [
    (dict(hidden=0), "hidden"), (dict(seed=-1), "seed"), (dict(seed=2**32), "seed"), (dict(norm="l3"), "norm"),
    (dict(alpha=1.0), "alpha"), (dict(activation="swish"), "activation"), (dict(trunk="voxel"), "trunk"),
    (dict(hidden=2.5), "hidden"), (dict(device="tpu"), "device"), (dict(n_clusters=0), "n_clusters"),
])
def test_bad_parameters_are_named(params, name):
    X, Y, cats = _data(n=60)
    with pytest.raises(InputError) as exc:
        JNEAnalysis(**params).fit(X, Y)
    assert exc.value.source == name and "--" not in str(exc.value)


def test_bad_data_is_named():
    X, Y, cats = _data(n=60)
    with pytest.raises(InputError, match="^Y: has 59 rows but X has 60"):
        JNEAnalysis(**FAST).fit(X, Y[:-1])
    with pytest.raises(InputError, match="^groups: has 3 entries"):
        JNEAnalysis(**FAST).fit(X, Y, groups=["a", "b", "c"])
    with pytest.raises(InputError, match="^trunk: trunk='roi' needs `rois`"):
        JNEAnalysis(trunk="roi").fit(X, Y)
    with pytest.raises(InputError, match="^Y: every column is constant"):
        JNEAnalysis(**FAST).fit(X, np.ones_like(Y))


def test_fitted_attributes_match_an_independent_recomputation(fitted):
    a, X, Y, cats = fitted
    te, tr = a.split_ == "test", a.split_ == "train"
    assert list(a.split_) == list(split_stimuli(len(X), test_fraction=0.1, val_fraction=0.1111, seed=3))
    # z-scoring by hand, in float64, with the training rows' statistics
    Xz = ((X - X[tr].mean(0)) / X[tr].std(0)).astype(np.float32)
    Yz = (Y - Y[tr].mean(0)) / Y[tr].std(0)
    with torch.no_grad():
        pred_lin = a.linear_(torch.as_tensor(Xz[te])).numpy()
        pred_nl = a.nonlinear_(torch.as_tensor(Xz[te])).numpy()
    y = Yz[te]
    r2 = lambda p: 1 - ((y - p) ** 2).mean(0) / y.var(0)  # noqa: E731
    np.testing.assert_allclose(a.r2_linear_, r2(pred_lin), atol=1e-5)
    np.testing.assert_allclose(a.r2_nonlinear_, r2(pred_nl), atol=1e-5)
    assert a.significant_[:10].sum() >= 5 and not a.significant_[-2:].any()
    sig = np.flatnonzero(a.significant_)
    ref = compute_jne(subset_outputs(a.nonlinear_, sig), torch.as_tensor(Xz[te]), method="forward")
    np.testing.assert_allclose(a.jne_[sig], ref.jne, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(a.jne_ss_[:, sig], ref.ss, rtol=1e-4, atol=1e-8)
    assert np.isnan(a.jne_[~a.significant_]).all() and a.jne_ss_.dtype == np.float32
    assert list(a.groups_["category"]) == list(cats[te]) and a.jne_ss_.shape == (te.sum(), Y.shape[1])


def test_refit_is_deterministic(fitted):
    a, X, Y, cats = fitted
    b = clone(a).fit(X, Y, groups=cats)
    np.testing.assert_array_equal(a.jne_, b.jne_)


def test_standardize_is_one_float32_copy_of_a_memory_map(tmp_path):
    rng = np.random.default_rng(0)
    Y = rng.normal(3, 2, size=(50, 7))
    Y[4, 2] = np.nan
    Y[:, 5] = 1.0
    np.save(tmp_path / "Y.npy", Y)
    mm = np.load(tmp_path / "Y.npy", mmap_mode="r")
    train = np.arange(50) < 40
    z, usable = standardize(mm, train, block_bytes=50 * 8 * 2)  # 2 columns per block
    assert z.dtype == np.float32 and list(usable) == [True, True, False, True, True, False, True]
    ok = usable
    ref = (Y[:, ok] - Y[train][:, ok].mean(0)) / Y[train][:, ok].std(0)
    np.testing.assert_allclose(z[:, ok], ref, rtol=1e-6)
    assert (z[:, ~ok] == 0).all()


def test_standardize_float32_rows_in_split_order(tmp_path):
    """float32 responses far from zero, taken in split order by blocks, match float64 z-scores."""
    rng = np.random.default_rng(1)
    Y = rng.normal(1e3, 0.5, size=(61, 9)).astype(np.float32)
    Y[7, 3] = np.inf
    np.save(tmp_path / "Y.npy", Y)
    mm = np.load(tmp_path / "Y.npy", mmap_mode="r")
    split = split_stimuli(61, seed=3)
    order, _ = split_order(split)
    train = split == "train"
    z, usable = standardize(mm, train, order=order, block_bytes=9 * 8 * 5)  # 5 rows per block
    assert usable.tolist() == [i != 3 for i in range(9)]
    Y64 = Y.astype(np.float64)
    ref = (Y64[order] - Y64[train].mean(0)) / Y64[train].std(0)
    np.testing.assert_allclose(z[:, usable], ref[:, usable], rtol=0, atol=2e-4)
    assert (z[:, ~usable] == 0).all()


def test_explicit_split_is_used():
    X, Y, cats = _data(n=60)
    split = np.array(["train"] * 40 + ["val"] * 10 + ["test"] * 10)
    a = JNEAnalysis(**FAST).fit(X, Y, split=split, groups=cats)
    assert list(a.split_) == list(split) and a.jne_ss_.shape[0] == 10
    with pytest.raises(InputError, match="^split: holds"):
        JNEAnalysis(**FAST).fit(X, Y, split=np.array(["training"] * 60))


def test_ridge_baseline_joins_the_fit():
    pytest.importorskip("himalaya")
    X, Y, cats = _data()
    a = JNEAnalysis(**dict(FAST, baseline="ridge")).fit(X, Y, groups=cats)
    assert a.r2_ridge_.shape == (Y.shape[1],) and np.isfinite(a.ridge_alphas_).all()
    # |X W| is not linear: the networks' nonlinear encoder beats the ridge on the signal columns
    assert np.nanmean(a.r2_nonlinear_[:10]) > np.nanmean(a.r2_ridge_[:10])
