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


def _bh_previous(p):
    """The hand-written bh_fdr that jnecore.scoring used before it called scipy (copied verbatim)."""
    p = np.asarray(p, dtype=np.float64)
    q = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    m = int(ok.sum())
    if m == 0:
        return q
    pv = p[ok]
    order = np.argsort(pv, kind="mergesort")
    ranked = pv[order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.clip(ranked, 0.0, 1.0)
    q[ok] = out
    return q


def _bh_reference(p):
    """BH from its definition, written independently: q_(k) = min_{j >= k} p_(j) m / j, capped at 1.

    Tied p-values share the largest rank among them (the step-up rule gives them one q).
    """
    p = np.asarray(p, dtype=np.float64)
    q = np.full(p.shape, np.nan)
    finite = [i for i in range(p.size) if np.isfinite(p.flat[i])]
    m = len(finite)
    for i in finite:
        best = 1.0
        for j in finite:
            if p.flat[j] >= p.flat[i]:
                rank = sum(p.flat[k] <= p.flat[j] for k in finite)  # largest rank of p_j's ties
                best = min(best, p.flat[j] * m / rank)
        q.flat[i] = best
    return q


def _random_p(seed, n):
    rng = np.random.default_rng(seed)
    p = np.concatenate([rng.uniform(size=n), rng.uniform(0, 1e-3, size=n // 6), [0.5, 0.5, 0.5, 1.0, 0.0]])
    p = np.round(p, 2 + seed % 2)  # plenty of ties
    p[rng.choice(p.size, size=p.size // 10, replace=False)] = np.nan
    p[rng.integers(p.size)] = np.inf  # non-finite but not NaN: also a missing value
    rng.shuffle(p)
    return p


@pytest.mark.parametrize("seed", range(6))
def test_bh_fdr_matches_definition_and_previous_implementation(seed):
    p = _random_p(seed, n=[5, 40, 120, 1, 2, 300][seed])
    q = bh_fdr(p)
    assert q.shape == p.shape
    np.testing.assert_array_equal(np.isnan(q), ~np.isfinite(p))
    np.testing.assert_allclose(q, _bh_reference(p), rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(q, _bh_previous(p), rtol=1e-12, equal_nan=True)


def test_bh_fdr_shapes_and_bad_values():
    p = _random_p(3, n=60)[:60].reshape(6, 10)  # one family, any shape
    np.testing.assert_allclose(bh_fdr(p), _bh_previous(p), rtol=1e-12, equal_nan=True)
    assert bh_fdr(np.array([])).shape == (0,)
    for bad in ([0.2, 1.5], [-0.1, 0.3]):
        with pytest.raises(ValueError, match="p must hold p-values in"):
            bh_fdr(bad)


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


def test_noise_ceiling_per_image_counts_against_planted_snr():
    from jnecore.scoring import ncsnr_from_repeats, ncsnr_from_sums, ncsnr_from_trials

    rng = np.random.default_rng(0)
    # s2 is estimated from ~50000 degrees of freedom: NC is off by at most 1.3 points over 20 seeds
    # (using the mean n instead of the mean 1/n would be 7 points off on the first voxel)
    n_img, v = 40000, 4
    signal_var = np.array([0.2, 0.4, 0.6, 0.8])
    noise_var = 1.0 - signal_var  # unit total variance, as for z-scored betas
    counts = rng.choice([1, 2, 3], size=n_img, p=[0.2, 0.3, 0.5])
    signal = rng.standard_normal((n_img, v)) * np.sqrt(signal_var)
    images = np.repeat(np.arange(n_img), counts)
    trials = signal[images] + rng.standard_normal((len(images), v)) * np.sqrt(noise_var)
    order = rng.permutation(len(images))  # trials in any order
    trials, images = trials[order], images[order]
    padded = np.full((n_img, 3, v), np.nan)  # (image, repeat, voxel), NaN = no such repeat
    by_image = np.argsort(images, kind="stable")
    slot = np.arange(len(images)) - np.repeat(np.cumsum(counts) - counts, counts)
    padded[images[by_image], slot] = trials[by_image]
    test_n = counts[:1000]  # the modelled (test) images: a mix of 1, 2 and 3 trials
    inv_n = np.mean(1.0 / test_n)

    # the sample s2 and the closed form NC = 100 ncsnr^2 / (ncsnr^2 + mean 1/n) written out
    s2 = np.mean([np.var(trials[images == i], axis=0, ddof=1) for i in range(300) if counts[i] >= 2], axis=0)
    snr_small = ncsnr_from_trials(trials[np.isin(images, np.arange(300))], images[np.isin(images, np.arange(300))])
    np.testing.assert_allclose(snr_small ** 2, (1 - s2) / s2, rtol=1e-10)

    by_repeats = noise_ceiling(padded, n=test_n)
    snr = ncsnr_from_trials(trials, images)
    np.testing.assert_allclose(snr, ncsnr_from_repeats(padded), rtol=1e-10)  # sums vs explicit variances
    np.testing.assert_allclose(noise_ceiling(ncsnr=snr, n=test_n), by_repeats, rtol=1e-10)
    total = np.zeros((n_img, v), np.float32)
    total_sq = np.zeros((n_img, v), np.float32)
    np.add.at(total, images, trials.astype(np.float32))
    np.add.at(total_sq, images, np.square(trials).astype(np.float32))
    np.testing.assert_allclose(ncsnr_from_sums(total, total_sq, counts, chunk=777), snr, rtol=1e-4)

    snr2 = signal_var / noise_var
    planted = 100 * snr2 / (snr2 + inv_n)
    np.testing.assert_allclose(by_repeats, planted, atol=2.0)
    assert np.all(np.diff(by_repeats) > 0)
    # the ceiling of single trials is lower than that of the averages, and the per-image counts sit between
    assert np.all(noise_ceiling(padded, n=1) < by_repeats) and np.all(by_repeats < noise_ceiling(padded, n=3))


def test_noise_ceiling_constant_n_equals_per_image_counts():
    r = np.array([[0.5, -0.5], [1.0, 1.0]])  # s2 = 0.25, ncsnr^2 = 3
    np.testing.assert_array_equal(noise_ceiling(r, n=3), noise_ceiling(r, n=np.full(40, 3)))
    np.testing.assert_allclose(noise_ceiling(r, n=np.full(40, 3)), [90.0])  # 100 * 3 * 3 / (1 + 3 * 3)
    # per-image counts 1 and 3: mean(1/n) = 2/3, i.e. n = 1.5 for every image
    np.testing.assert_allclose(noise_ceiling(r, n=[1, 3]), [100 * 3 / (3 + 2 / 3)])
    np.testing.assert_allclose(noise_ceiling(r, n=[1, 3]), noise_ceiling(r, n=1.5), rtol=1e-15)
    np.testing.assert_allclose(noise_ceiling(ncsnr=[np.sqrt(3), np.inf, 0.0], n=[1, 3]),
                               [100 * 3 / (3 + 2 / 3), 100.0, 0.0])
    for bad in (0, [], [1, 0], np.ones((2, 2)), np.nan):
        with pytest.raises(ValueError, match="n must be"):
            noise_ceiling(r, n=bad)
    with pytest.raises(ValueError, match="either repeats or ncsnr"):
        noise_ceiling(r, ncsnr=[1.0])
    with pytest.raises(ValueError, match="either repeats or ncsnr"):
        noise_ceiling()


def test_bootstrap_voxel_blocks_do_not_change_the_result():
    from jnecore.scoring import bootstrap_significance

    rng = np.random.default_rng(4)
    y = rng.normal(size=(30, 23))
    yhat = y * rng.uniform(-0.5, 1.0, 23) + rng.normal(size=(30, 23))
    whole = bootstrap_significance(y, yhat, n_boot=120, seed=2)
    blocks = bootstrap_significance(y, yhat, n_boot=120, seed=2, chunk=7, block_bytes=30 * 8 * 4)  # 4 columns
    for a, b in zip(whole, blocks):
        np.testing.assert_array_equal(a, b)
