"""ROI sets (parcels -> the paper's functional names), p / q formatting, tables without None / nan."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from jnecore import display_table, format_p, p_floor, summaries
from jnecore.atlas import (ROI_SETS, apply_roi_set, functional_names, functional_table, hierarchy_table,
                           roi_set_order)


# ------------------------------------------------------------------------------------------ the mapping


def test_shipped_table_maps_the_papers_names():
    t = functional_table()
    assert list(t.columns[:5]) == ["roi", "functional", "level", "caveat", "reference"]
    m = dict(zip(t["roi"], t["functional"]))
    assert m["FFC"] == "FFA" and m["RSC"] == "RSC"
    assert {r for r, f in m.items() if f == "PPA" and r.startswith("PHA")} == {"PHA1", "PHA2", "PHA3"}
    assert {"LO2", "PH", "TPOJ1"} <= {r for r, f in m.items() if f == "EBA"}
    assert {"V3CD", "IP0"} <= {r for r, f in m.items() if f == "OPA"}
    assert m["FFA-1"] == m["FFA-2"] == "FFA" and m["hV4"] == "V4"
    assert (t["caveat"] != "").all()  # every correspondence states its caveat
    approx = t[t["functional"].isin(["FFA", "PPA", "EBA", "OPA", "RSC"]) & t["roi"].isin(hierarchy_table("mmp")["roi"])]
    assert approx["caveat"].str.contains("Approximate|Rough").all()
    levels = dict(zip(t["functional"], t["level"]))
    assert levels["V1"] == "primary" and levels["V4"] == "intermediate" and levels["FFA"] == "higher"


def test_agrees_with_the_hierarchy_tables():
    """The hierarchy tables' functional_analogue column names the same ROI as this table."""
    t = functional_table()
    m = dict(zip(t["roi"], t["functional"]))
    h = hierarchy_table("all")
    paper = {"FFA", "PPA", "EBA", "OPA", "RSC"}
    for roi, fa in zip(h["roi"], h["functional_analogue"]):
        if fa in paper:
            assert m.get(roi) == fa, roi
    for roi, f in m.items():
        if f in paper and roi in set(h["roi"]):
            assert dict(zip(h["roi"], h["functional_analogue"]))[roi] == f, roi


def test_names_understand_hemisphere_prefixes():
    got = functional_names(["L_FFC_ROI", "R_PHA2", "lh.FFA-1", "V1", "L_MT", "", "ffc"])
    assert list(got) == ["FFA", "PPA", "FFA", "V1", "", "", "FFA"]
    assert functional_names([]).shape == (0,)


def test_user_csv_overrides(tmp_path):
    p = tmp_path / "mine.csv"
    pd.DataFrame({"roi": ["FFC", "VVC", "V1"], "functional": ["FFA", "FFA", "V1"]}).to_csv(p, index=False)
    t = functional_table(p)
    assert list(t["level"]) == ["higher", "higher", "primary"]  # blank level: the hierarchy's
    assert list(functional_names(["L_VVC", "L_PHA1"], p)) == ["FFA", ""]
    v = pd.DataFrame({"roi": ["L_VVC", "L_PHA1"], "level": "higher", "jne": [1.0, 2.0]})
    assert list(apply_roi_set(v, "functional", p)["roi"]) == ["FFA"]
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"roi": ["FFC"], "name": ["FFA"]}).to_csv(bad, index=False)
    with pytest.raises(ValueError, match="lacks the column"):
        functional_table(bad)
    pd.DataFrame({"roi": ["FFC", "FFC"], "functional": ["FFA", "X"]}).to_csv(bad, index=False)
    with pytest.raises(ValueError, match="duplicated"):
        functional_table(bad)
    pd.DataFrame({"roi": ["FFC", "V1"], "functional": ["A", "A"]}).to_csv(bad, index=False)
    with pytest.raises(ValueError, match="more than one level"):
        functional_table(bad)
    with pytest.raises(FileNotFoundError):
        functional_table(tmp_path / "missing.csv")


def _vertices(seed=0, n=3000):
    rng = np.random.default_rng(seed)
    parcels = np.array(["L_V1", "R_V1", "L_V2", "L_FFC", "R_FFC", "L_PHA1", "L_PHA3", "R_LO2", "L_TPOJ1", "L_MT",
                        "L_V3CD", "R_IP0", "L_RSC", "L_8Av"])
    roi = rng.choice(parcels, n)
    return pd.DataFrame({"vertex": np.arange(n), "roi": roi, "level": "other", "jne": rng.gamma(2, 0.1, n),
                         "significant": rng.random(n) < 0.7,
                         "r2_linear": rng.normal(0.1, 0.02, n), "r2_nonlinear": rng.normal(0.12, 0.02, n)})


def test_regrouped_summaries_equal_a_naive_groupby():
    v = _vertices()
    f = apply_roi_set(v, "functional")
    assert set(f["roi"]) == {"V1", "V2", "FFA", "PPA", "EBA", "OPA", "RSC"}  # MT, 8Av: no functional name
    assert len(f) == (~v["roi"].isin(["L_MT", "L_8Av"])).sum()
    got = summaries.roi_summary(f, "jne").set_index("roi")
    # naive: map each parcel by hand, then group
    by_hand = {"V1": "V1", "V2": "V2", "FFC": "FFA", "PHA1": "PPA", "PHA3": "PPA", "LO2": "EBA", "TPOJ1": "EBA",
               "V3CD": "OPA", "IP0": "OPA", "RSC": "RSC"}
    sig = v[v["significant"]].copy()
    sig["name"] = sig["roi"].str[2:].map(by_hand)
    want = sig.dropna(subset=["name"]).groupby("name")["jne"].agg(["count", "mean", "median", "std"])
    assert sorted(got.index) == sorted(want.index)
    for name in want.index:
        assert got.loc[name, "n"] == want.loc[name, "count"]
        np.testing.assert_allclose(got.loc[name, ["mean", "median", "std"]].to_numpy(dtype=float),
                                   want.loc[name, ["mean", "median", "std"]].to_numpy(dtype=float), rtol=1e-12)
    levels = summaries.level_summary(f, "jne").set_index("level")
    assert set(levels.index) == {"primary", "intermediate", "higher"}
    assert levels.loc["primary", "n"] == (sig["name"] == "V1").sum()
    assert apply_roi_set(v, "parcels") is v
    with pytest.raises(ValueError, match="unknown ROI set"):
        apply_roi_set(v, "brodmann")
    assert set(ROI_SETS) == {"parcels", "functional"}


def test_roi_group_table_regrouped_equals_naive():
    rng = np.random.default_rng(1)
    v = _vertices(n=400)
    ss = rng.gamma(2, 0.1, (12, len(v))).astype(np.float32)
    groups = np.array(["a", "b", "c"])[np.arange(12) % 3]
    names = functional_names(v["roi"])
    t = summaries.roi_group_table(ss, groups, names, vertex_mask=names != "").set_index(["roi", "group"])
    for name in ("FFA", "OPA"):
        cols = names == name
        for g in "abc":
            np.testing.assert_allclose(t.loc[(name, g), "mom"], ss[groups == g][:, cols].astype(float).mean(), rtol=1e-6)
    assert "" not in set(t.index.get_level_values("roi"))


def test_order_of_a_set():
    assert roi_set_order(["RSC", "zz", "FFA", "V2", "V1"]) == ["V1", "V2", "FFA", "RSC", "zz"]
    assert roi_set_order(["FFC", "V1"], "parcels") == ["V1", "FFC"]


# ------------------------------------------------------------------------------------------ formatting


def test_p_at_and_above_the_floor():
    assert p_floor(200) == pytest.approx(1 / 201)
    assert format_p(0.0, 200) == "< 0.005 (200 resamples)"
    assert format_p(1 / 201, 200) == "< 0.005 (200 resamples)"
    assert format_p(0.0, 1000) == "< 0.001 (1000 resamples)"
    assert format_p(0.0, 80) == "< 0.02 (80 resamples)"  # 1/81 = 0.0123, rounded *up*: the statement stays true
    assert format_p(0.0, 100) == "< 0.01 (100 resamples)"  # 1/101 = 0.0099
    assert format_p(0.006, 200) == "6.0e-03"  # above the floor: the value
    assert format_p(0.5, 200) == "5.0e-01"
    assert format_p(3.14159e-7) == "3.1e-07" and format_p(3.14159e-7, digits=3) == "3.14e-07"
    assert format_p(0.0) == "< 1e-300"  # an analytic p that underflowed
    for missing in (None, np.nan, float("inf"), pd.NA):
        assert format_p(missing, 200) == "n/a"
    with pytest.raises(ValueError):
        p_floor(0)


def test_display_table_has_no_none_or_nan():
    t = pd.DataFrame({"roi": ["V1", None, "FFC"], "top": ["a", "b", None], "margin": [1.5, np.nan, 2.0],
                      "n": [3, 4, 5], "p": [0.0, 0.02, np.nan], "q": [0.01, 0.5, 0.9],
                      "cat": pd.Categorical(["x", None, "y"])})
    d = display_table(t, n_resamples=200)
    cells = [str(x) for x in d.to_numpy().ravel()]
    assert not any(c in ("None", "nan", "NaN", "<NA>") or "nan" in c.lower().split() for c in cells)
    assert list(d["p"]) == ["< 0.005 (200 resamples)", "2.0e-02", "n/a"]
    assert list(d["q"]) == ["1.0e-02", "5.0e-01", "9.0e-01"]
    assert list(d["margin"]) == ["1.5", "", "2"] and list(d["roi"]) == ["V1", "", "FFC"]
    assert d["n"].dtype == t["n"].dtype  # complete numeric columns stay numbers
    assert list(t["margin"].isna()) == [False, True, False]  # the input is not changed
