"""ROI / level summaries, one-sided tests under FDR, MoJ / MoM group tables, top stimuli."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from jnecore import summaries


@pytest.fixture
def vertices():
    rng = np.random.default_rng(0)
    rows = []
    for roi, level, mu, n in (("V1", "primary", 1.0, 40), ("V2", "intermediate", 2.0, 30),
                              ("V4", "intermediate", 2.5, 30), ("FFC", "higher", 4.0, 50)):
        for _ in range(n):
            rows.append((roi, level, mu + rng.normal(0, 0.5), True))
    df = pd.DataFrame(rows, columns=["roi", "level", "jne", "significant"])
    df.loc[::10, "significant"] = False
    return df


def test_roi_summary_matches_pandas(vertices):
    out = summaries.roi_summary(vertices, "jne")
    sig = vertices[vertices.significant]
    assert list(out["roi"]) == ["V1", "V2", "V4", "FFC"]  # by level, then by mean
    for _, row in out.iterrows():
        x = sig.loc[sig.roi == row.roi, "jne"]
        assert row.n == len(x)
        assert row["mean"] == pytest.approx(x.mean())
        assert row["sem"] == pytest.approx(x.std(ddof=1) / np.sqrt(len(x)))
    assert summaries.roi_summary(vertices, "jne", significant_only=False)["n"].sum() == len(vertices)


def test_level_summary_order(vertices):
    out = summaries.level_summary(vertices)
    assert list(out["level"]) == ["primary", "intermediate", "higher"]
    assert out["mean"].is_monotonic_increasing


def test_pairwise_tests_one_sided_fdr(vertices):
    out = summaries.pairwise_tests(vertices, "level", "jne")
    assert len(out) == 6
    sig = vertices[vertices.significant]
    row = out[(out.a == "higher") & (out.b == "primary")].iloc[0]
    ref = stats.mannwhitneyu(sig.loc[sig.level == "higher", "jne"], sig.loc[sig.level == "primary", "jne"],
                             alternative="greater")
    assert row.p == pytest.approx(ref.pvalue)
    assert row.q < 0.001
    # the reverse direction is not significant
    assert out[(out.a == "primary") & (out.b == "higher")].iloc[0].p > 0.99
    assert (out.q >= out.p - 1e-15).all()
    welch = summaries.pairwise_tests(vertices, "level", "jne", test="welch")
    ref = stats.ttest_ind(sig.loc[sig.level == "higher", "jne"], sig.loc[sig.level == "primary", "jne"],
                          equal_var=False, alternative="greater")
    assert welch[(welch.a == "higher") & (welch.b == "primary")].iloc[0].p == pytest.approx(ref.pvalue)


def test_group_tables_recover_planted_selectivity():
    rng = np.random.default_rng(1)
    groups = np.array(["face", "scene", "body"] * 20)
    rois = np.array(["FFC"] * 5 + ["PHA1"] * 4 + ["V1"] * 3)
    ss = rng.random((60, 12)) * 0.1
    ss[np.ix_(groups == "face", np.flatnonzero(rois == "FFC"))] += 1.0
    ss[np.ix_(groups == "scene", np.flatnonzero(rois == "PHA1"))] += 2.0
    ss[:, 11] = np.nan  # not computed
    names, moj = summaries.group_moj(ss, groups)
    assert list(names) == ["body", "face", "scene"]
    np.testing.assert_allclose(moj[1, :5], ss[groups == "face", :5].mean(0))
    table = summaries.roi_group_table(ss, groups, rois)
    ffc = table[table.roi == "FFC"].set_index("group")
    assert ffc["mom"].idxmax() == "face"
    assert ffc.loc["face", "mom"] == pytest.approx(ss[groups == "face"][:, :5].mean())
    assert ffc.loc["face", "mom_norm"] == 1.0 and ffc["mom_norm"].min() == 0.0
    assert table[table.roi == "PHA1"].set_index("group")["mom"].idxmax() == "scene"
    assert table[table.roi == "V1"]["n_vertices"].iloc[0] == 2  # the NaN vertex is left out
    drivers = summaries.group_drivers(table, "scene")
    assert drivers.iloc[0]["roi"] == "PHA1"
    stim = pd.DataFrame({"stimulus": [f"s{i}" for i in range(60)], "category": groups})
    top = summaries.top_stimuli(ss, stim, rois == "FFC", k=5)
    assert list(top["rank"]) == [1, 2, 3, 4, 5] and set(top["category"]) == {"face"}
    assert top["score"].is_monotonic_decreasing


def test_selectivity_margins_by_hand():
    table = pd.DataFrame({
        "roi": ["FFC"] * 3 + ["V1"] * 3 + ["LO2"],
        "group": ["face", "body", "scene", "face", "body", "scene", "body"],
        "mom": [0.6, 0.2, 0.3, 0.1, 0.1, 0.4, 0.5],
    })
    m = summaries.selectivity_margins(table, expected={"FFC": "face", "V1": "face", "LO2": "body"}).set_index("roi")
    assert list(m.index) == ["FFC", "V1", "LO2"]  # the table's order
    assert (m.loc["FFC", "top"], m.loc["FFC", "runner_up"]) == ("face", "scene")
    assert m.loc["FFC", "margin"] == pytest.approx(0.6 / 0.3) == m.loc["FFC", "expected_margin"]
    # a tie for the runner-up, and an expected group that is not the top one
    assert m.loc["V1", "top"] == "scene" and m.loc["V1", "margin"] == pytest.approx(4.0)
    assert m.loc["V1", "expected_margin"] == pytest.approx(0.1 / 0.4)
    # one group only: no runner-up, no margin
    assert pd.isna(m.loc["LO2", "runner_up"]) and np.isnan(m.loc["LO2", "margin"])
    assert np.isnan(m.loc["LO2", "expected_margin"])
    assert list(summaries.selectivity_margins(table).columns) == ["roi", "top", "runner_up", "margin"]


def test_selectivity_margins_of_a_planted_table():
    """On roi_group_table output: FFC's planted face preference is its top group, by the planted ratio."""
    groups = np.array(["face", "scene", "body"] * 10)
    rois = np.array(["FFC"] * 4 + ["PHA1"] * 4)
    ss = np.ones((30, 8))
    ss[np.ix_(groups == "face", np.flatnonzero(rois == "FFC"))] = 3.0
    ss[np.ix_(groups == "body", np.flatnonzero(rois == "FFC"))] = 1.5
    ss[np.ix_(groups == "scene", np.flatnonzero(rois == "PHA1"))] = 5.0
    m = summaries.selectivity_margins(summaries.roi_group_table(ss, groups, rois)).set_index("roi")
    assert m.loc["FFC", ["top", "runner_up"]].tolist() == ["face", "body"]
    assert m.loc["FFC", "margin"] == pytest.approx(2.0)
    assert m.loc["PHA1", "top"] == "scene" and m.loc["PHA1", "margin"] == pytest.approx(5.0)


def test_same_inputs_ignores_only_the_trunk_and_device():
    base = {"space": "fsLR32k", "sources": {"features": "f.npy", "responses": "r.npy"},
            "counts": {"stimuli": 100, "train": 80, "val": 10, "test": 10, "vertices": 50, "excluded": 0,
                       "significant": 30},
            "config": {"hidden": 64, "seed": 0, "trunk": "shared", "device": "auto"}}
    roi = {**base, "config": {**base["config"], "trunk": "roi", "device": "cpu"},
           "counts": {**base["counts"], "significant": 28}}  # a different fit selects other vertices
    assert summaries.same_inputs(base, roi)
    assert not summaries.same_inputs(base, {**roi, "config": {**roi["config"], "hidden": 128}})
    assert not summaries.same_inputs(base, {**roi, "sources": {"features": "g.npy", "responses": "r.npy"}})
    assert not summaries.same_inputs(base, {**roi, "counts": {**roi["counts"], "test": 11}})
    assert not summaries.same_inputs(base, {**roi, "space": "fsaverage"})
    assert not summaries.same_inputs(base, {k: v for k, v in roi.items() if k != "config"})
    assert summaries.same_inputs(base, base, ignore=())


def test_roi_group_ci_equals_a_naive_bootstrap():
    """Percentile CIs of the MoM over resampled stimuli, against resampling the JNE-SS rows in a loop."""
    rng = np.random.default_rng(3)
    n, V = 30, 50
    groups = np.array(["face", "scene", "car"])[np.arange(n) % 3]
    ss = rng.gamma(2.0, 0.1, (n, V)).astype(np.float32) * np.where(groups == "face", 2.0, 1.0)[:, None]
    ss[:, 7] = np.nan  # a column without JNE-SS is left out
    mask = np.zeros(V, bool)
    mask[:20] = True
    B = 300
    got = summaries.roi_group_ci(ss, groups, mask, n_boot=B, ci=0.9, seed=5).set_index("group")
    # naive: the same draws (one generator, groups in sorted order), each resample's MoM from the
    # resampled rows of the (n, V) matrix: mean over the ROI's vertices of each vertex's mean
    draws = np.random.default_rng(5)
    cols = np.flatnonzero(mask & np.isfinite(ss).all(0))
    for g in sorted(set(groups)):
        rows = np.flatnonzero(groups == g)
        pick = draws.integers(0, len(rows), (B, len(rows)))
        moms = []
        for b in range(B):
            resampled = ss[rows[pick[b]]][:, cols].astype(np.float64)
            moms.append(resampled.mean(axis=0).mean())
        lo, hi = np.percentile(moms, [5, 95])
        mom = ss[rows][:, cols].astype(np.float64).mean(0).mean()
        np.testing.assert_allclose(got.loc[g, ["mom", "ci_low", "ci_high"]].to_numpy(dtype=float), [mom, lo, hi],
                                   rtol=1e-10)
        assert got.loc[g, "n_stimuli"] == len(rows) and got.loc[g, "n_vertices"] == len(cols)
    assert (got["n_boot"] == B).all()
    # the MoM is the roi_group_table one
    t = summaries.roi_group_table(ss, groups, np.where(mask, "R", "other"), vertex_mask=mask)
    np.testing.assert_allclose(t.set_index("group")["mom"].loc[got.index], got["mom"], rtol=1e-6)
    # seeded; more stimuli of the same kind give a narrower interval
    again = summaries.roi_group_ci(ss, groups, mask, n_boot=B, ci=0.9, seed=5).set_index("group")
    pd.testing.assert_frame_equal(got, again)
    wide = np.repeat(ss, 4, axis=0)
    narrow = summaries.roi_group_ci(wide, np.repeat(groups, 4), mask, n_boot=B, seed=5).set_index("group")
    base = summaries.roi_group_ci(ss, groups, mask, n_boot=B, seed=5).set_index("group")
    assert ((narrow["ci_high"] - narrow["ci_low"]) < (base["ci_high"] - base["ci_low"])).all()
    assert summaries.roi_group_ci(ss, groups, np.zeros(V, bool)).empty
    with pytest.raises(ValueError):
        summaries.roi_group_ci(ss, groups[:-1], mask)
