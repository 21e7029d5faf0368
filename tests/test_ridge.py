"""Ridge baseline (himalaya RidgeCV, per-voxel alphas) against scikit-learn and a float64 closed form."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from jnecore.encoders import fit_ridge
from jnecore.scoring import r2_score

ALPHAS = np.logspace(-2, 6, 17)


@pytest.fixture(scope="module")
def hm():
    return pytest.importorskip("himalaya")


def _zscore(train, test):
    mu, sd = train.mean(0), train.std(0)
    return ((train - mu) / sd).astype(np.float32), ((test - mu) / sd).astype(np.float32)


@pytest.fixture(scope="module")
def problem():
    """Y = X W + noise, the noise level planted per voxel from 0.05 to 50 times the signal."""
    rng = np.random.default_rng(0)
    n_train, n_test, D, V = 120, 60, 20, 48
    X = rng.standard_normal((n_train + n_test, D))
    W = rng.standard_normal((D, V)) / np.sqrt(D)
    noise = np.logspace(np.log10(0.05), np.log10(50), V)
    Y = X @ W + rng.standard_normal((n_train + n_test, V)) * noise
    Xtr, Xte = _zscore(X[:n_train], X[n_train:])
    Ytr, Yte = _zscore(Y[:n_train], Y[n_train:])
    return Xtr, Ytr, Xte, Yte


def _closed_form(X, Y, alpha):
    """float64 ridge weights (D, V) for one alpha."""
    X, Y = X.astype(np.float64), Y.astype(np.float64)
    return np.linalg.solve(X.T @ X + alpha * np.eye(X.shape[1]), X.T @ Y)


def test_matches_sklearn_leave_one_out(hm, problem):
    """Same criterion in both: leave-one-out squared error (sklearn's exact GCV with cv=None)."""
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import LeaveOneOut

    Xtr, Ytr, Xte, Yte = problem
    ours = fit_ridge(Xtr, Ytr, Xte, alphas=ALPHAS, cv=list(LeaveOneOut().split(Xtr)), device="cpu")
    sk = RidgeCV(alphas=ALPHAS, alpha_per_target=True, fit_intercept=False).fit(Xtr.astype(np.float64), Ytr)
    assert ours.predictions.shape == Yte.shape and ours.predictions.dtype == np.float32
    assert ours.coef.shape == (Xtr.shape[1], Ytr.shape[1]) and ours.best_alphas.shape == (Ytr.shape[1],)
    assert len(np.unique(sk.alpha_)) >= 4, "the planted noise levels should spread the chosen alphas"
    same = np.isclose(ours.best_alphas, sk.alpha_)
    assert same.mean() >= 0.9, (ours.best_alphas, sk.alpha_)
    sk_pred = sk.predict(Xte)
    np.testing.assert_allclose(ours.predictions[:, same], sk_pred[:, same], rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(ours.coef[:, same], sk.coef_.T[:, same], rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(r2_score(Yte, ours.predictions), r2_score(Yte, sk_pred), atol=2e-3)
    # noisier voxels pick larger penalties
    assert np.corrcoef(np.arange(Ytr.shape[1]), np.log(ours.best_alphas))[0, 1] > 0.8
    np.testing.assert_array_equal(ours.intercept, 0)


def _kfold_reference(X, Y, splits):
    """Per-voxel best alpha by the fold mean of -MSE, float64, one alpha at a time."""
    scores = np.zeros((len(ALPHAS), Y.shape[1]))
    for tr, te in splits:
        for i, a in enumerate(ALPHAS):
            err = Y[te] - X[te].astype(np.float64) @ _closed_form(X[tr], Y[tr], a)
            scores[i] -= np.mean(err ** 2, 0) / len(splits)
    return ALPHAS[scores.argmax(0)], scores.max(0)


@pytest.mark.parametrize("budget", [None, 4_000], ids=["one-batch", "tiny-batches"])
def test_kfold_matches_closed_form(hm, problem, monkeypatch, budget):
    """The default path (K-fold), with and without himalaya's alpha / voxel batching."""
    from sklearn.model_selection import KFold

    import jnecore.encoders._ridge as R

    if budget is not None:
        monkeypatch.setattr(R, "memory_budget", lambda dev: budget)
        params = R._batches(R._splitter(5, len(problem[0]), 0), len(problem[0]), problem[0].shape[1],
                            problem[1].shape[1], len(ALPHAS), budget)
        assert params["n_alphas_batch"] < len(ALPHAS) and params["n_targets_batch"] < problem[1].shape[1]
    Xtr, Ytr, Xte, _ = problem
    splits = list(KFold(5, shuffle=True, random_state=0).split(Xtr))
    ours = fit_ridge(Xtr, Ytr, Xte, alphas=ALPHAS, cv=5, seed=0, device="cpu")  # an int: the same shuffled folds
    ref_alpha, ref_score = _kfold_reference(Xtr, Ytr, splits)
    same = np.isclose(ours.best_alphas, ref_alpha)
    assert same.mean() >= 0.9 and len(np.unique(ref_alpha)) >= 4
    np.testing.assert_allclose(ours.cv_scores[same], ref_score[same], rtol=1e-3, atol=1e-5)
    for v in range(Ytr.shape[1]):  # refit on all training rows with each voxel's own alpha
        w = _closed_form(Xtr, Ytr[:, v:v + 1], ours.best_alphas[v])[:, 0]
        np.testing.assert_allclose(ours.coef[:, v], w, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(ours.predictions, Xte @ ours.coef, rtol=1e-5, atol=1e-6)


def test_intercept_and_backend_restored(hm, problem):
    import himalaya.backend as hb

    Xtr, Ytr, Xte, _ = problem
    shift = np.linspace(-3, 3, Ytr.shape[1]).astype(np.float32)
    hb.set_backend("numpy")
    off = fit_ridge(Xtr, Ytr, Xte, alphas=ALPHAS, device="cpu")
    on = fit_ridge(Xtr, Ytr + shift, Xte, alphas=ALPHAS, fit_intercept=True, device="cpu")
    assert hb.get_backend().name == "numpy"
    # z-scored features have zero training mean: the intercept is the responses' mean shift
    np.testing.assert_allclose(on.intercept, shift, atol=1e-4)
    # centring within each fold changes the CV a little: compare the voxels that chose the same alpha
    same = np.isclose(on.best_alphas, off.best_alphas)
    assert same.mean() >= 0.75
    np.testing.assert_allclose((on.predictions - shift)[:, same], off.predictions[:, same], rtol=1e-3, atol=1e-3)


def test_backend_restored_after_error(hm, problem, monkeypatch):
    import himalaya.backend as hb
    import himalaya.ridge

    def boom(self, X, y=None):
        assert hb.get_backend().name == "torch"
        raise RuntimeError("boom")

    monkeypatch.setattr(himalaya.ridge.RidgeCV, "fit", boom)
    hb.set_backend("numpy")
    with pytest.raises(RuntimeError, match="boom"):
        fit_ridge(*problem[:3], device="cpu")
    assert hb.get_backend().name == "numpy"


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu(hm, problem):
    Xtr, Ytr, Xte, _ = problem
    cpu = fit_ridge(Xtr, Ytr, Xte, device="cpu")
    gpu = fit_ridge(Xtr, Ytr, Xte, device="cuda")
    same = np.isclose(cpu.best_alphas, gpu.best_alphas)
    assert same.mean() >= 0.9
    np.testing.assert_allclose(gpu.predictions[:, same], cpu.predictions[:, same], rtol=1e-3, atol=1e-4)


def test_bad_inputs(hm, problem):
    Xtr, Ytr, Xte, _ = problem
    with pytest.raises(ValueError, match="Y_train has 119"):
        fit_ridge(Xtr, Ytr[:-1], Xte, device="cpu")
    with pytest.raises(ValueError, match="X_test has 19 features"):
        fit_ridge(Xtr, Ytr, Xte[:, :-1], device="cpu")
    with pytest.raises(ValueError, match="alphas"):
        fit_ridge(Xtr, Ytr, Xte, alphas=[1.0, -1.0], device="cpu")
    with pytest.raises(ValueError, match="Y_train contains NaN"):
        bad = Ytr.copy()
        bad[0, 0] = np.nan
        fit_ridge(Xtr, bad, Xte, device="cpu")
    with pytest.raises(ValueError, match="cv must be between"):
        fit_ridge(Xtr, Ytr, Xte, cv=1, device="cpu")


def test_missing_himalaya_says_what_to_install(monkeypatch, problem):
    for name in ("himalaya", "himalaya.backend", "himalaya.ridge"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r"pip install 'jnecore\[baseline\]'"):
        fit_ridge(*problem[:3], device="cpu")
