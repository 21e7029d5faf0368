"""Per-voxel R^2, Benjamini-Hochberg FDR, bootstrap significance and the NSD noise ceiling."""

from __future__ import annotations

import numpy as np
import pytest

from jnecore.scoring import bh_fdr, bootstrap_significance, noise_ceiling, r2_score


# ---------------------------------------------------------------- r2_score


def test_r2_matches_hand_formula_and_sklearn():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    y = rng.standard_normal((50, 6)) * np.arange(1, 7) + 3.0
    yhat = y + rng.standard_normal((50, 6)) * np.linspace(0.1, 3, 6)
    r2 = r2_score(y, yhat)
    hand = np.array([1 - np.sum((y[:, v] - yhat[:, v]) ** 2) / np.sum((y[:, v] - y[:, v].mean()) ** 2)
                     for v in range(6)])
    np.testing.assert_allclose(r2, hand, rtol=1e-12)
    np.testing.assert_allclose(r2, sk.r2_score(y, yhat, multioutput="raw_values"), rtol=1e-12)
    assert r2.shape == (6,)
    assert r2[0] > r2[-1]


def test_r2_edge_cases():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    np.testing.assert_allclose(r2_score(y, y), [1.0])
    np.testing.assert_allclose(r2_score(y, np.full(4, y.mean())), [0.0], atol=1e-15)
    np.testing.assert_allclose(r2_score(y, y[::-1]), [1 - 20 / 5])  # mse 5, var 1.25
    const = np.column_stack([y, np.ones(4)])
    out = r2_score(const, const + 0.1)
    assert np.isfinite(out[0]) and np.isnan(out[1])
    with pytest.raises(ValueError):
        r2_score(np.zeros((4, 2)), np.zeros((4, 3)))
    with pytest.raises(ValueError):
        r2_score(np.zeros((1, 2)), np.zeros((1, 2)))


# ---------------------------------------------------------------- bh_fdr


def test_bh_fdr_hand_values():
    p = np.array([0.01, 0.04, 0.03, 0.2])
    # sorted 0.01, 0.03, 0.04, 0.2 -> p*m/rank = 0.04, 0.06, 0.0533, 0.2 -> running min from the top
    np.testing.assert_allclose(bh_fdr(p), [0.04, 0.16 / 3, 0.16 / 3, 0.2], rtol=1e-12)
    np.testing.assert_allclose(bh_fdr([0.5]), [0.5])
    np.testing.assert_allclose(bh_fdr([0.9, 0.95]), [0.95, 0.95])  # capped by the largest
    np.testing.assert_allclose(bh_fdr([0.02, 0.02, 0.02]), [0.02, 0.02, 0.02])  # ties


def test_bh_fdr_nan_passthrough():
    q = bh_fdr([0.01, np.nan, 0.04])
    assert np.isnan(q[1])
    np.testing.assert_allclose(q[[0, 2]], [0.02, 0.04])  # m counts the finite p-values only
    assert np.all(np.isnan(bh_fdr([np.nan, np.nan])))


def test_bh_fdr_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    if not hasattr(stats, "false_discovery_control"):
        pytest.skip("scipy too old for false_discovery_control")
    rng = np.random.default_rng(1)
    p = np.concatenate([rng.uniform(size=300), rng.uniform(0, 1e-3, size=50), [0.5, 0.5, 0.5]])
    p = np.round(p, 3)  # plenty of ties
    rng.shuffle(p)
    np.testing.assert_allclose(bh_fdr(p), stats.false_discovery_control(p, method="bh"), rtol=1e-12)


# ---------------------------------------------------------------- bootstrap_significance


def _naive_bootstrap_p(y, yhat, n_boot, seed, chunk):
    """Resample rows explicitly with the same random draws and compute R^2 per resample."""
    rng = np.random.default_rng(seed)
    n = y.shape[0]
    below = np.zeros(y.shape[1])
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=b)
        for c in counts:
            idx = np.repeat(np.arange(n), c)
            yb, hb = y[idx], yhat[idx]
            r2 = 1 - ((yb - hb) ** 2).mean(0) / yb.var(0)
            below += r2 < 0
    return below / n_boot


def test_bootstrap_p_matches_explicit_resampling():
    rng = np.random.default_rng(3)
    n, v = 40, 12
    y = rng.standard_normal((n, v))
    yhat = 0.3 * y + rng.standard_normal((n, v)) * np.linspace(0.2, 1.5, v)
    sig = bootstrap_significance(y, yhat, n_boot=120, seed=7, chunk=50)
    np.testing.assert_allclose(sig.p, _naive_bootstrap_p(y, yhat, 120, 7, 50), atol=1e-12)
    assert 0 < np.count_nonzero((sig.p > 0) & (sig.p < 1))  # the planted range spans the boundary
    np.testing.assert_allclose(sig.r2, r2_score(y, yhat))


def test_bootstrap_planted_signal_and_nulls():
    rng = np.random.default_rng(0)
    n, half = 150, 200
    y = rng.standard_normal((n, 2 * half))
    yhat = np.empty_like(y)
    yhat[:, :half] = y[:, :half] + 0.3 * rng.standard_normal((n, half))  # R^2 ~ 0.9
    # nulls: predictions independent of y, small so R^2 sits just below 0
    yhat[:, half:] = 0.05 * rng.standard_normal((n, half))
    sig = bootstrap_significance(y, yhat, n_boot=200, seed=0)
    for arr in sig:
        assert arr.shape == (2 * half,)
    assert np.all((sig.p >= 0) & (sig.p <= 1))
    assert np.all(sig.q >= sig.p - 1e-15) and np.all(sig.q <= 1)
    np.testing.assert_array_equal(sig.significant, sig.q < 0.05)
    assert sig.significant[:half].all()
    n_false = int(sig.significant[half:].sum())
    fdp = n_false / max(int(sig.significant.sum()), 1)
    assert fdp <= 0.05, (n_false, fdp)
    assert np.median(sig.p[half:]) > 0.5
    # same seed -> same answer
    again = bootstrap_significance(y, yhat, n_boot=200, seed=0)
    np.testing.assert_array_equal(again.p, sig.p)


def test_bootstrap_constant_voxel_and_bad_args():
    rng = np.random.default_rng(0)
    y = rng.standard_normal((30, 3))
    y[:, 1] = 2.0
    sig = bootstrap_significance(y, y.copy(), n_boot=50)
    assert np.isnan(sig.r2[1]) and np.isnan(sig.p[1]) and np.isnan(sig.q[1])
    assert not sig.significant[1]
    assert sig.significant[0] and sig.significant[2]
    with pytest.raises(ValueError):
        bootstrap_significance(y, y, n_boot=0)


# ---------------------------------------------------------------- noise ceiling


def test_noise_ceiling_exact_tiny_case():
    # image 1: (0.5, -0.5) -> var 0.5 (ddof=1); image 2: (1, 1) -> var 0. s2 = 0.25,
    # ncsnr = sqrt(0.75) / 0.5 = sqrt(3), ncsnr^2 = 3 -> NC = 100 * 3 / 4 = 75 (n=1), 100 * 9 / 10 (n=3)
    r = np.array([[0.5, -0.5], [1.0, 1.0]])
    np.testing.assert_allclose(noise_ceiling(r, n=1), [75.0])
    np.testing.assert_allclose(noise_ceiling(r, n=3), [90.0])
    # a missing repeat (NaN) is ignored: image 2's variance from its two remaining trials
    r3 = np.array([[[0.5], [-0.5], [np.nan]], [[1.0], [1.0], [1.0]]])
    np.testing.assert_allclose(noise_ceiling(r3, n=1), [75.0])
    # all noise (s2 >= 1) -> 0
    np.testing.assert_allclose(noise_ceiling(np.array([[1.0, -1.0], [2.0, 0.0]])), [0.0])
    # identical repeats (s2 = 0): the limit, 100, not NaN
    np.testing.assert_allclose(noise_ceiling(np.array([[1.0, 1.0], [2.0, 2.0]])), [100.0])
    assert noise_ceiling(np.array([[1.0, 1.0], [2.0, 2.0]]), n=3).shape == (1,)
    with pytest.raises(ValueError):
        noise_ceiling(np.zeros((4, 1, 2)))


@pytest.mark.parametrize("n_avg", [1, 3])
def test_noise_ceiling_matches_closed_form_on_simulated_repeats(n_avg):
    rng = np.random.default_rng(0)
    # many images: z-scoring with the sample std moves s2 by ~sqrt(2 / n_trials), and NC is steep
    # in s2 at low SNR (worst error over 30 seeds at this size: 1.5 points)
    n_img, n_rep = 40000, 3
    signal_var = np.array([0.1, 0.3, 0.5, 0.8])  # noise var = 1 - signal var
    noise_var = 1.0 - signal_var
    signal = rng.standard_normal((n_img, 1, 4)) * np.sqrt(signal_var)
    trials = signal + rng.standard_normal((n_img, n_rep, 4)) * np.sqrt(noise_var)
    flat = trials.reshape(-1, 4)
    trials = (trials - flat.mean(0)) / flat.std(0)  # z-score each voxel, as NSD betas are
    snr2 = signal_var / noise_var
    expected = 100 * n_avg * snr2 / (1 + n_avg * snr2)
    got = noise_ceiling(trials, n=n_avg)
    assert got.shape == (4,)
    np.testing.assert_allclose(got, expected, atol=2.5)
    assert np.all(np.diff(got) > 0)
