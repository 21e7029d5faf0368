"""Dashboard figures and exports, checked on the data carried by the plotly traces."""

from __future__ import annotations

import io
import re

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from scipy import stats

from jnecore import summaries
from jnecore.export import (ExportError, figure_html, full_mesh_values, gifti_available, gifti_bytes, table_csv,
                            write_gifti)
from jnecore.plotting import plot_margin_comparison
from jnecore.plotting import (LEVEL_COLORS, PLACEMENT_COLORS, compare_rois, noise_ceiling_fraction,
                              plot_group_drivers, plot_level_bars, plot_noise_ceiling_density, plot_placement,
                              plot_r2_by_roi, plot_r2_scatter, plot_roi_bars, plot_roi_comparison,
                              plot_roi_distributions, plot_roi_group_bars, plot_roi_group_heatmap, plot_sample_size,
                              plot_significant_counts, plot_single_neuron, plot_test_matrix, plot_top_stimuli,
                              r2_correlation_table, roi_group_matrix, significant_counts, vertex_difference,
                              encoders_present, plot_r2_distributions, plot_r2_pair_scatter, ridge_comparison)
from jnecore.plotting import RESULT_SYMBOLS, plot_placement_pairs

ROIS = {"V1": "primary", "V2": "intermediate", "V3": "intermediate", "V4": "intermediate", "FFC": "higher",
        "PHA1": "higher", "RSC": "higher"}
BASE = {"primary": 0.1, "intermediate": 0.3, "higher": 0.8}
CATS = ["face", "body", "outdoor scene", "indoor scene", "food"]


@pytest.fixture(scope="module")
def vertices():
    rng = np.random.default_rng(0)
    rows = []
    vid = 0
    for roi, lv in ROIS.items():
        n = 40
        for _ in range(n):
            lin = rng.uniform(0.0, 0.5)
            rows.append(dict(vertex=vid, hemi="left" if vid % 2 == 0 else "right", roi=roi, level=lv, r2_linear=lin,
                             r2_nonlinear=lin + rng.normal(0.03, 0.02), p_fdr=rng.uniform(0, 0.2),
                             jne=BASE[lv] * np.exp(rng.normal(0, 0.2)), excluded=False))
            vid += 1
    v = pd.DataFrame(rows)
    v["significant"] = v["p_fdr"] < 0.15
    v.loc[v.index[::7], "jne"] = np.nan
    v["noise_ceiling"] = np.clip(100 * v["r2_nonlinear"] / rng.uniform(0.5, 1.2, len(v)), 0, 100)
    v.loc[v.index[:3], "noise_ceiling"] = np.nan
    return v


@pytest.fixture(scope="module")
def jne_ss(vertices):
    rng = np.random.default_rng(1)
    n_test = 50
    ss = rng.gamma(2.0, 0.01, (n_test, len(vertices))).astype(np.float32)
    cats = np.array([CATS[i % len(CATS)] for i in range(n_test)])
    ffc = (vertices["roi"] == "FFC").to_numpy()
    ss[np.ix_(cats == "face", ffc)] *= 5
    ss[:, ~np.isfinite(vertices["jne"].to_numpy())] = np.nan
    stim = pd.DataFrame({"stimulus": [f"s{i:03d}" for i in range(n_test)], "split": "test", "category": cats})
    return ss, stim


@pytest.fixture(scope="module")
def roi_group(vertices, jne_ss):
    ss, stim = jne_ss
    mask = vertices["significant"].to_numpy() & np.isfinite(vertices["jne"].to_numpy())
    return summaries.roi_group_table(ss, stim["category"].to_numpy(), vertices["roi"].to_numpy(), vertex_mask=mask)


def _bars(fig):
    """{x: (y, colour, error)} over every bar trace."""
    out = {}
    for tr in fig.data:
        if tr.type != "bar":
            continue
        colors = tr.marker.color
        errs = tr.error_y.array if tr.error_y is not None and tr.error_y.array is not None else [None] * len(tr.x)
        for i, (x, y) in enumerate(zip(tr.x, tr.y)):
            c = colors if isinstance(colors, str) else colors[i]
            out[x] = (y, c, errs[i])
    return out


# ---------------------------------------------------------------------------------------------- ROI


def test_roi_bars_heights_order_colours(vertices):
    s = summaries.roi_summary(vertices, "jne", roi_order=list(ROIS))
    fig = plot_roi_bars(s, highlight_roi="FFC")
    bars = _bars(fig)
    assert set(bars) == set(s["roi"])
    for row in s.itertuples():
        y, color, err = bars[row.roi]
        assert y == pytest.approx(row.mean)
        assert err == pytest.approx(row.sem)
        assert color == LEVEL_COLORS[row.level]
    assert list(fig.layout.xaxis.categoryarray) == list(s["roi"]) == list(ROIS)
    # legend = levels, in hierarchy order
    assert [tr.name for tr in fig.data] == ["primary", "intermediate", "higher"]
    widths = {x: w for tr in fig.data for x, w in zip(tr.x, tr.marker.line.width)}
    assert widths["FFC"] > 0 and widths["V1"] == 0
    assert "mean ± SEM" in fig.layout.title.text


def test_roi_bars_std_and_bad_error(vertices):
    s = summaries.roi_summary(vertices, "jne")
    bars = _bars(plot_roi_bars(s, error="std"))
    for row in s.itertuples():
        assert bars[row.roi][2] == pytest.approx(row.std)
    with pytest.raises(ValueError, match="error"):
        plot_roi_bars(s, error="ci")


def test_level_bars(vertices):
    ls = summaries.level_summary(vertices, "jne")
    fig = plot_level_bars(ls)
    tr = fig.data[0]
    assert list(tr.x) == ["primary", "intermediate", "higher"]
    np.testing.assert_allclose(tr.y, ls.set_index("level").loc[list(tr.x), "mean"])
    assert list(tr.marker.color) == [LEVEL_COLORS[x] for x in tr.x]
    assert tr.y[0] < tr.y[1] < tr.y[2]  # the planted hierarchy


@pytest.mark.parametrize("kind", ["violin", "box"])
def test_roi_distributions(vertices, kind):
    fig = plot_roi_distributions(vertices, "jne", kind=kind)
    assert all(tr.type == kind for tr in fig.data)
    names = [tr.name for tr in fig.data]
    assert set(names) == set(ROIS)
    levels = [ROIS[n] for n in names]
    assert levels == sorted(levels, key=["primary", "intermediate", "higher"].index)  # level order
    sig = vertices[vertices["significant"] & vertices["jne"].notna()]
    for tr in fig.data:
        np.testing.assert_allclose(np.sort(tr.y), np.sort(sig.loc[sig["roi"] == tr.name, "jne"]))
        assert tr.marker.color == LEVEL_COLORS[ROIS[tr.name]]
    sub = plot_roi_distributions(vertices, "jne", kind=kind, rois=["V1", "FFC"], roi_order=["FFC", "V1"])
    assert [tr.name for tr in sub.data] == ["FFC", "V1"]


def test_test_matrix_cells_equal_q(vertices):
    tests = summaries.pairwise_tests(vertices, "level", "jne")
    fig = plot_test_matrix(tests, groups=["primary", "intermediate", "higher"])
    hm = fig.data[0]
    assert hm.type == "heatmap"
    z = np.asarray(hm.z, dtype=float)
    for row in tests.itertuples():
        i, j = list(hm.y).index(row.a), list(hm.x).index(row.b)
        assert z[i, j] == pytest.approx(row.q)
        assert ("*" in hm.text[i][j]) == (row.q < 0.05)
    assert np.isnan(np.diag(z)).all()
    # higher > primary is strongly significant with the planted hierarchy
    assert z[list(hm.y).index("higher"), list(hm.x).index("primary")] < 0.05
    pz = np.asarray(plot_test_matrix(tests, value="p").data[0].z, dtype=float)
    for row in tests.itertuples():
        assert pz[list(hm.y).index(row.a), list(hm.x).index(row.b)] == pytest.approx(row.p)


def test_r2_scatter_title_r_equals_scipy(vertices):
    fig = plot_r2_scatter(vertices)
    sig = vertices[vertices["significant"]]
    r = stats.pearsonr(sig["r2_linear"], sig["r2_nonlinear"])[0]
    m = re.search(r"Pearson r = ([-0-9.]+) \(n = (\d+)\)", fig.layout.title.text)
    assert m and float(m.group(1)) == pytest.approx(r, abs=5e-4) and int(m.group(2)) == len(sig)
    assert fig.data[-1].name == "y = x" and fig.data[-1].x[0] == fig.data[-1].y[0]
    assert sum(len(tr.x) for tr in fig.data[:-1]) == len(sig)
    one = plot_r2_scatter(vertices, rois=["FFC"])
    ffc = sig[sig["roi"] == "FFC"]
    r_ffc = stats.pearsonr(ffc["r2_linear"], ffc["r2_nonlinear"])[0]
    assert f"{r_ffc:.3f}" in one.layout.title.text and "(FFC)" in one.layout.title.text
    small = plot_r2_scatter(vertices, max_points=50)
    assert sum(len(tr.x) for tr in small.data[:-1]) == 50
    assert f"{r:.3f}" in small.layout.title.text  # r still uses every vertex


def test_r2_correlation_table(vertices):
    t = r2_correlation_table(vertices)
    assert list(t["roi"]) == list(ROIS)
    sig = vertices[vertices["significant"]]
    for row in t.itertuples():
        g = sig[sig["roi"] == row.roi]
        r, pv = stats.pearsonr(g["r2_linear"], g["r2_nonlinear"])
        assert row.pearson_r == pytest.approx(r, rel=1e-10) and row.p == pytest.approx(pv, rel=1e-8)
        assert row.n == len(g)
        assert row.mean_r2_linear == pytest.approx(g["r2_linear"].mean())
    # fewer than three pairs, or no spread: r and p are not defined
    few = vertices[vertices["roi"].isin(["V1", "V2"])].copy()
    few = pd.concat([few[few["roi"] == "V1"].head(2), few[few["roi"] == "V2"].assign(r2_linear=0.2)])
    t = r2_correlation_table(few.assign(significant=True)).set_index("roi")
    assert t.loc["V1", "n"] == 2 and np.isnan(t.loc["V1", "pearson_r"]) and np.isnan(t.loc["V2", "p"])


# --------------------------------------------------------------------------------------- selectivity


@pytest.mark.parametrize("normalised", [False, True])
def test_heatmap_z_equals_mom_table(roi_group, normalised):
    order = list(ROIS)
    fig = plot_roi_group_heatmap(roi_group, normalised=normalised, roi_order=order, highlight_roi="FFC")
    hm = fig.data[0]
    col = "mom_norm" if normalised else "mom"
    expect = roi_group.pivot(index="roi", columns="group", values=col).loc[order, sorted(CATS)]
    np.testing.assert_allclose(np.asarray(hm.z, dtype=float), expect.to_numpy())
    assert list(hm.x) == sorted(CATS)
    assert [y.replace("<b>", "").replace("</b>", "") for y in hm.y] == order
    assert "<b>FFC</b>" in hm.y
    if normalised:
        z = np.asarray(hm.z, dtype=float)
        np.testing.assert_allclose(z.min(1), 0)
        np.testing.assert_allclose(z.max(1), 1)
    # FFC's planted face selectivity is its maximum
    ffc = expect.loc["FFC"]
    assert ffc.idxmax() == "face"


def test_heatmap_relative_scale(roi_group):
    fig = plot_roi_group_heatmap(roi_group, scale="group", roi_order=list(ROIS))
    z = np.asarray(fig.data[0].z, dtype=float)
    raw = roi_group.pivot(index="roi", columns="group", values="mom").loc[list(ROIS), sorted(CATS)].to_numpy()
    np.testing.assert_allclose(z, raw / raw.mean(0))
    assert fig.data[0].zmin + fig.data[0].zmax == pytest.approx(2.0)  # centred on 1
    with pytest.raises(ValueError, match="scale"):
        roi_group_matrix(roi_group, scale="zscore")


def test_matrix_normalises_without_mom_norm(roi_group):
    a = roi_group_matrix(roi_group, normalised=True)
    b = roi_group_matrix(roi_group.drop(columns="mom_norm"), normalised=True)
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), atol=1e-12)


def test_roi_group_bars(roi_group):
    fig = plot_roi_group_bars(roi_group, "FFC")
    tr = fig.data[0]
    sub = roi_group[roi_group["roi"] == "FFC"].sort_values("mom", ascending=False)
    assert list(tr.x) == list(sub["group"])
    np.testing.assert_allclose(tr.y, sub["mom"])
    np.testing.assert_allclose(tr.error_y.array, sub["sem"])
    assert tr.x[0] == "face"
    norm = plot_roi_group_bars(roi_group, "FFC", normalised=True).data[0]
    assert max(norm.y) == pytest.approx(1.0) and min(norm.y) == pytest.approx(0.0)


def test_top_stimuli_and_drivers(vertices, jne_ss, roi_group):
    ss, stim = jne_ss
    mask = (vertices["roi"] == "FFC").to_numpy() & np.isfinite(vertices["jne"].to_numpy())
    top = summaries.top_stimuli(ss, stim, mask, k=8)
    fig = plot_top_stimuli(top, roi="FFC")
    got = {y: x for tr in fig.data for y, x in zip(tr.y, tr.x)}
    assert got == pytest.approx(dict(zip(top["stimulus"], top["score"])))
    assert list(fig.layout.yaxis.categoryarray) == list(top["stimulus"])
    assert {tr.name for tr in fig.data} == set(top["category"])
    assert top["category"].iloc[0] == "face"

    drivers = summaries.group_drivers(roi_group, "face")
    levels = dict(zip(vertices["roi"], vertices["level"]))
    fig = plot_group_drivers(drivers, "face", levels=levels, top=4)
    tr = fig.data[0]
    assert list(tr.x) == list(drivers["roi"].head(4)) and tr.x[0] == "FFC"
    np.testing.assert_allclose(tr.y, drivers["mom"].head(4))
    assert list(tr.marker.color) == [LEVEL_COLORS[levels[r]] for r in tr.x]


# --------------------------------------------------------------------------------------- performance


def test_noise_ceiling_density(vertices):
    fig = plot_noise_ceiling_density(vertices)
    hm, ident, eighty = fig.data
    ok = vertices["noise_ceiling"].notna() & vertices["r2_nonlinear"].notna()
    assert np.nansum(np.asarray(hm.customdata, dtype=float)) == ok.sum()
    assert ident.name == "y = x" and ident.y[1] == pytest.approx(ident.x[1])
    assert eighty.y[1] == pytest.approx(0.8 * eighty.x[1])
    share, n = noise_ceiling_fraction(vertices)
    nc = vertices.loc[ok, "noise_ceiling"]
    r2 = 100 * vertices.loc[ok, "r2_nonlinear"]
    keep = nc > 0
    assert n == keep.sum()
    assert share == pytest.approx(np.mean(r2[keep] >= 0.8 * nc[keep]))
    assert f"{100 * share:.1f}%" in fig.layout.title.text
    with pytest.raises(KeyError):
        plot_noise_ceiling_density(vertices.drop(columns="noise_ceiling"))


def test_r2_by_roi_and_counts(vertices):
    fig = plot_r2_by_roi(vertices)
    lin, non = fig.data
    sig = vertices[vertices["significant"]]
    for tr, col in ((lin, "r2_linear"), (non, "r2_nonlinear")):
        for x, y in zip(tr.x, tr.y):
            assert y == pytest.approx(sig.loc[sig["roi"] == x, col].mean())
    assert ROIS[lin.x[0]] == "primary" and ROIS[lin.x[-1]] == "higher"

    counts = significant_counts(vertices)
    for row in counts.itertuples():
        g = vertices[vertices["roi"] == row.roi]
        assert row.n_vertices == len(g) and row.n_significant == g["significant"].sum()
    fig = plot_significant_counts(counts)
    assert fig.layout.barmode == "stack"
    np.testing.assert_allclose(np.asarray(fig.data[0].y) + np.asarray(fig.data[1].y), counts["n_vertices"])


@pytest.fixture(scope="module")
def with_ridge(vertices):
    """The vertex table of a run that fitted the ridge baseline: ridge R² a little under the linear network's."""
    rng = np.random.default_rng(5)
    v = vertices.assign(r2_ridge=vertices["r2_linear"] - 0.02 + rng.normal(0, 0.03, len(vertices)))
    v.loc[v.index[5], "r2_ridge"] = np.nan
    return v


def test_r2_by_roi_with_and_without_ridge(vertices, with_ridge):
    assert encoders_present(vertices) == ["linear", "nonlinear"]
    assert [t.name for t in plot_r2_by_roi(vertices).data] == ["linear", "nonlinear"]
    assert encoders_present(with_ridge) == ["linear", "nonlinear", "ridge"]
    fig = plot_r2_by_roi(with_ridge, significant_only=False)
    assert [t.name for t in fig.data] == ["linear", "nonlinear", "ridge"]
    for x, y in zip(fig.data[2].x, fig.data[2].y):
        assert y == pytest.approx(with_ridge.loc[with_ridge["roi"] == x, "r2_ridge"].mean())
    assert list(fig.data[2].x) == list(fig.data[0].x)


def test_r2_distributions_with_and_without_ridge(vertices, with_ridge):
    for v, names in ((vertices, ["linear", "nonlinear"]), (with_ridge, ["linear", "nonlinear", "ridge"])):
        fig = plot_r2_distributions(v)
        assert [t.name for t in fig.data] == names
        for tr in fig.data:
            col = v[f"r2_{tr.name}"].dropna()
            np.testing.assert_allclose(np.sort(tr.y), np.sort(col))
            assert f"{tr.name} {col.median():.3f}" in fig.layout.title.text
    sig = plot_r2_distributions(with_ridge, significant_only=True)
    assert len(sig.data[2].y) == with_ridge.loc[with_ridge["significant"], "r2_ridge"].notna().sum()


def test_ridge_vs_linear_scatter(vertices, with_ridge):
    fig = plot_r2_pair_scatter(with_ridge, x="ridge", y="linear")
    *levels, ident = fig.data
    assert ident.name == "y = x" and {t.name for t in levels} == set(ROIS.values())
    ok = with_ridge.dropna(subset=["r2_ridge", "r2_linear"])
    xs = np.concatenate([t.x for t in levels])
    ys = np.concatenate([t.y for t in levels])
    assert len(xs) == len(ok)
    np.testing.assert_allclose(np.sort(xs), np.sort(ok["r2_ridge"]))
    np.testing.assert_allclose(np.sort(ys), np.sort(ok["r2_linear"]))
    r = stats.pearsonr(ok["r2_ridge"], ok["r2_linear"])[0]
    above = np.mean(ok["r2_linear"] > ok["r2_ridge"])
    assert f"r = {r:.3f}" in fig.layout.title.text and f"{100 * above:.1f}% of {len(ok)}" in fig.layout.title.text
    assert fig.layout.xaxis.title.text == "R² ridge encoder"
    with pytest.raises(KeyError, match="r2_ridge"):
        plot_r2_pair_scatter(vertices, x="ridge", y="linear")


def test_ridge_comparison_and_noise_ceiling(vertices, with_ridge):
    t = ridge_comparison(with_ridge)
    assert list(t["encoder"]) == ["linear", "nonlinear"]
    for row in t.itertuples():
        ok = with_ridge.dropna(subset=["r2_ridge", f"r2_{row.encoder}"])
        gain = ok[f"r2_{row.encoder}"] - ok["r2_ridge"]
        assert row.n == len(ok) and row.mean_r2_ridge == pytest.approx(ok["r2_ridge"].mean())
        assert row.median_gain == pytest.approx(gain.median())
        assert row.share_above_ridge == pytest.approx((gain > 0).mean())
    assert t.loc[t["encoder"] == "linear", "median_gain"].item() == pytest.approx(0.02, abs=0.01)  # as planted
    with pytest.raises(KeyError, match="r2_ridge"):
        ridge_comparison(vertices)
    fig = plot_noise_ceiling_density(with_ridge, model="ridge")
    ok = with_ridge["noise_ceiling"].notna() & with_ridge["r2_ridge"].notna()
    assert np.nansum(np.asarray(fig.data[0].customdata, dtype=float)) == ok.sum()
    assert "ridge encoder" in fig.layout.title.text


# --------------------------------------------------------------------------------------- simulations


@pytest.fixture(scope="module")
def sims():
    x = np.linspace(-3, 3, 61)
    rows = []
    for act in ("relu", "gelu"):
        phi2 = np.exp(-x ** 2 / 0.1) if act == "relu" else np.exp(-x ** 2 / 2)
        jne = 0.01 * phi2 + 1e-4 * np.cos(x)
        rows += [dict(activation=act, centre=c, jne=j, second_derivative=p, abs_second_derivative=p)
                 for c, j, p in zip(x, jne, phi2)]
    curves = pd.DataFrame(rows)
    summary = pd.DataFrame([dict(activation=a, pearson_r=stats.pearsonr(g["jne"], g["abs_second_derivative"])[0],
                                 spearman_r=0.9) for a, g in curves.groupby("activation", sort=False)])
    pl = pd.DataFrame([dict(activation=a, placement=p, mean=m, std=m / 4, sem=m / 20, n=16)
                       for a in ("relu", "gelu") for p, m in zip(("none", "Loc1", "Loc2", "both"), (0, 3, 2, 5))])
    ss = pd.DataFrame(dict(n_samples=[10, 100, 1000], pearson_r=[0.5, 0.9, 0.99], spearman_r=[0.4, 0.85, 0.98]))
    return curves, summary, pl, ss


def test_single_neuron(sims):
    curves, summary, _, _ = sims
    fig = plot_single_neuron(curves, summary)
    titles = [a.text for a in fig.layout.annotations]
    for row in summary.itertuples():
        assert f"{row.activation}: r = {row.pearson_r:.3f}" in titles
    assert len(fig.data) == 4 and [tr.name for tr in fig.data[:2]] == ["JNE", "|φ''|"]
    assert max(fig.data[0].y) == pytest.approx(1.0)
    raw = plot_single_neuron(curves, None, normalise=False)
    np.testing.assert_allclose(raw.data[0].y, curves[curves["activation"] == "relu"]["jne"])
    assert [a.text for a in raw.layout.annotations] == titles  # r recomputed = the summary's


def test_placement_and_sample_size(sims):
    _, _, pl, ss = sims
    fig = plot_placement(pl, error="std")  # an old table: no architecture / init / CI columns
    assert [tr.name for tr in fig.data] == ["none", "Loc1", "Loc2", "both"]
    for tr in fig.data:
        sub = pl[pl["placement"] == tr.name].set_index("activation").loc[list(tr.x)]
        np.testing.assert_allclose(tr.y, sub["mean"])
        np.testing.assert_allclose(tr.error_y.array, sub["std"])
        assert tr.marker.color == PLACEMENT_COLORS[tr.name]
    sem = plot_placement(pl, error="sem")
    np.testing.assert_allclose(sem.data[1].error_y.array, pl[pl["placement"] == "Loc1"]["sem"])
    fig = plot_sample_size(ss)
    np.testing.assert_allclose(fig.data[0].y, ss["pearson_r"])
    assert fig.layout.xaxis.type == "log"


def test_placement_panels_cis_and_pairs():
    from jnecore.simulate import placement_tables

    rng = np.random.default_rng(0)
    rows = [dict(architecture=arch, init=init, activation=act, placement=p, repeat=r,
                 jne=0.0 if p == "none" else scale * (m + 0.1 * rng.standard_normal()))
            for arch in ("residual", "plain") for init, scale in (("default", 1.0), ("normal", 100.0))
            for act in ("relu", "gelu") for r in range(6)
            for p, m in zip(("none", "Loc1", "Loc2", "both"), (0, 1, 2, 3) if arch == "residual" else (0, 2, 1, 3))]
    t = placement_tables(pd.DataFrame(rows))
    summary, pairs, order = t["summary"], t["pairs"], t["order"]
    fig = plot_placement(summary, order=order)
    assert len(fig.data) == 4 * 4  # 4 panels x 4 placements
    titles = [a.text for a in fig.layout.annotations]
    assert titles == [f"{arch}, init={init} — paper's order in {n}/2" for arch, n in (("residual", 2), ("plain", 0))
                      for init in ("default", "normal")]
    loc1 = fig.data[1]  # residual / default panel, Loc1
    sub = summary[(summary.architecture == "residual") & (summary.init == "default") & (summary.placement == "Loc1")]
    np.testing.assert_allclose(loc1.y, sub["mean"])
    np.testing.assert_allclose(np.asarray(loc1.y) + loc1.error_y.array, sub["ci_high"])
    np.testing.assert_allclose(np.asarray(loc1.y) - loc1.error_y.arrayminus, sub["ci_low"])
    assert fig.data[5].yaxis == "y2" and not fig.layout.yaxis2.matches  # own y axis per panel
    with pytest.raises(ValueError, match="ci_low"):
        plot_placement(summary.drop(columns=["ci_low", "ci_high"]))
    fig = plot_placement_pairs(pairs)
    assert list(fig.layout.annotations[i].text for i in range(3)) == ["Loc1 − none", "Loc2 − Loc1", "both − Loc2"]
    panel = [tr for tr in fig.data if tr.meta == {"config": "plain, init=default", "pair": "Loc2 − Loc1"}]
    assert [tr.name for tr in panel] == ["contradicts"]  # plain: Loc2 below Loc1 in every repeat
    tr = panel[0]
    sel = pairs[(pairs.architecture == "plain") & (pairs.init == "default") & (pairs.lower == "Loc1")
                & (pairs.upper == "Loc2")].set_index("activation").loc[list(tr.x)]
    assert list(tr.x) == ["relu", "gelu"] and (sel["result"] == "contradicts").all()
    np.testing.assert_allclose(tr.y, sel["mean_diff"])
    np.testing.assert_allclose(np.asarray(tr.y) + tr.error_y.array, sel["ci_high"])
    np.testing.assert_allclose(np.asarray(tr.y) - tr.error_y.arrayminus, sel["ci_low"])
    assert tr.marker.symbol == RESULT_SYMBOLS["contradicts"]
    ok = [tr for tr in fig.data if tr.meta["config"] == "residual, init=normal"]
    assert {tr.name for tr in ok} == {"supports"} and len(ok) == 3
    assert sum(tr.showlegend is not False for tr in fig.data) == 2  # one legend entry per result present
    assert len({tr.meta["pair"] for tr in plot_placement_pairs(pairs, adjacent_only=False).data}) == 6


# --------------------------------------------------------------------------------------- compare


def test_compare_rois_and_scatter(vertices):
    other = vertices.copy()
    other["jne"] = other["jne"] * 1.5
    t = compare_rois(vertices, other)
    sa = summaries.roi_summary(vertices).set_index("roi")
    for row in t.itertuples():
        assert row.mean_a == pytest.approx(sa.loc[row.roi, "mean"])
        assert row.mean_b == pytest.approx(1.5 * row.mean_a)
        assert row.diff == pytest.approx(row.mean_b - row.mean_a)
    fig = plot_roi_comparison(t, label_a="A", label_b="B")
    r = stats.pearsonr(t["mean_a"], t["mean_b"])[0]
    assert f"Pearson r = {r:.3f}" in fig.layout.title.text
    pts = {txt: (x, y) for tr in fig.data if tr.name != "y = x" for txt, x, y in zip(tr.text, tr.x, tr.y)}
    assert set(pts) == set(t["roi"])
    assert fig.data[-1].name == "y = x"


def test_vertex_difference(vertices):
    other = vertices.iloc[10:].copy()
    other["jne"] = other["jne"] + 0.5
    d = vertex_difference(vertices, other)
    assert len(d) == len(other)
    assert set(d["vertex"]) == set(other["vertex"])
    ok = d["a"].notna()
    np.testing.assert_allclose(d.loc[ok, "diff"], 0.5)


# --------------------------------------------------------------------------------------- exports


def test_table_csv_and_html(vertices):
    csv = table_csv(vertices.head(5))
    back = pd.read_csv(io.BytesIO(csv))
    assert list(back.columns) == list(vertices.columns) and len(back) == 5
    fig = go.Figure(go.Bar(x=["a"], y=[1.25], name="unique-trace-name"))
    html = figure_html(fig).decode()
    assert "<html>" in html[:100] and "unique-trace-name" in html and "plotly" in html.lower()
    assert len(figure_html(fig, include_plotlyjs="cdn")) < len(html)


def test_gifti_roundtrip(tmp_path):
    import nibabel as nib

    vert = np.array([0, 5, 32491, 32492, 32492 + 7])
    vals = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    left = nib.GiftiImage.from_bytes(gifti_bytes(vals, vert, "fsLR32k", "left"))
    right = nib.GiftiImage.from_bytes(gifti_bytes(vals, vert, "fsLR32k", "right"))
    dl, dr = left.darrays[0].data, right.darrays[0].data
    assert dl.shape == dr.shape == (32492,) and dl.dtype == np.float32
    assert dl[0] == 1 and dl[5] == 2 and dl[32491] == 3 and np.isfinite(dl).sum() == 3
    assert dr[0] == 4 and dr[7] == 5 and np.isfinite(dr).sum() == 2
    assert left.meta["AnatomicalStructurePrimary"] == "CortexLeft"
    assert right.meta["AnatomicalStructurePrimary"] == "CortexRight"
    paths = write_gifti(vals, vert, "fsLR32k", tmp_path / "jne")
    assert [p.name for p in paths] == ["jne.L.func.gii", "jne.R.func.gii"]
    assert np.isfinite(nib.load(paths[1]).darrays[0].data).sum() == 2
    assert full_mesh_values(vals[:2], vert[:2], "fsaverage5").shape == (20484,)
    for space in ("none", "volume"):
        assert not gifti_available(space)
        with pytest.raises(ExportError, match="GIfTI export is available"):
            gifti_bytes(vals, vert, space, "left")
    with pytest.raises(ExportError, match="vertex indices"):
        full_mesh_values([1.0], [10 ** 6], "fsLR32k")


def _value_axes(fig):
    """The layout axis holding the values of each bar trace (y for vertical, x for horizontal bars)."""
    out = []
    for tr in fig.data:
        if tr.type == "bar":
            h = tr.orientation == "h"
            ref = (tr.xaxis if h else tr.yaxis) or ("x" if h else "y")
            out.append(fig.layout[("xaxis" if h else "yaxis") + ref[1:]])
    return out


def test_every_bar_chart_starts_at_zero(vertices, jne_ss, roi_group, sims):
    """Values far from 0 (JNE + 10): a fitted axis would start near 10; every bar axis must start at 0."""
    far = vertices.assign(jne=vertices["jne"] + 10, r2_linear=vertices["r2_linear"] + 10,
                          r2_nonlinear=vertices["r2_nonlinear"] + 10)
    ss, stim = jne_ss
    table = roi_group.assign(mom=roi_group["mom"] + 10)
    mask = (vertices["roi"] == "FFC").to_numpy() & np.isfinite(vertices["jne"].to_numpy())
    ci = summaries.roi_group_ci(ss + 10, stim["category"].to_numpy(), mask, n_boot=50)
    margins = summaries.selectivity_margins(table)
    figs = {
        "roi_bars": plot_roi_bars(summaries.roi_summary(far, "jne")),
        "level_bars": plot_level_bars(summaries.level_summary(far, "jne")),
        "roi_group_bars": plot_roi_group_bars(table, "FFC"),
        "roi_group_bars_ci": plot_roi_group_bars(table, "FFC", ci=ci),
        "top_stimuli": plot_top_stimuli(summaries.top_stimuli(ss + 10, stim, mask, k=5), roi="FFC"),
        "drivers": plot_group_drivers(summaries.group_drivers(table, "face"), "face"),
        "margins": plot_margin_comparison({"a": margins}),
        "r2_by_roi": plot_r2_by_roi(far),
        "significant_counts": plot_significant_counts(significant_counts(far)),
        "placement": plot_placement(sims[2], error="std"),
    }
    for name, fig in figs.items():
        axes = _value_axes(fig)
        assert axes, name
        for ax in axes:
            assert ax.rangemode == "tozero", name
            assert ax.range is None or min(ax.range) <= 0 <= max(ax.range), name
    assert figs["top_stimuli"].data[0].orientation == "h" and figs["top_stimuli"].layout.xaxis.rangemode == "tozero"
    # an explicit range is widened to include 0
    from jnecore.plotting._roi import bars_from_zero
    fig = plot_roi_bars(summaries.roi_summary(far, "jne"))
    fig.update_yaxes(range=[9, 11])
    assert list(bars_from_zero(fig).layout.yaxis.range) == [0.0, 11]


def test_distribution_subsets_are_bounded_and_seeded(vertices):
    big = pd.concat([vertices] * 30, ignore_index=True)  # 1200 rows per ROI
    sig = big[big["significant"] & np.isfinite(big["jne"])]
    fig = plot_roi_distributions(big, "jne", max_points=100, seed=1)
    for tr in fig.data:
        own = sig.loc[sig["roi"] == tr.name, "jne"].to_numpy()
        assert len(tr.y) == min(100, len(own))
        assert np.isin(tr.y, own).all()  # a subset of the ROI's own values
    assert set(fig.layout.meta["subsampled"]) == {tr.name for tr in fig.data}
    again = plot_roi_distributions(big, "jne", max_points=100, seed=1)
    assert all(np.array_equal(a.y, b.y) for a, b in zip(fig.data, again.data))
    full = plot_roi_distributions(vertices, "jne", max_points=None)
    for tr in full.data:
        np.testing.assert_array_equal(np.sort(tr.y), np.sort(sig.loc[sig["roi"] == tr.name, "jne"].unique()))
    assert full.layout.meta["subsampled"] == []


def test_roi_group_bars_with_bootstrap_ci(vertices, jne_ss, roi_group):
    ss, stim = jne_ss
    mask = (vertices["roi"] == "FFC").to_numpy() & vertices["significant"].to_numpy() & \
        np.isfinite(vertices["jne"].to_numpy())
    ci = summaries.roi_group_ci(ss, stim["category"].to_numpy(), mask, n_boot=200, seed=0)
    tr = plot_roi_group_bars(roi_group, "FFC", ci=ci).data[0]
    c = ci.set_index("group").loc[list(tr.x)]
    np.testing.assert_allclose(tr.y, c["mom"])
    np.testing.assert_allclose(np.asarray(tr.y) + tr.error_y.array, c["ci_high"])
    np.testing.assert_allclose(np.asarray(tr.y) - tr.error_y.arrayminus, c["ci_low"])
    assert tr.error_y.symmetric is False
    np.testing.assert_allclose(tr.y, roi_group.set_index(["roi", "group"]).loc["FFC"].loc[list(tr.x), "mom"], rtol=1e-6)


def test_margin_comparison_bars(roi_group):
    shared = summaries.selectivity_margins(roi_group)
    other = shared.assign(margin=shared["margin"] * 2)
    order = ["FFC", "V1", "PHA1"]
    fig = plot_margin_comparison({"shared trunk": shared, "one per ROI": other}, roi_order=order)
    bars = [tr for tr in fig.data if tr.type == "bar"]
    assert [tr.name for tr in bars] == ["shared trunk", "one per ROI"]
    assert list(bars[0].x) == order
    expect = shared.set_index("roi").loc[order]
    np.testing.assert_allclose(bars[0].y, expect["margin"])
    np.testing.assert_allclose(bars[1].y, 2 * expect["margin"])
    assert list(bars[0].text) == expect["top"].tolist() and bars[0].text[0] == "face"  # FFC's planted face
    assert fig.layout.barmode == "group"


def test_distribution_total_budget_lowers_the_cap_per_roi(vertices):
    big = pd.concat([vertices] * 30, ignore_index=True)
    fig = plot_roi_distributions(big, "jne", max_points=1000, max_total=7 * 250)  # 7 ROIs
    assert fig.layout.meta["max_points"] == 250 and all(len(tr.y) <= 250 for tr in fig.data)
    floor = plot_roi_distributions(big, "jne", max_points=1000, max_total=10)
    assert floor.layout.meta["max_points"] == 200  # never below 200 per ROI
