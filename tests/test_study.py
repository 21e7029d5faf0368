"""Studies: loading (study.json and a plain folder of bundles), the summaries against hand
computations on a planted study, the study figures, and the Study page in AppTest.

The study is fabricated with the project's bundle writer (3 subjects x 3 layers, a few hundred
fs_LR 32k vertices of 5 ROIs) with a planted peak layer per ROI; one extra cell goes through
run_pipeline to check that ``manifest_extra={"study": ...}`` reaches the manifest.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from jnecore import study as S

LAYERS = ["embed", "block6", "block12"]
SUBJECTS = ["subj01", "subj02", "subj05"]
#: planted peak layer (index) per ROI
PEAK = {"V1": 0, "V2": 1, "V4": 1, "FFC": 2, "PHA1": 2}
#: planted JNE scale per ROI (higher-order highest)
SCALE = {"V1": 1.0, "V2": 1.5, "V4": 1.8, "FFC": 3.0, "PHA1": 2.6}
#: planted R² gain per layer (grows with depth)
GAIN = [0.01, 0.03, 0.06]
SUBJECT_GAIN = {"subj01": 1.0, "subj02": 1.1, "subj05": 0.9}


def _vertices(stride: int = 12) -> pd.DataFrame:
    from jnecore.atlas import visual_vertices

    v = visual_vertices()
    v = v[v["roi"].isin(list(PEAK))]
    v = v[v.groupby("roi").cumcount() % stride == 0]
    return v[["vertex", "hemi", "roi", "level"]].reset_index(drop=True)


def _cell_vertices(base, subject, li, rng) -> pd.DataFrame:
    v = base.copy()
    roi = v["roi"].to_numpy()
    profile = np.array([1.0 + (1.0 if li == PEAK[r] else 0.4 * (1 - abs(li - PEAK[r]) / 2)) for r in roi])
    jne = np.array([SCALE[r] for r in roi]) * profile * SUBJECT_GAIN[subject] * rng.uniform(0.9, 1.1, len(v))
    sig = rng.random(len(v)) < 0.8
    jne[~sig & (rng.random(len(v)) < 0.5)] = np.nan  # some non-significant vertices have no JNE
    jne[~sig] = np.where(np.isfinite(jne[~sig]), 50.0, np.nan)  # would dominate if they entered
    r2l = rng.uniform(0.05, 0.3, len(v))
    v["r2_linear"] = r2l
    v["r2_nonlinear"] = r2l + GAIN[li] * SUBJECT_GAIN[subject] + rng.normal(0, 0.002, len(v))
    v["p_fdr"] = np.where(sig, 0.01, 0.5)
    v["significant"] = sig
    v["jne"] = jne
    return v


def _write_cell(path, v, meta, space="fsLR32k"):
    from jnecore.bundle import write_bundle

    n_test = 3
    stimuli = pd.DataFrame({"stimulus": [f"s{i}" for i in range(5)], "split": ["test"] * n_test + ["train"] * 2,
                            "category": "all"})
    ss = np.zeros((n_test, len(v)), dtype=np.float32)
    man = {"space": space, "config": {}, "name": f"cell {meta['subject']} {meta['layer']}", "simulated": True,
           "study": meta}
    write_bundle(path, vertices=v, jne_ss=ss, stimuli=stimuli, manifest=man)


def build_study(root: Path, *, subjects=SUBJECTS, study_json=True, name="planted", seed=0, extra_cells=(),
                stride: int = 12, space: str = "fsLR32k") -> Path:
    """A study folder with the contract's layout (every ``stride``-th vertex of 5 ROIs); returns its path."""
    rng = np.random.default_rng(seed)
    base = _vertices(stride)
    cells = []
    for subject in subjects:
        for li, layer in enumerate(LAYERS):
            rel = f"cells/{subject}/{layer}/default"
            meta = {"name": name, "subject": subject, "layer": layer, "layer_index": li, "setting": "default",
                    "params": {"activation": "relu", "hidden": 16}}
            _write_cell(root / rel, _cell_vertices(base, subject, li, rng), meta, space=space)
            cells.append(dict(id=f"{subject}/{layer}/default", subject=subject, layer=layer, layer_index=li,
                              setting="default", params=meta["params"], state="done", reason=None, bundle=rel,
                              started="2026-12-03T10:00:00Z", finished="2026-12-03T10:00:05Z", seconds=5.0))
    cells += list(extra_cells)
    if study_json:
        (root / "study.json").write_text(json.dumps({"schema": "jne-study/1", "name": name, "study_file": "s.toml",
                                                     "created": "2026-12-03T10:00:00Z", "cells": cells}))
    return root


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Path:
    failed = dict(id="subj01/block12/relu-h64", subject="subj01", layer="block12", layer_index=2, setting="relu-h64",
                  params={"hidden": 64}, state="failed", reason="out of memory", bundle="cells/x", started=None,
                  finished=None, seconds=None)
    return build_study(tmp_path_factory.mktemp("study") / "planted", extra_cells=[failed])


@pytest.fixture(scope="module")
def long_table(planted):
    return S.study_vertices(S.load_study(planted))


# ------------------------------------------------------------------------------------------ loading


def test_load_study_json(planted):
    st = S.load_study(planted)
    assert st.source == "study.json" and st.name == "planted" and st.space == "fsLR32k"
    assert st.layers == LAYERS and st.subjects == SUBJECTS and st.settings == ["default"]
    assert st.state_counts() == {"done": 9, "failed": 1}
    failed = st.cells[st.cells["state"] == "failed"].iloc[0]
    assert failed["reason"] == "out of memory" and pd.isna(failed["bundle"])
    assert list(st.cells.columns) == S.CELL_COLUMNS


def test_folder_of_bundles_without_study_json(planted, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(planted / "cells", bare / "some" / "where")
    st = S.load_study(bare)
    assert st.source == "bundles" and st.name == "planted"
    assert st.layers == LAYERS and st.subjects == SUBJECTS and len(st.done) == 9
    a = S.study_vertices(S.load_study(planted))
    b = S.study_vertices(st)
    cols = ["subject", "layer", "vertex", "jne", "r2_gain"]
    pd.testing.assert_frame_equal(a[cols].sort_values(cols[:3]).reset_index(drop=True),
                                  b[cols].sort_values(cols[:3]).reset_index(drop=True))
    assert S.find_studies(tmp_path) == [(str((bare / "some" / "where").resolve()), "planted")]
    assert S.find_studies(planted.parent) == [(str(planted.resolve()), None)]


def test_a_damaged_cell_is_skipped_with_a_warning(planted, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(planted / "cells", bare)
    bad = bare / SUBJECTS[0] / LAYERS[1] / "default" / "manifest.json"
    bad.write_text("[" * 100_000)
    st = S.load_study(bare)
    assert len(st.done) == 8
    assert len(st.warnings) == 1 and str(bad.parent) in st.warnings[0] and "damaged" in st.warnings[0]


def test_no_study_is_one_clear_error(tmp_path):
    from jnecore.validation import InputError

    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no study cells"):
        S.load_study(tmp_path / "empty")
    with pytest.raises(InputError, match="is not a folder"):
        S.load_study(tmp_path / "nothing")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "study.json").write_text("{nope")
    with pytest.raises(InputError, match="study.json: is not valid JSON"):
        S.load_study(tmp_path / "bad")


def test_two_studies_in_one_folder_and_a_damaged_cell(planted, tmp_path):
    from jnecore.validation import InputError

    mixed = tmp_path / "mixed"
    shutil.copytree(planted / "cells", mixed / "a")
    build_study(mixed / "b", name="other", subjects=SUBJECTS[:1], study_json=False)
    with pytest.raises(InputError, match=r"holds cells of 2 studies \(other, planted\)"):
        S.load_study(mixed)
    assert S.load_study(mixed, name="other").subjects == SUBJECTS[:1]
    assert S.find_studies(mixed) == [(str((mixed / "a").resolve()), "planted"), (str((mixed / "b" / "cells" / "subj01").resolve()), "other")]
    broken = mixed / "b" / "cells" / "subj01" / "embed" / "default" / "vertices.parquet"
    broken.write_bytes(b"not parquet")
    with pytest.raises(InputError, match="vertices.parquet: not a readable parquet file"):
        S.study_vertices(S.load_study(mixed, name="other"))


def test_layers_follow_layer_index_not_names(tmp_path):
    """Layer order is the contract's layer_index, whatever the names sort to."""
    st = S.load_study(build_study(tmp_path / "s", subjects=SUBJECTS[:1]))
    assert st.layers == LAYERS and sorted(LAYERS) != LAYERS
    assert list(st.cells["layer"]) == LAYERS


def test_run_pipeline_cell_carries_the_study_block(tmp_path):
    """A real cell, as `jne sweep` writes it: run_pipeline(..., manifest_extra={"study": ...})."""
    import torch

    from jnecore import JNEAnalysis
    from jnecore.demo import DemoSpec, simulate_responses
    from jnecore.pipeline import run_pipeline

    v = pd.DataFrame({"roi": np.repeat(["V1", "FFC"], 4), "vertex": np.arange(8), "hemi": "left",
                      "level": np.repeat(["primary", "higher"], 4)})
    sim = simulate_responses(v, DemoSpec(n_stimuli=200, n_features=6, n_units=4, seed=0))
    meta = {"name": "real", "subject": "s1", "layer": "block3", "layer_index": 3, "setting": "relu-h16",
            "params": {"activation": "relu", "hidden": 16}}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_pipeline(sim["X"], sim["Y"], tmp_path / "cells" / "s1" / "block3" / "relu-h16", rois=v["roi"].to_numpy(),
                     levels=v["level"].to_numpy(), progress=False, checkpoint=False, check_memory=False,
                     manifest_extra={"study": meta},
                     analysis=JNEAnalysis(hidden=16, max_epochs=5, n_boot=10, seed=0, device="cpu",
                                          test_fraction=0.3))
    finally:
        torch.set_num_threads(threads)
    st = S.load_study(tmp_path)
    assert st.name == "real" and st.layers == ["block3"] and st.settings == ["relu-h16"]
    row = st.cells.iloc[0]
    assert row["id"] == "s1/block3/relu-h16" and row["layer_index"] == 3
    assert json.loads(row["params"]) == meta["params"]
    long = S.study_vertices(st)
    assert len(long) == 8 and set(long["roi"]) == {"V1", "FFC"}


# ------------------------------------------------------------------------------------------ summaries


def _hand_roi_means(long):
    """Per (subject, layer, roi): the mean JNE of the significant vertices with a finite JNE, by hand."""
    out = {}
    for (subj, layer, roi), g in long.groupby(["subject", "layer", "roi"]):
        vals = [x for x, s in zip(g["jne"], g["significant"]) if s and np.isfinite(x)]
        out[(subj, layer, roi)] = (sum(vals) / len(vals), len(vals))
    return out


def test_subject_layer_table_matches_hand_groupby(long_table):
    t = S.subject_layer_table(long_table, "roi")
    hand = _hand_roi_means(long_table)
    assert len(t) == len(hand) == 3 * 3 * 5
    for _, r in t.iterrows():
        mean, n = hand[(r["subject"], r["layer"], r["roi"])]
        assert r["n"] == n and r["mean"] == pytest.approx(mean, rel=1e-12)
    # the planted non-significant 50.0s never enter
    assert t["mean"].max() < 20
    lv = S.subject_layer_table(long_table, "level")
    g = long_table[long_table["significant"] & np.isfinite(long_table["jne"])]
    want = g.groupby(["subject", "layer", "level"])["jne"].mean()
    got = lv.set_index(["subject", "layer", "level"])["mean"]
    np.testing.assert_allclose(got.sort_index().to_numpy(), want.sort_index().to_numpy(), rtol=1e-12)


def test_group_layer_table_is_mean_and_sem_over_subjects(long_table):
    t = S.subject_layer_table(long_table, "roi")
    grp = S.group_layer_table(t, "roi")
    hand = _hand_roi_means(long_table)
    assert len(grp) == 3 * 5
    for _, r in grp.iterrows():
        xs = np.array([hand[(s, r["layer"], r["roi"])][0] for s in SUBJECTS])
        assert r["n_subjects"] == 3
        assert r["mean"] == pytest.approx(xs.sum() / 3, rel=1e-12)
        sd = np.sqrt(((xs - xs.mean()) ** 2).sum() / 2)  # closed form, ddof = 1
        assert r["sem"] == pytest.approx(sd / np.sqrt(3), rel=1e-10)
    # layers in depth order, ROIs in hierarchy order within a layer
    first = grp[grp["layer"] == "embed"]
    assert list(first["roi"]) [0] == "V1" and set(first["roi"]) == set(PEAK)
    assert list(dict.fromkeys(grp["layer"])) == LAYERS


def test_peak_layers_recover_the_plant(long_table):
    t = S.subject_layer_table(long_table, "roi")
    per_subject = S.peak_layers(t, "roi")
    assert len(per_subject) == 3 * 5
    for _, r in per_subject.iterrows():
        assert r["peak_layer_index"] == PEAK[r["roi"]] and r["peak_layer"] == LAYERS[PEAK[r["roi"]]]
    mean = S.peak_layers(S.group_layer_table(t, "roi"), "roi")
    assert set(mean["subject"]) == {"mean"}
    assert dict(zip(mean["roi"], mean["peak_layer_index"])) == PEAK
    # ties go to the shallowest layer
    tie = pd.DataFrame({"setting": "d", "subject": "a", "roi": "X", "layer": ["l0", "l1", "l2"], "layer_index": [0, 1, 2],
                        "mean": [1.0, 2.0, 2.0]})
    assert S.peak_layers(tie, "roi")["peak_layer"].tolist() == ["l1"]


def test_vertex_peak_layer_map(long_table):
    peaks = S.vertex_peak_layer(long_table)
    # by hand: per vertex and layer, mean over subjects where significant and finite; argmax over layers
    ok = long_table[long_table["significant"] & np.isfinite(long_table["jne"])]
    per = ok.groupby(["vertex", "layer_index"])["jne"].mean().unstack()
    want = per.to_numpy()
    idx = np.nanargmax(np.where(np.isfinite(want), want, -np.inf), axis=1)
    got = peaks.set_index("vertex").loc[per.index]
    np.testing.assert_array_equal(got["peak_layer_index"].to_numpy(), per.columns.to_numpy()[idx])
    # the plant: nearly every vertex peaks at its ROI's layer (noise is ±10 %, the peak is 40 % higher)
    hit = (peaks["peak_layer_index"] == peaks["roi"].map(PEAK)).mean()
    assert hit > 0.95
    assert set(peaks["peak_layer"]) <= set(LAYERS)


def test_subject_correlations_match_numpy(long_table):
    t = S.subject_layer_table(long_table, "roi")
    pooled = S.subject_correlations(t, "roi")
    assert len(pooled) == 3 and set(pooled["layer"]) == {"all"}
    for _, r in pooled.iterrows():
        a = t[t["subject"] == r["subject_a"]].set_index(["layer", "roi"])["mean"]
        b = t[t["subject"] == r["subject_b"]].set_index(["layer", "roi"])["mean"].reindex(a.index)
        assert r["n"] == 15
        assert r["r"] == pytest.approx(np.corrcoef(a.to_numpy(), b.to_numpy())[0, 1], rel=1e-10)
    per = S.subject_correlations(t, "roi", per_layer=True)
    assert len(per) == 9 and list(dict.fromkeys(per["layer"])) == LAYERS
    r = per[(per["layer"] == "block6") & (per["subject_a"] == "subj01") & (per["subject_b"] == "subj05")].iloc[0]
    a = t[(t["subject"] == "subj01") & (t["layer"] == "block6")].set_index("roi")["mean"]
    b = t[(t["subject"] == "subj05") & (t["layer"] == "block6")].set_index("roi")["mean"].reindex(a.index)
    assert r["r"] == pytest.approx(np.corrcoef(a, b)[0, 1], rel=1e-10)
    m = S.correlation_matrix(pooled)
    assert list(m.index) == SUBJECTS and np.allclose(np.diag(m), 1) and np.allclose(m, m.T)


def test_vertex_consistency_counts_and_means(long_table):
    c = S.vertex_consistency(long_table, layer="block12")
    assert set(c["layer"]) == {"block12"} and len(c) == long_table["vertex"].nunique()
    sub = long_table[long_table["layer"] == "block12"]
    for vtx in c["vertex"].to_numpy()[::17]:
        rows = sub[sub["vertex"] == vtx]
        enter = rows[rows["significant"] & np.isfinite(rows["jne"])]["jne"]
        r = c[c["vertex"] == vtx].iloc[0]
        assert r["n_significant"] == int(rows["significant"].sum()) and r["n_subjects"] == 3
        assert r["n_mean"] == len(enter)
        if len(enter):
            assert r["mean"] == pytest.approx(enter.mean(), rel=1e-12)
        else:
            assert np.isnan(r["mean"])


def _bh_reference(p):
    """Benjamini-Hochberg by hand: q_(i) = min over j >= i of p_(j) * m / j."""
    p = np.asarray(p, dtype=float)
    m = len(p)
    order = np.argsort(p)
    q = np.empty(m)
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, p[i] * m / rank)
        q[i] = running
    return q


def test_r2_gain_across_layers(long_table):
    t = S.subject_layer_table(long_table, "level", "r2_gain")
    grp = S.group_layer_table(t, "level")
    for _, r in grp.iterrows():
        li = LAYERS.index(r["layer"])
        assert r["mean"] == pytest.approx(GAIN[li] * np.mean(list(SUBJECT_GAIN.values())), abs=0.002)
        g = long_table[(long_table["layer"] == r["layer"]) & (long_table["level"] == r["level"])
                       & long_table["significant"]]
        xs = g.groupby("subject").apply(lambda d: (d["r2_nonlinear"] - d["r2_linear"]).mean()).to_numpy()
        assert r["sem"] == pytest.approx(xs.std(ddof=1) / np.sqrt(len(xs)), rel=1e-8)


def test_hierarchy_tests_paired_across_subjects(long_table):
    from scipy import stats

    t = S.subject_layer_table(long_table, "level")
    means = S.subject_means(t, "level", layer="block12")
    assert list(means.columns) == ["primary", "intermediate", "higher"] and list(means.index) == SUBJECTS
    tests = S.hierarchy_tests(means)
    assert len(tests) == 6
    for _, r in tests.iterrows():
        d = means[r["a"]].to_numpy() - means[r["b"]].to_numpy()
        tt = d.mean() / (d.std(ddof=1) / np.sqrt(3))  # paired t by hand
        assert r["statistic"] == pytest.approx(tt, rel=1e-10)
        assert r["p"] == pytest.approx(stats.t.sf(tt, df=2), rel=1e-8)
    np.testing.assert_allclose(tests["q"], _bh_reference(tests["p"]), rtol=1e-12)
    hi = tests[(tests["a"] == "higher") & (tests["b"] == "primary")].iloc[0]
    assert hi["mean_diff"] > 0 and hi["p"] < 0.05
    # averaged over layers: each layer counts once per subject
    avg = S.subject_means(t, "level")
    want = t[t["subject"] == "subj02"].groupby("level")["mean"].mean()
    assert avg.loc["subj02", "higher"] == pytest.approx(want["higher"], rel=1e-12)
    w = S.hierarchy_tests(means, test="wilcoxon")
    assert w["p"].min() == pytest.approx(0.125)  # exact signed-rank, 3 subjects: 1 / 2**3 at best
    # fewer than 3 subjects: no test
    assert S.hierarchy_tests(means.iloc[:2]).empty


def test_fewer_than_three_subjects(tmp_path):
    st = S.load_study(build_study(tmp_path / "two", subjects=SUBJECTS[:2]))
    t = S.subject_layer_table(S.study_vertices(st), "roi")
    assert S.hierarchy_tests(S.subject_means(t, "roi")).empty
    assert len(S.subject_correlations(t)) == 1


# ------------------------------------------------------------------------------------------ figures


def test_study_figures(long_table):
    from jnecore.plotting import (layer_colorscale, plot_layer_lines, plot_peak_layer_map, plot_peak_layers,
                                  plot_r2_gain, plot_subject_correlations)

    t = S.subject_layer_table(long_table, "roi")
    grp = S.group_layer_table(t, "roi")
    fig = plot_layer_lines(grp, by="roi", subjects=t)
    lines = {tr.name: tr for tr in fig.data if tr.mode == "lines+markers"}
    assert set(lines) == set(PEAK)
    ffc = grp[grp["roi"] == "FFC"]
    np.testing.assert_allclose(lines["FFC"].y, ffc["mean"].to_numpy())
    band = next(tr for tr in fig.data if tr.name == "FFC ± SEM")
    np.testing.assert_allclose(band.y[:3], (ffc["mean"] + ffc["sem"]).to_numpy())
    assert sum(1 for tr in fig.data if tr.name.startswith("FFC · ")) == 3
    assert list(fig.layout.xaxis.categoryarray) == LAYERS

    gain = plot_r2_gain(S.group_layer_table(S.subject_layer_table(long_table, "level", "r2_gain"), "level"))
    assert gain.layout.shapes and gain.layout.shapes[0].y0 == 0

    peaks = pd.concat([S.peak_layers(t, "roi"), S.peak_layers(grp, "roi")], ignore_index=True)
    pf = plot_peak_layers(peaks, LAYERS, by="roi", groups=list(PEAK))
    bar = pf.data[0]
    assert bar.name == "mean over subjects" and bar.base == -0.5
    np.testing.assert_array_equal(np.asarray(bar.y) + bar.base, [PEAK[r] for r in PEAK])
    assert list(pf.layout.yaxis.ticktext) == LAYERS and len(pf.data) == 1 + 3

    m = S.correlation_matrix(S.subject_correlations(t))
    hf = plot_subject_correlations(m)
    np.testing.assert_allclose(np.asarray(hf.data[0].z, dtype=float), m.to_numpy())

    scale = layer_colorscale(3)
    assert len(scale) == 6 and scale[1][1] == scale[0][1] and scale[2][1] != scale[1][1]
    vp = S.vertex_peak_layer(long_table)
    mf = plot_peak_layer_map(vp, LAYERS, space="fsLR32k", hemi="left", view="ventral")
    cb = next(tr for tr in mf.data if tr.name == "colorbar")
    assert list(cb.marker.colorbar.ticktext) == LAYERS and list(cb.marker.colorbar.tickvals) == [0, 1, 2]
    assert mf.layout.meta["vmin"] == -0.5 and mf.layout.meta["vmax"] == 2.5


# ------------------------------------------------------------------------------------------ the Study page


def _study_page(monkeypatch, *roots):
    pytest.importorskip("streamlit.testing.v1")
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("JNE_BUNDLE_ROOTS", os.pathsep.join(str(r) for r in roots))
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "dashboard" / "pages" / "7_Study.py"),
                           default_timeout=180)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def _table(at, *columns):
    for d in at.dataframe:
        if set(columns) <= set(d.value.columns):
            return d.value
    raise AssertionError(f"no table with columns {columns}")


def test_study_page_shows_the_planted_peaks(planted, monkeypatch):
    at = _study_page(monkeypatch, planted)
    assert at.title[0].value == "Study"
    assert any("1 cell(s) failed" in w.value for w in at.warning)
    assert {m.label: m.value for m in at.metric}["Cells done"] == "9 / 10"
    peaks = _table(at, "roi", "mean", *SUBJECTS).set_index("roi")
    shown = [r for r in PEAK if r in peaks.index]
    assert len(shown) == 5
    for roi in shown:
        assert peaks.loc[roi, "mean"] == LAYERS[PEAK[roi]]
        assert all(peaks.loc[roi, s] == LAYERS[PEAK[roi]] for s in SUBJECTS)
    # the hierarchy tests ran (3 subjects) and say which test; the vertex-wise caveat is shown
    tests = _table(at, "a", "b", "q", "test")
    assert set(tests["test"]) == {"ttest"} and len(tests) == 6
    captions = " ".join(c.value for c in at.caption)
    assert "treat neighbouring vertices as independent" in captions and "overstate significance" in captions
    # every figure and table has its download
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels.count("Download figure (HTML)") >= len(at.get("plotly_chart")) >= 6
    assert labels.count("Download table (CSV)") >= len(at.dataframe)
    # by hierarchy level
    at.radio(key="st_by").set_value("level").run()
    assert not at.exception and not at.error
    lv = _table(at, "level", "mean", *SUBJECTS).set_index("level")
    assert lv.loc["primary", "mean"] == "embed" and lv.loc["higher", "mean"] == "block12"


def test_study_page_two_subjects_and_no_study(tmp_path, monkeypatch):
    two = build_study(tmp_path / "two", subjects=SUBJECTS[:2], study_json=False)
    at = _study_page(monkeypatch, two)
    assert any("no test across subjects" in i.value for i in at.info)
    (tmp_path / "empty").mkdir()
    at = _study_page(monkeypatch, tmp_path / "empty")
    assert at.info and "No study found" in at.info[0].value and "jne sweep" in at.info[0].value


def test_study_page_without_a_mesh(tmp_path, monkeypatch):
    """A study in space "none": no surface map, the tables instead; the rest of the page as usual."""
    at = _study_page(monkeypatch, build_study(tmp_path / "flat", space="none"))
    assert any("has no cortical mesh" in i.value for i in at.info)
    peaks = _table(at, "roi", "mean", *SUBJECTS).set_index("roi")
    assert peaks.loc["FFC", "mean"] == "block12"
    assert _table(at, "vertex", "peak_layer", "peak_layer_index")["peak_layer"].isin(LAYERS).all()
