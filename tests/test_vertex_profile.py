"""jnecore.vertex_profile: bootstrap CIs of a mean against closed forms, a vertex's profile by group."""

import numpy as np
import pandas as pd
import pytest

from jnecore.validation import InputError
from jnecore.vertex_profile import bootstrap_mean_ci, vertex_profile, vertex_row


def test_bootstrap_of_two_values_against_the_binomial():
    # resampled means of {0, 1} are k/2 with k ~ Binomial(2, 1/2): 0, 0.5, 1 with probability 1/4, 1/2, 1/4
    m, lo, hi = bootstrap_mean_ci([0.0, 1.0], n_boot=4000, ci=0.95, seed=1)
    assert (m, lo, hi) == (0.5, 0.0, 1.0)
    m, lo, hi = bootstrap_mean_ci([0.0, 1.0], n_boot=4000, ci=0.4, seed=1)  # 30th-70th percentile: 0.5
    assert (lo, hi) == (0.5, 0.5)


def test_bootstrap_interval_matches_the_normal_approximation():
    x = np.random.default_rng(3).normal(2.0, 1.0, 400)
    m, lo, hi = bootstrap_mean_ci(x, n_boot=4000, seed=0)
    se = x.std() / np.sqrt(len(x))
    assert m == pytest.approx(x.mean())
    assert lo == pytest.approx(m - 1.96 * se, abs=0.3 * se) and hi == pytest.approx(m + 1.96 * se, abs=0.3 * se)
    # a constant: no spread; one value: the value; none (NaN only): NaN
    assert bootstrap_mean_ci(np.full(10, 3.0)) == (3.0, 3.0, 3.0)
    assert bootstrap_mean_ci([np.nan, 7.0]) == (7.0, 7.0, 7.0)
    assert all(np.isnan(bootstrap_mean_ci([np.nan])))
    with pytest.raises(InputError, match="ci"):
        bootstrap_mean_ci(x, ci=1.5)


def test_vertex_profile_by_group_with_planted_means():
    rng = np.random.default_rng(0)
    groups = np.repeat(["face", "place", "body"], [30, 20, 10])
    means = {"face": 3.0, "place": 1.0, "body": 0.2}
    col = np.array([rng.normal(means[g], 0.1) for g in groups])
    p = vertex_profile(col, groups, n_boot=1000)
    assert list(p["group"]) == ["body", "face", "place"] and list(p["n_stimuli"]) == [10, 30, 20]
    for g, mean, lo, hi in p[["group", "mean", "lo", "hi"]].itertuples(index=False):
        sel = col[groups == g]
        assert mean == pytest.approx(sel.mean()) and lo < mean < hi and means[g] - 0.2 < lo and hi < means[g] + 0.2
    # a vertex without JNE-SS: NaN rows, no error
    assert p.pipe(lambda _: vertex_profile(np.full(60, np.nan), groups))["mean"].isna().all()
    with pytest.raises(InputError, match="groups"):
        vertex_profile(col, groups[:-1])


def test_vertex_row():
    v = pd.DataFrame({"vertex": [5, 9, 12], "roi": ["V1", "V2", "FFC"]})
    i, r = vertex_row(v, 9)
    assert i == 1 and r["roi"] == "V2"
    assert vertex_row(v, 7) == (None, None)
