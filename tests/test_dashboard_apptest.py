"""Every dashboard page in streamlit.testing.v1.AppTest, with its main widgets exercised.

The bundles: the small demo (real pipeline on simulated responses, fs_LR 32k atlas, quick
simulations) and a perturbed copy with a noise ceiling and stimulus clusters (tests/_bundles.py).
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import numpy as np
import pytest

from _bundles import bundle_folder

pytest.importorskip("streamlit.testing.v1")
from streamlit.testing.v1 import AppTest  # noqa: E402

DASH = Path(__file__).resolve().parents[1] / "dashboard"
PAGES = ["app.py"] + sorted(p.name for p in (DASH / "pages").glob("*.py"))
TIMEOUT = 180


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return bundle_folder(tmp_path_factory)


@pytest.fixture()
def roots(monkeypatch):
    def set_roots(*paths):
        monkeypatch.setenv("JNE_BUNDLE_ROOTS", os.pathsep.join(str(p) for p in paths))
    return set_roots


def _page(name) -> str:
    return str(DASH / name) if name == "app.py" else str(DASH / "pages" / name)


def run_page(name) -> AppTest:
    at = AppTest.from_file(_page(name), default_timeout=TIMEOUT)
    at.run()
    return at


def assert_clean(at: AppTest):
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _decode(obj):
    """Plotly JSON with base64 typed arrays ({"dtype", "bdata"[, "shape"]}) -> numpy arrays."""
    if isinstance(obj, dict):
        if "bdata" in obj and "dtype" in obj:
            a = np.frombuffer(base64.b64decode(obj["bdata"]), dtype=np.dtype(obj["dtype"]))
            if "shape" in obj:
                shape = obj["shape"]
                a = a.reshape([int(s) for s in shape.split(",")] if isinstance(shape, str) else shape)
            return a
        return {k: _decode(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v) for v in obj]
    return obj


_VIEWER_BLOBS: dict = {}  # what the maps page's viewer holds in the browser, accumulated over runs


def figures(at: AppTest) -> dict:
    """{key: figure dict} of the page's plotly charts (key as given to show_figure) and its surface viewer
    ("surface_map": the figure the viewer draws, rebuilt by join_figure, with its "args" and "presets")."""
    from _viewer import viewer_figure

    out = {}
    for el in at.get("plotly_chart"):
        key = el.proto.id.rsplit("-", 1)[-1].removeprefix("fig_")
        out[key] = _decode(json.loads(el.proto.spec))
    if any(el.proto.component_name.endswith("jne_surface_viewer") for el in at.get("component_instance")):
        out["surface_map"] = viewer_figure(at, "surface_map", _VIEWER_BLOBS)[1]
    return out


def table_with(at: AppTest, *columns):
    """The first table of the page holding all these columns."""
    for d in at.dataframe:
        if set(columns) <= set(d.value.columns):
            return d.value
    raise AssertionError(f"no table with columns {columns}")


def title(fig) -> str:
    t = fig["layout"].get("title") or {}
    return t.get("text", "") if isinstance(t, dict) else str(t)


# ------------------------------------------------------------------------------------------ all pages


@pytest.mark.parametrize("name", PAGES)
def test_every_page_runs(folder, roots, name):
    roots(folder)
    at = run_page(name)
    assert_clean(at)
    if name != "app.py":
        assert at.title and at.title[0].value
    # every figure has an HTML download and every table a CSV download
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels.count("Download figure (HTML)") >= len(at.get("plotly_chart"))
    if name != "app.py":
        assert labels.count("Download table (CSV)") >= len(at.dataframe)


def test_home_summary_and_banner(folder, roots):
    roots(folder)
    at = run_page("app.py")
    assert_clean(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Space"] == "fsLR32k"
    assert int(metrics["Vertices modelled"].replace(",", "")) > 100
    assert any("Simulated data" in w.value for w in at.warning)
    assert at.sidebar.selectbox(key="_w_jne_bundle").options  # bundle choice in the sidebar


def test_no_bundle_and_unreadable_bundle(tmp_path, roots):
    roots(tmp_path / "empty")
    (tmp_path / "empty").mkdir()
    for name in ("app.py", "1_Cortical_maps.py"):
        at = run_page(name)
        assert not at.exception
        assert at.error and "No result bundle found" in at.error[0].value and "jne demo" in at.error[0].value
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text("{not json")
    roots(broken)
    at = run_page("2_ROI_hierarchy.py")
    assert not at.exception
    assert at.error and "Could not read the bundle" in at.error[0].value and "jne info" in at.error[0].value


# ------------------------------------------------------------------------------------------ maps


def test_maps_metric_surface_and_roi(folder, roots):
    roots(folder / "a_demo")
    at = run_page("1_Cortical_maps.py")
    assert_clean(at)
    fig = figures(at)["surface_map"]
    meta = fig["layout"]["meta"]
    assert meta["value_name"] == "JNE" and meta["surface"] == "inflated" and meta["space"] == "fsLR32k"
    names = [tr.get("name") for tr in fig["data"]]
    assert names[:2] == ["surface", "data"] and "colorbar" in names and "highlight" in names  # FFC highlighted
    # one scene by default; with both hemispheres no single-scene medial preset is offered
    assert meta["view"] == "posterior" and "scene2" not in fig["layout"]
    assert "medial" not in fig["presets"] and {"lateral", "posterior", "ventral"} <= set(fig["presets"])
    assert fig["args"]["view"] == "posterior"  # the preset the viewer opens on
    n_jne = meta["n_shown"]
    at.selectbox(key="map_layout").select("4 views (L/R lateral, medial)").run()
    assert_clean(at)
    panels = figures(at)["surface_map"]
    assert panels["layout"]["meta"]["view"] == "panels" and "scene4" in panels["layout"]  # 2x2 one-hemisphere scenes
    assert panels["layout"]["meta"]["panels"][:2] == [["left", "lateral"], ["left", "medial"]]
    assert panels["presets"] == {}  # each panel keeps its own camera
    at.selectbox(key="map_layout").select("one scene").run()
    # JNE has no significance filter of its own (computed on significant vertices only): disabled
    assert at.checkbox(key="map_sig_only_na").disabled
    # the threshold hides vertices but never changes the colour range
    at.number_input(key="map_threshold").set_value(0.8).run()
    m_thr = figures(at)["surface_map"]["layout"]["meta"]
    assert (m_thr["vmin"], m_thr["vmax"]) == (meta["vmin"], meta["vmax"]) and m_thr["n_shown"] < n_jne
    at.number_input(key="map_threshold").set_value(0.0).run()

    at.selectbox(key="map_metric").select("R² nonlinear").run()
    assert_clean(at)
    meta = figures(at)["surface_map"]["layout"]["meta"]
    assert meta["value_name"] == "R² nonlin" and meta["cmap"] == "Viridis"

    at.checkbox(key="map_sig_only").uncheck().run()
    meta2 = figures(at)["surface_map"]["layout"]["meta"]
    assert meta2["n_shown"] > n_jne  # non-significant vertices now shown too
    # the choice survives a metric without the filter (JNE) and back
    at.selectbox(key="map_metric").select("JNE").run()
    assert at.checkbox(key="map_sig_only_na").disabled
    at.selectbox(key="map_metric").select("R² nonlinear").run()
    assert at.checkbox(key="map_sig_only").value is False
    assert figures(at)["surface_map"]["layout"]["meta"]["n_shown"] == meta2["n_shown"]

    at.selectbox(key="map_surface").select("flat (2D flatmap)").run()
    at.selectbox(key="map_hemi").select("left").run()
    assert_clean(at)
    meta = figures(at)["surface_map"]["layout"]["meta"]
    assert meta["surface"] == "flat" and meta["hemi"] == "left"

    # the shared ROI choice drives the highlight
    hl = {tr["name"]: tr for tr in figures(at)["surface_map"]["data"]}["highlight"]["customdata"]
    at.sidebar.selectbox(key="_w_jne_roi").select("V1").run()
    assert at.session_state["jne_roi"] == "V1"
    hl2 = {tr["name"]: tr for tr in figures(at)["surface_map"]["data"]}["highlight"]["customdata"]
    assert len(hl2) != len(hl) or not np.array_equal(np.sort(hl2), np.sort(hl))


def test_maps_jne_ss_group_stimulus_and_range(folder, roots):
    roots(folder / "a_demo")
    at = run_page("1_Cortical_maps.py")
    at.selectbox(key="map_metric").select("JNE-SS: mean over a stimulus group").run()
    assert_clean(at)
    at.selectbox(key="map_group").select("face").run()
    f1 = figures(at)["surface_map"]
    at.selectbox(key="map_group").select("outdoor scene").run()
    f2 = figures(at)["surface_map"]
    assert f1["layout"]["meta"]["value_name"] == "JNE-SS (face)"
    assert f2["layout"]["meta"]["value_name"] == "JNE-SS (outdoor scene)"
    c1, c2 = f1["data"][1]["customdata"], f2["data"][1]["customdata"]  # the "data" layers: [vertex, value]
    assert not (np.array_equal(c1[:, 0], c2[:, 0]) and np.allclose(c1[:, 1], c2[:, 1]))

    at.selectbox(key="map_metric").select("JNE-SS: one test stimulus").run()
    assert_clean(at)
    at.selectbox(key="map_stimulus").select(3).run()
    assert_clean(at)
    assert figures(at)["surface_map"]["layout"]["meta"]["value_name"].startswith("JNE-SS (sim-")

    at.selectbox(key="map_metric").select("JNE").run()
    at.checkbox(key="map_manual_range").check().run()
    at.number_input(key="map_vmin_jne").set_value(0.1).run()
    at.number_input(key="map_vmax_jne").set_value(0.5).run()
    at.selectbox(key="map_cmap").select("viridis").run()
    assert_clean(at)
    meta = figures(at)["surface_map"]["layout"]["meta"]
    assert meta["vmin"] == pytest.approx(0.1) and meta["vmax"] == pytest.approx(0.5) and meta["cmap"] == "viridis"
    at.radio(key="map_values").set_value("ROI mean").run()
    assert_clean(at)
    surf = figures(at)["surface_map"]["data"][1]  # the data layer: customdata [vertex, value], NaN = not shown
    values = np.asarray(surf["customdata"], dtype=float)[:, -1]
    by_roi = {}
    for t, x in zip(surf["text"], values):  # text = "ROI (level)" on every vertex
        if np.isfinite(x):
            by_roi.setdefault(t.split(" (")[0].split("<br>")[0], set()).add(round(float(x), 5))
    assert len(by_roi) > 5 and all(len(vals) == 1 for vals in by_roi.values())  # one value per ROI
    at.radio(key="map_values").set_value("per vertex").run()
    at.number_input(key="map_threshold").set_value(0.3).run()
    assert figures(at)["surface_map"]["layout"]["meta"]["n_shown"] < meta["n_shown"]
    assert {b.proto.label for b in at.get("download_button")} >= {"Shown values (CSV)", "Map as GIfTI (L)",
                                                                 "Map as GIfTI (R)"}


def test_maps_roi_summary_only_on_request(folder, roots):
    """The per-ROI summary (a data grid, costly in the browser) is drawn only when its toggle is on,
    and then holds each ROI's count and mean of the shown values, as pandas computes them."""
    import pandas as pd

    roots(folder / "a_demo")
    at = run_page("1_Cortical_maps.py")
    assert_clean(at)
    assert not any("median" in d.value.columns for d in at.dataframe)
    at.toggle(key="map_roi_summary_on").set_value(True).run()
    assert_clean(at)
    (summ,) = [d.value for d in at.dataframe if "median" in d.value.columns]
    v = pd.read_parquet(folder / "a_demo" / "vertices.parquet")
    shown = v[v["significant"].astype(bool) & np.isfinite(v["jne"])]
    want = shown.groupby(shown["roi"].astype(str))["jne"].agg(["count", "mean"])
    got = summ.set_index("roi")
    assert set(got.index) == set(want.index)
    assert (got["count"].astype(int) == want.loc[got.index, "count"]).all()
    np.testing.assert_allclose(got["mean"].astype(float), want.loc[got.index, "mean"], rtol=1e-6)
    at.toggle(key="map_roi_summary_on").set_value(False).run()
    assert not any("median" in d.value.columns for d in at.dataframe)


def test_maps_link_state_vertex_panel_and_toggles(folder, roots):
    """A link's query (?metric=...&vertex=...) opens the same view; the panel shows the vertex's row and its
    JNE-SS profile; the background, outline and highlight toggles; the panel's buttons."""
    from jnecore.bundle import load_bundle

    roots(folder / "a_demo")
    b = load_bundle(folder / "a_demo")
    v = b.vertices
    pos = int(np.flatnonzero(np.isfinite(v["jne"].to_numpy(dtype=float)))[3])
    row = v.iloc[pos]
    vid = int(row["vertex"])
    at = AppTest.from_file(_page("1_Cortical_maps.py"), default_timeout=TIMEOUT)
    for k, x in dict(metric="r2_nonlinear", surface="white", hemi="left", threshold="0.05", roi="V1",
                     vertex=str(vid), view="ventral").items():
        at.query_params[k] = x
    at.run()
    assert_clean(at)
    assert at.selectbox(key="map_metric").value == "R² nonlinear" and at.selectbox(key="map_surface").value == "white"
    assert at.selectbox(key="map_hemi").value == "left" and at.number_input(key="map_threshold").value == 0.05
    assert at.session_state["jne_roi"] == "V1" and at.session_state["jne_vertex"]["vertex"] == vid
    fig = figures(at)["surface_map"]
    meta = fig["layout"]["meta"]
    assert (meta["value_name"], meta["surface"], meta["hemi"], meta["threshold"]) == ("R² nonlin", "white", "left", 0.05)
    assert fig["args"]["view"] == "ventral" and fig["args"]["selected"] == vid  # the viewer opens there, vertex marked
    assert fig["presets"]["ventral"]["scene"]["eye"]["z"] < 0
    # the panel: the vertex's row of vertices.parquet
    m = {x.label: x.value for x in at.metric}
    assert m["Vertex"].startswith(str(vid)) and m["ROI (level)"] == f"{row['roi']} ({row['level']})"
    assert m["JNE"] == f"{row['jne']:.4g}" and m["R² linear"] == f"{row['r2_linear']:.4g}"
    assert m["R² nonlinear"] == f"{row['r2_nonlinear']:.4g}"
    # its JNE-SS profile: per-category means of its column of jne_ss (a naive loop), CIs around them
    col = np.asarray(b.jne_ss[:, pos], dtype=float)
    cats = b.test_stimuli["category"].astype(str).to_numpy()
    bars = figures(at)["vertex_profile"]["data"][0]
    for g, y, (n, lo, hi) in zip(bars["x"], bars["y"], np.asarray(bars["customdata"], dtype=float)):
        sel = [x for x, c in zip(col, cats) if c == g]
        assert y == pytest.approx(sum(sel) / len(sel)) and n == len(sel) and lo <= y <= hi
    # the page's state is in its link
    q = at.query_params
    assert q["metric"] in ("r2_nonlinear", ["r2_nonlinear"]) and q["vertex"] in (str(vid), [str(vid)])

    # toggles: no sulcal background (one grey), no outlines, no highlight
    assert np.ptp(np.asarray(fig["data"][0]["intensity"], dtype=float)) > 0
    at.checkbox(key="map_sulc").uncheck().run()
    assert np.ptp(np.asarray(figures(at)["surface_map"]["data"][0]["intensity"], dtype=float)) == 0
    names = {t.get("name") for t in figures(at)["surface_map"]["data"]}
    assert {"outline", "highlight"} <= names
    at.checkbox(key="map_outline").uncheck().run()
    at.checkbox(key="map_highlight").uncheck().run()
    assert_clean(at)
    names = {t.get("name") for t in figures(at)["surface_map"]["data"]}
    assert "outline" not in names and "highlight" not in names
    # the panel's buttons: its ROI for every page, then clear the selection
    at.button(key="map_use_vertex_roi").click().run()
    assert at.session_state["jne_roi"] == str(row["roi"])
    at.button(key="map_clear_vertex").click().run()
    assert_clean(at)
    assert at.session_state["jne_vertex"] is None and "Vertex" not in {x.label for x in at.metric}
    assert figures(at)["surface_map"]["args"]["selected"] is None
    # a vertex the bundle does not model
    at2 = AppTest.from_file(_page("1_Cortical_maps.py"), default_timeout=TIMEOUT)
    at2.query_params["vertex"] = str(int(set(range(100)).difference(v["vertex"]).pop()))
    at2.run()
    assert_clean(at2)
    assert any("is not modelled in this bundle" in x.value for x in at2.info)


# ------------------------------------------------------------------------------------------ hierarchy


def test_hierarchy_metric_and_roi_comparison(folder, roots):
    roots(folder / "a_demo")
    at = run_page("2_ROI_hierarchy.py")
    assert_clean(at)
    figs = figures(at)
    assert title(figs["roi_bars"]).startswith("JNE per ROI")
    levels_x = [x for tr in figs["roi_bars"]["data"] for x in tr["x"]]
    assert levels_x[0] == "V1"  # primary first
    assert set(figs["level_tests"]["data"][0]["y"]) == {"primary", "intermediate", "higher"}

    at.selectbox(key="h_metric").select("R² nonlinear").run()
    assert_clean(at)
    assert title(figures(at)["roi_bars"]).startswith("R² (nonlinear) per ROI")

    at.multiselect(key="h_compare_rois").set_value(["V1", "FFC", "RSC"]).run()
    assert_clean(at)
    figs = figures(at)
    assert list(figs["roi_tests"]["data"][0]["x"]) == ["V1", "FFC", "RSC"]
    tables = [d.value for d in at.dataframe if {"a", "b", "q"} <= set(d.value.columns)]
    assert any(set(t["a"]) == {"V1", "FFC", "RSC"} and len(t) == 6 for t in tables)
    at.radio(key="h_scatter_scope").set_value("chosen ROIs").run()
    assert "(V1, FFC, RSC)" in title(figures(at)["r2_scatter"])
    at.radio(key="h_kind").set_value("box").run()
    assert figures(at)["roi_dist"]["data"][0]["type"] == "box"


#: the MMP parcels of the shipped functional table and their names, in the table's order (written out here, not read
#: from jnecore/data/functional_rois.csv, so the tests check the table too)
FUNCTIONAL_NAMES = {"V1": "V1", "V2": "V2", "V3": "V3", "V4": "V4", "FFC": "FFA", "PHA1": "PPA", "PHA2": "PPA",
                    "PHA3": "PPA", "LO2": "EBA", "PH": "EBA", "TPOJ1": "EBA", "V3CD": "OPA", "IP0": "OPA", "RSC": "RSC"}
SAMPLE = Path(__file__).resolve().parents[1] / "sample_data" / "sample"


def test_hierarchy_functional_names(folder, roots):
    """The functional ROI set regroups the parcels: FFA = FFC, PPA = PHA1-3, ... (numbers vs a naive groupby)."""
    import pandas as pd
    from jnecore.bundle import load_bundle

    roots(folder / "a_demo")
    at = run_page("2_ROI_hierarchy.py")
    at.radio(key="h_roi_set").set_value("functional").run()
    assert_clean(at)
    assert at.session_state["jne_roi_set"] == "functional"
    figs = figures(at)
    bars = {x: y for tr in figs["roi_bars"]["data"] for x, y in zip(tr["x"], tr["y"])}
    v = load_bundle(folder / "a_demo").vertices
    sig = v[v["significant"].astype(bool) & np.isfinite(v["jne"])].copy()
    sig["name"] = sig["roi"].astype(str).str.replace(r"^[LR]_", "", regex=True).map(FUNCTIONAL_NAMES)
    want = sig.dropna(subset=["name"]).groupby("name")["jne"].mean()
    assert set(bars) == set(want.index) and "FFA" in bars and "FFC" not in bars
    # the sidebar's ROI (FFC by default) is highlighted under its functional name
    widths = {x: w for tr in figs["roi_bars"]["data"] for x, w in zip(tr["x"], tr["marker"]["line"]["width"])}
    assert at.session_state["jne_roi"] == "FFC" and widths["FFA"] == 3 and widths["V1"] == 0
    np.testing.assert_allclose([bars[k] for k in want.index], want.to_numpy(), rtol=1e-6)
    caveats = table_with(at, "parcel", "functional", "caveat")
    assert set(caveats["functional"]) <= set(want.index) and (caveats["caveat"] != "").all()
    # the choice is kept on the selectivity page
    at2 = AppTest.from_file(_page("3_Stimulus_selectivity.py"), default_timeout=TIMEOUT)
    at2.session_state["jne_roi_set"] = "functional"
    at2.run()
    assert_clean(at2)
    assert at2.radio(key="s_roi_set").value == "functional"
    ylabels = [str(y).removeprefix("<b>").removesuffix("</b>") for y in figures(at2)["heatmap"]["data"][0]["y"]]
    assert "FFA" in ylabels and "FFC" not in ylabels


@pytest.mark.parametrize("name", ["app.py", "2_ROI_hierarchy.py", "3_Stimulus_selectivity.py",
                                  "4_Encoding_performance.py", "5_Simulations.py", "6_Compare_bundles.py"])
def test_no_none_or_nan_in_tables(folder, roots, name):
    """No table cell on a page reads "None" or "nan"; p / q cells are scientific with the floor stated."""
    import pandas as pd

    roots(folder)
    at = run_page(name)
    assert_clean(at)
    assert len(at.dataframe) or name == "app.py"
    for d in at.dataframe:
        t = d.value
        for col in t.columns:
            cells = t[col].tolist()
            assert not any(x is None or (isinstance(x, float) and np.isnan(x)) for x in cells), (name, col)
            text = {str(x).strip() for x in cells}  # (a placement named "none" is a name, not a missing value)
            assert not text & {"None", "nan", "NaN", "<NA>", "NaT"}, (name, col)
            if col in ("p", "q", "p_fdr"):
                assert all(c == "n/a" or c.startswith("< ") or "e-" in c or "e+" in c for c in map(str, cells)), \
                    (name, col, cells[:3])


# ------------------------------------------------------------------------------------------ selectivity


def test_selectivity_category_roi_and_clusters(folder, roots):
    roots(folder / "a_demo")
    at = run_page("3_Stimulus_selectivity.py")
    assert_clean(at)
    figs = figures(at)
    assert len(figs["heatmap"]["data"]) == 1  # one heatmap, one colour bar for every ROI
    hm = figs["heatmap"]["data"][0]
    z = np.asarray(hm["z"], dtype=float)
    long = table_with(at, "roi", "group", "mom", "mom_norm")
    want = long.pivot(index="roi", columns="group", values="mom").loc[[str(r).removeprefix("<b>").removesuffix("</b>") for r in hm["y"]], list(hm["x"])]
    np.testing.assert_allclose(z, want.to_numpy(dtype=float), rtol=1e-6)  # absolute MoM by default
    assert "absolute" in title(figs["heatmap"])
    assert "outdoor scene" in title(figs["drivers"])
    # the focus ROI's bars: MoM with bootstrap CIs over stimuli (the CI table is the one drawn)
    bars, ci = figs["roi_bars"]["data"][0], table_with(at, "group", "mom", "ci_low", "ci_high")
    ci = ci.set_index("group").loc[list(bars["x"])]
    np.testing.assert_allclose(bars["y"], ci["mom"].to_numpy(dtype=float), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(bars["error_y"]["array"]) + bars["y"], ci["ci_high"].astype(float), rtol=1e-6)
    np.testing.assert_allclose(bars["y"] - np.asarray(bars["error_y"]["arrayminus"]), ci["ci_low"].astype(float),
                               rtol=1e-6)
    assert (ci["ci_low"].astype(float) <= ci["mom"]).all() and (ci["mom"] <= ci["ci_high"].astype(float)).all()
    assert "bootstrap CI over stimuli" in title(figs["roi_bars"])

    at.selectbox(key="_w_jne_group_category").select("face").run()
    assert_clean(at)
    assert "'face'" in title(figures(at)["drivers"])

    at.radio(key="s_scale").set_value("roi").run()
    z2 = np.asarray(figures(at)["heatmap"]["data"][0]["z"], dtype=float)
    np.testing.assert_allclose(np.nanmax(z2, axis=1), 1.0)  # the relative option: min-max per ROI
    assert "relative" in title(figures(at)["heatmap"])
    at.radio(key="s_scale").set_value("group").run()
    assert_clean(at)
    z3 = np.asarray(figures(at)["heatmap"]["data"][0]["z"], dtype=float)
    np.testing.assert_allclose(np.nanmean(z3, axis=0), 1.0)  # each group relative to its mean over ROIs

    at.selectbox(key="_w_roi_selectivity").select("RSC").run()
    assert_clean(at)
    assert at.session_state["jne_roi"] == "RSC"  # the page's ROI choice is the shared one
    top = table_with(at, "rank", "stimulus", "score")
    assert len(top) == at.slider(key="s_top_k").value and "category" in top.columns
    assert "RSC" in title(figures(at)["top_stimuli"])

    roots(folder / "b_variant")  # this bundle has a cluster column
    at = run_page("3_Stimulus_selectivity.py")
    at.selectbox(key="s_group_col").select("cluster").run()
    assert_clean(at)
    x = figures(at)["heatmap"]["data"][0]["x"]
    assert all(str(g).startswith("c") for g in x)


# ------------------------------------------------------------------------------------------ performance


def test_performance_with_and_without_noise_ceiling(folder, roots):
    roots(folder / "a_demo")
    at = run_page("4_Encoding_performance.py")
    assert_clean(at)
    assert any("no noise ceiling" in i.value for i in at.info)
    assert "nc_density" not in figures(at)

    roots(folder / "b_variant")
    at = run_page("4_Encoding_performance.py")
    assert_clean(at)
    figs = figures(at)
    assert "nc_density" in figs and "80%" in title(figs["nc_density"])
    at.radio(key="p_model").set_value("linear").run()
    assert "linear encoder" in title(figures(at)["nc_density"])
    counts = table_with(at, "n_vertices", "n_significant")
    assert counts["n_vertices"].sum() > 0


def _with_ridge(src, out) -> Path:
    """A copy of the bundle at ``src`` whose vertex table has the ridge baseline's ``r2_ridge``."""
    import shutil

    import pandas as pd

    shutil.copytree(src, out)
    v = pd.read_parquet(out / "vertices.parquet")
    v["r2_ridge"] = v["r2_linear"] - 0.01 + np.random.default_rng(3).normal(0, 0.01, len(v))
    v.to_parquet(out / "vertices.parquet", index=False)
    return out


def test_performance_ridge_baseline(folder, roots, tmp_path):
    import pandas as pd

    path = _with_ridge(folder / "b_variant", tmp_path / "ridge")
    v = pd.read_parquet(path / "vertices.parquet")
    roots(path)
    at = run_page("4_Encoding_performance.py")
    assert_clean(at)
    figs = figures(at)
    assert [t["name"] for t in figs["r2_roi"]["data"]] == ["linear", "nonlinear", "ridge"]
    assert [t["name"] for t in figs["r2_dist"]["data"]] == ["linear", "nonlinear", "ridge"]
    assert title(figs["ridge_scatter"]).startswith("linear vs ridge R²")
    table = table_with(at, "encoder", "share_above_ridge").set_index("encoder")
    assert table.loc["linear", "share_above_ridge"] == pytest.approx(np.mean(v["r2_linear"] > v["r2_ridge"]))
    assert any("≥ 80% of ceiling (ridge)" in m.label for m in at.metric)
    at.radio(key="p_ridge_net").set_value("nonlinear").run()
    assert_clean(at)
    assert title(figures(at)["ridge_scatter"]).startswith("nonlinear vs ridge R²")
    at.radio(key="p_model").set_value("ridge").run()
    assert "ridge encoder" in title(figures(at)["nc_density"])

    roots(folder / "b_variant")  # no r2_ridge: the page as before, with a note
    at = run_page("4_Encoding_performance.py")
    assert_clean(at)
    figs = figures(at)
    assert "r2_dist" not in figs and "ridge_scatter" not in figs
    assert [t["name"] for t in figs["r2_roi"]["data"]] == ["linear", "nonlinear"]
    assert "ridge" not in at.radio(key="p_model").options
    assert any("no ridge baseline" in c.value for c in at.caption)


def _r2_bars(fig) -> dict:
    """{encoder: Series of mean R² per ROI, in the chart's order} of the "Test R² per ROI" chart."""
    import pandas as pd

    return {t["name"]: pd.Series(np.asarray(t["y"], dtype=float), index=list(t["x"])) for t in fig["data"]}


def test_performance_functional_roi_set(roots):
    """The ROI set regroups the per-ROI panels: parcels by default, functional names on request (numbers vs a
    groupby of the committed sample's vertices.parquet, read only)."""
    import pandas as pd

    if not (SAMPLE / "vertices.parquet").is_file():
        pytest.skip("sample_data/sample is not in this checkout")
    v = pd.read_parquet(SAMPLE / "vertices.parquet")
    v["significant"] = v["significant"].astype(bool)
    roots(SAMPLE)
    at = run_page("4_Encoding_performance.py")
    assert_clean(at)

    # the default: the bundle's parcels, as before
    assert at.radio(key="e_roi_set").value == "parcels"
    counts = table_with(at, "roi", "n_vertices", "n_significant").set_index("roi")
    want = v.groupby("roi").agg(n_vertices=("significant", "size"), n_significant=("significant", "sum"))
    assert set(counts.index) == set(v["roi"]) and len(counts) == v["roi"].nunique() == 35
    pd.testing.assert_frame_equal(counts.loc[want.index, ["n_vertices", "n_significant"]].astype(int),
                                  want.astype(int), check_names=False)
    bars = _r2_bars(figures(at)["r2_roi"])
    sig = v[v["significant"]]
    for enc in ("linear", "nonlinear"):
        ref = sig.groupby("roi")[f"r2_{enc}"].mean()
        assert set(bars[enc].index) == set(ref.index)
        np.testing.assert_allclose(bars[enc].to_numpy(), ref.loc[bars[enc].index].to_numpy(), rtol=1e-9)
    assert not any(c.value.startswith("Functional names") for c in at.caption)
    assert not any({"parcel", "caveat"} <= set(d.value.columns) for d in at.dataframe)

    # functional names: parcels regrouped by the mapping, vertices outside every functional ROI left out
    at.radio(key="e_roi_set").set_value("functional").run()
    assert_clean(at)
    assert at.session_state["jne_roi_set"] == "functional"  # the choice shared with the other ROI pages
    f = v.assign(name=v["roi"].astype(str).map(FUNCTIONAL_NAMES)).dropna(subset=["name"])
    order = list(dict.fromkeys(FUNCTIONAL_NAMES.values()))
    assert set(f["name"]) == set(order)  # the sample holds every functional ROI
    counts = table_with(at, "roi", "n_vertices", "n_significant")
    assert list(counts["roi"]) == order  # the functional table's order, no parcel name left
    want = f.groupby("name").agg(n_vertices=("significant", "size"), n_significant=("significant", "sum"))
    counts = counts.set_index("roi")
    np.testing.assert_array_equal(counts.loc[order, "n_vertices"].astype(int), want.loc[order, "n_vertices"])
    np.testing.assert_array_equal(counts.loc[order, "n_significant"].astype(int), want.loc[order, "n_significant"])
    np.testing.assert_allclose(counts.loc[order, "share_significant"].astype(float),
                               (want["n_significant"] / want["n_vertices"]).loc[order], rtol=1e-9)
    levels = {"V1": "primary", "V2": "intermediate", "V3": "intermediate", "V4": "intermediate"}
    assert list(counts.loc[order, "level"]) == [levels.get(n, "higher") for n in order]
    assert figures(at)["sig_counts"]["data"][0]["x"] == order
    bars = _r2_bars(figures(at)["r2_roi"])
    fsig = f[f["significant"]]
    for enc in ("linear", "nonlinear"):
        ref = fsig.groupby("name")[f"r2_{enc}"].agg(["mean", "std", "count"])
        assert list(bars[enc].index) == [n for n in order if n in ref.index]
        np.testing.assert_allclose(bars[enc].to_numpy(), ref.loc[bars[enc].index, "mean"].to_numpy(), rtol=1e-9)
    trace = figures(at)["r2_roi"]["data"][1]
    ref = fsig.groupby("name")["r2_nonlinear"].agg(["std", "count"]).loc[list(trace["x"])]
    np.testing.assert_allclose(trace["error_y"]["array"], ref["std"] / np.sqrt(ref["count"]), rtol=1e-9)
    n_out = len(v) - len(f)
    assert 0 < n_out < len(v)
    note = [c.value for c in at.caption if c.value.startswith("Functional names")]
    assert len(note) == 1 and f"{n_out:,} of {len(v):,} vertices" in note[0], note
    assert f"{v.loc[~v['roi'].isin(list(FUNCTIONAL_NAMES)), 'roi'].nunique()} ROI(s)" in note[0]
    caveats = table_with(at, "parcel", "functional", "caveat")
    assert set(caveats["functional"]) == set(order) and set(caveats["parcel"]) == set(FUNCTIONAL_NAMES)

    # back to the parcels: the default's table again
    at.radio(key="e_roi_set").set_value("parcels").run()
    assert_clean(at)
    assert set(table_with(at, "roi", "n_vertices", "n_significant")["roi"]) == set(v["roi"])


def test_performance_functional_roi_set_without_functional_rois(roots, tmp_path):
    """A bundle none of whose ROIs has a functional name: the per-ROI panels say so, the rest is drawn."""
    import shutil

    import pandas as pd

    if not (SAMPLE / "vertices.parquet").is_file():
        pytest.skip("sample_data/sample is not in this checkout")
    path = tmp_path / "no_functional"
    shutil.copytree(SAMPLE, path)
    v = pd.read_parquet(path / "vertices.parquet")
    v["roi"] = "x" + v["roi"].astype(str)  # xV1, xFFC, ...: no name the table knows
    v.to_parquet(path / "vertices.parquet", index=False)
    roots(path)
    at = AppTest.from_file(_page("4_Encoding_performance.py"), default_timeout=TIMEOUT)
    at.session_state["jne_roi_set"] = "functional"
    at.run()
    assert_clean(at)
    assert not [w.value for w in at.warning if "Simulated data" not in w.value]
    assert at.radio(key="e_roi_set").value == "functional"
    from jnecore.dashboard._state import NO_FUNCTIONAL_ROIS
    assert [i.value for i in at.info].count(NO_FUNCTIONAL_ROIS) == 2
    assert "r2_roi" not in figures(at) and "sig_counts" not in figures(at)
    assert any(f"{len(v):,} of {len(v):,} vertices (100.0%)" in c.value for c in at.caption)


# ------------------------------------------------------------------------------------------ simulations


def test_simulations_present_and_missing(folder, roots):
    roots(folder / "a_demo")
    at = run_page("5_Simulations.py")
    assert_clean(at)
    figs = figures(at)
    assert {"single_neuron", "placement", "placement_pairs", "sample_size"} <= set(figs)
    order = table_with(at, "claimed_order", "measured_order", "verdict")
    assert len(order) == 2 * 2 * 4 and (order["claimed_order"] == "none < Loc1 < Loc2 < both").all()
    assert any("paper's order holds in" in m.value for m in list(at.success) + list(at.warning))
    at.radio(key="sim_err").set_value("sem").run()
    assert_clean(at)
    roots(folder / "b_variant")  # written without simulations
    at = run_page("5_Simulations.py")
    assert_clean(at)
    assert any("jne simulate --out" in i.value for i in at.info)


def test_simulations_from_before_the_comparison(folder, roots, tmp_path):
    """Simulations tables written before the comparison (no architecture / init / CI columns, no order
    or pairs tables; made here from the sample's, as jnecore 0.x wrote them): a one-line note, the old
    figure, no crash."""
    import shutil

    import pandas as pd

    sample = Path(__file__).resolve().parents[1] / "sample_data" / "sample" / "simulations"
    old = tmp_path / "old_sims"
    shutil.copytree(folder / "a_demo", old)
    shutil.rmtree(old / "simulations")
    shutil.copytree(sample, old / "simulations")
    sims = old / "simulations"
    for name, columns in (("placement", ["activation", "placement", "repeat", "jne"]),
                          ("placement_summary", ["activation", "placement", "mean", "std", "sem", "n", "rank"])):
        t = pd.read_parquet(sims / f"{name}.parquet")
        t = t[(t["architecture"] == "residual") & (t["init"] == "default")][columns].reset_index(drop=True)
        t.to_parquet(sims / f"{name}.parquet", index=False)
    for name in ("placement_order", "placement_pairs"):
        (sims / f"{name}.parquet").unlink()
    assert not (old / "simulations" / "placement_order.parquet").exists()
    roots(old)
    at = run_page("5_Simulations.py")
    assert_clean(at)
    assert any("predate the paper-vs-measured comparison" in i.value for i in at.info)
    assert "placement" in figures(at) and "placement_pairs" not in figures(at)
    at.radio(key="sim_err").set_value("sem").run()
    assert_clean(at)


# ------------------------------------------------------------------------------------------ compare


def test_compare_bundles(folder, roots):
    roots(folder)
    at = run_page("6_Compare_bundles.py")
    assert_clean(at)
    figs = figures(at)
    assert "cmp_scatter" in figs and "cmp_map" in figs
    table = table_with(at, "mean_a", "mean_b")
    assert (table["mean_b"] > table["mean_a"]).mean() > 0.8  # the variant's JNE is scaled up
    at.selectbox(key="cmp_metric").select("R² nonlinear").run()
    assert_clean(at)
    assert "R² (nonlinear)" in title(figures(at)["cmp_scatter"])

    roots(folder / "a_demo")
    at = run_page("6_Compare_bundles.py")
    assert not at.exception and any("Only one bundle" in i.value for i in at.info)


def test_roi_choice_carried_across_pages(folder, roots):
    roots(folder / "a_demo")
    at = run_page("app.py")
    at.sidebar.selectbox(key="_w_jne_roi").select("PHA1").run()
    at.switch_page("pages/2_ROI_hierarchy.py").run()
    assert_clean(at)
    assert at.sidebar.selectbox(key="_w_jne_roi").value == "PHA1"
    at.switch_page("pages/3_Stimulus_selectivity.py").run()
    assert at.selectbox(key="_w_roi_selectivity").value == "PHA1"


# ------------------------------------------------------------------------------------------ odd bundles


def _odd_bundle(path, *, space, significant):
    """A tiny bundle written directly: no mesh space or no significant vertex, one stimulus group."""
    import pandas as pd

    from jnecore.bundle import summary_tables, write_bundle

    rng = np.random.default_rng(0)
    V, n_test = 30, 6
    v = pd.DataFrame({"vertex": np.arange(V), "hemi": "none", "roi": ["all"] * 20 + ["V1"] * 10,
                      "level": ["other"] * 20 + ["primary"] * 10, "r2_linear": rng.uniform(0, 0.3, V),
                      "r2_nonlinear": rng.uniform(0, 0.3, V), "p": 0.01, "p_fdr": 0.02,
                      "significant": significant, "excluded": False})
    v["jne"] = rng.uniform(0.1, 0.2, V) if significant else np.nan
    ss = rng.gamma(2, 0.01, (n_test, V)).astype(np.float32) if significant else np.full((n_test, V), np.nan, np.float32)
    stimuli = pd.DataFrame({"stimulus": [f"s{i}" for i in range(10)], "split": ["test"] * n_test + ["train"] * 4,
                            "category": "all"})
    tables = summary_tables(v, ss, pd.DataFrame({"category": ["all"] * n_test}))
    write_bundle(path, vertices=v, jne_ss=ss, stimuli=stimuli, manifest={"space": space, "config": {}}, tables=tables)
    return path


@pytest.mark.parametrize("space,significant", [("none", True), ("fsLR32k", False)], ids=["space-none", "no-significant"])
@pytest.mark.parametrize("name", PAGES)
def test_odd_bundles_never_crash(tmp_path, roots, space, significant, name):
    path = _odd_bundle(tmp_path / "odd", space=space, significant=significant)
    if not significant:  # vertex indices must exist on the fsLR32k mesh
        import pandas as pd

        v = pd.read_parquet(path / "vertices.parquet")
        v["vertex"] = np.arange(len(v)) * 100
        v.to_parquet(path / "vertices.parquet", index=False)
    roots(path)
    at = run_page(name)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


# ------------------------------------------------------------------------------------------ trunk comparison


@pytest.fixture(scope="module")
def trunk_pair(tmp_path_factory):
    """Tiny bundles of the same simulated inputs fitted with a shared trunk and with one per ROI, plus a
    copy of the shared one relabelled trunk "roi" but with another seed (not the same settings)."""
    import shutil

    import pandas as pd
    import torch

    from jnecore import JNEAnalysis
    from jnecore.demo import DemoSpec, simulate_responses
    from jnecore.pipeline import run_pipeline

    root = tmp_path_factory.mktemp("trunks")
    per = 8
    v = pd.DataFrame({"roi": np.repeat(["V1", "FFC", "PHA1"], per), "vertex": np.arange(3 * per), "hemi": "left",
                      "level": np.repeat(["primary", "higher", "higher"], per)})
    sim = simulate_responses(v, DemoSpec(n_stimuli=600, n_features=8, n_units=8, seed=0))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is far quicker on a busy machine
    try:
        for trunk in ("shared", "roi"):
            run_pipeline(sim["X"], sim["Y"], root / f"fit_{trunk}", rois=v["roi"].to_numpy(),
                         levels=v["level"].to_numpy(), categories=sim["categories"], progress=False, checkpoint=False,
                         analysis=JNEAnalysis(hidden=32, max_epochs=60, n_boot=20, seed=0, device="cpu", trunk=trunk,
                                              fit_batch_size=64, test_fraction=0.3, grouping="categories"))
    finally:
        torch.set_num_threads(threads)
    odd = root / "other_settings"
    shutil.copytree(root / "fit_shared", odd)
    man = json.loads((odd / "manifest.json").read_text())
    man["config"]["seed"], man["trunk"]["mode"] = 1, "roi"
    (odd / "manifest.json").write_text(json.dumps(man))
    return root


def test_selectivity_compares_trunks_of_the_same_inputs(trunk_pair, roots):
    from jnecore import summaries
    from jnecore.bundle import load_bundle

    roots(trunk_pair)
    at = AppTest.from_file(_page("3_Stimulus_selectivity.py"), default_timeout=TIMEOUT)
    at.session_state["jne_bundle"] = str(trunk_pair / "fit_shared")
    at.run()
    assert_clean(at)
    assert any("leaks into the other regions' readouts" in i.value and "--trunk roi" in i.value for i in at.info)
    assert "trunk_margins" not in figures(at)  # offered, not shown until asked for
    at.toggle(key="s_trunk_compare").set_value(True).run()
    assert_clean(at)
    # the only twin is the per-ROI fit: the relabelled copy has another seed
    twin = at.selectbox(key="_w_s_trunk_twin")
    assert twin.options == ["fit_roi"] and twin.value == str(trunk_pair / "fit_roi")
    figs = figures(at)
    assert {"trunk_margins", "heatmap_here", "heatmap_other"} <= set(figs)
    bars = [tr for tr in figs["trunk_margins"]["data"] if tr["type"] == "bar"]
    assert [tr["name"] for tr in bars] == ["this bundle: shared trunk (the paper's)", "other: one encoder per ROI"]
    for tr, fit in zip(bars, ("fit_shared", "fit_roi")):
        b = load_bundle(trunk_pair / fit)
        v = b.vertices
        mask = v["significant"].to_numpy(bool) & np.isfinite(v["jne"].to_numpy(float))
        assert mask.sum() >= 12  # enough of a fit to compare
        table = summaries.roi_group_table(np.asarray(b.jne_ss), b.test_stimuli["category"], v["roi"], vertex_mask=mask)
        want = summaries.selectivity_margins(table).set_index("roi")
        np.testing.assert_allclose(np.asarray(tr["y"], dtype=float), want.loc[list(tr["x"]), "margin"], rtol=1e-6)
        assert list(tr["text"]) == want.loc[list(tr["x"]), "top"].tolist()
    side = table_with(at, "top (this bundle: shared trunk (the paper's))", "margin (other: one encoder per ROI)")
    assert set(side["roi"]) == {"V1", "FFC", "PHA1"}

    at.session_state["jne_bundle"] = str(trunk_pair / "fit_roi")  # from the per-ROI fit, the twin is the shared one
    at.run()
    assert_clean(at)
    assert any("one encoder per ROI" in c.value for c in at.caption)
    assert at.selectbox(key="_w_s_trunk_twin").value == str(trunk_pair / "fit_shared")
    assert [tr["name"] for tr in figures(at)["trunk_margins"]["data"] if tr["type"] == "bar"][1] == \
        "other: shared trunk (the paper's)"
