"""`jne demo --study` (issue 12, item 4): a simulated 3 subjects x 4 layers study, run through the
real sweep; its truth.json records the planted layer trend, and the bundles' JNE recovers it."""

import json

import numpy as np
import pytest
from scipy import stats

from jnecore._demo_study import LAYERS, LEVELS, MISSING, PEAK_LAYER
from jnecore.bundle import load_bundle
from jnecore.cli import main

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.slow]

@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """`jne demo --study --small` (StudySpec.small(): the sizes the trend is checked at)."""
    out = tmp_path_factory.mktemp("demo") / "study"
    assert main(["demo", "--study", "--small", "--out", str(out), "--jobs", "2", "--device", "cpu", "--quiet"]) == 0
    return out


def _recovered(out):
    """{(subject, layer): {level: mean JNE over the level's vertices}} from the bundles only."""
    state = json.loads((out / "study.json").read_text())
    rec = {}
    for c in state["cells"]:
        assert c["state"] == "done"
        b = load_bundle(out / c["bundle"])
        assert b.manifest["study"]["name"] == "demo-study"
        m = b.manifest["study"]
        v = b.vertices
        rec[(m["subject"], m["layer"])] = v.groupby("level")["jne"].mean().to_dict()
    return rec


def test_study_layout_and_truth(study):
    truth = json.loads((study / "truth.json").read_text())
    state = json.loads((study / "study.json").read_text())
    assert len(state["cells"]) == 12
    assert {c["subject"] for c in state["cells"]} == {"sub-01", "sub-02", "sub-03"}
    assert [c["layer"] for c in state["cells"][:4]] == list(LAYERS)
    assert [c["layer_index"] for c in state["cells"][:4]] == [0, 1, 2, 3]
    assert (study / "study.toml").is_file() and (study / "inputs" / "features.h5").is_file()
    assert truth["peak_layer"] == {"primary": "block01", "intermediate": "block02", "higher": "block03"}
    for name, sub in truth["subjects"].items():
        for lv in LEVELS:
            series = [sub["true_jne"][layer]["levels"][lv] for layer in LAYERS]
            # the exact JNE follows the planted share of missing units: same order, peak where planted
            assert stats.spearmanr(series, MISSING[lv]).statistic == pytest.approx(1.0)
            assert LAYERS[int(np.argmax(series))] == PEAK_LAYER[lv]
            for layer, missing in zip(LAYERS, MISSING[lv]):
                if missing == 0:  # every unit is a feature column: the response is linear in the layer
                    assert sub["true_jne"][layer]["levels"][lv] == pytest.approx(0.0, abs=1e-9)
    # subjects differ a little: not the same numbers, the same shape
    a, b = (np.array([[s["true_jne"][layer]["levels"][lv] for layer in LAYERS] for lv in LEVELS])
            for s in list(truth["subjects"].values())[:2])
    assert not np.allclose(a, b) and np.abs(a - b).max() < 0.15


def test_bundles_recover_the_planted_layer_trend(study):
    truth = json.loads((study / "truth.json").read_text())
    rec = _recovered(study)
    for name, sub in truth["subjects"].items():
        for lv in LEVELS:
            measured = [rec[(name, layer)][lv] for layer in LAYERS]
            assert LAYERS[int(np.argmax(measured))] == PEAK_LAYER[lv], (name, lv, measured)
        measured = [rec[(name, layer)][lv] for lv in LEVELS for layer in LAYERS]
        planted = [sub["true_jne"][layer]["levels"][lv] for lv in LEVELS for layer in LAYERS]
        assert stats.spearmanr(measured, planted).statistic > 0.8, (name, measured, planted)


def test_existing_demo_study_needs_overwrite(study, capsys):
    assert main(["demo", "--study", "--out", str(study)]) == 2
    assert capsys.readouterr().err == f"error: {study}: exists and is not empty: choose another --out or pass " \
                                      "--overwrite\n"


def test_overwrite_replaces_only_a_demo_study(tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    assert main(["demo", "--study", "--out", str(tmp_path / "mine"), "--overwrite"]) == 2
    assert "is not a demo study" in capsys.readouterr().err
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_study_page_recovers_the_planted_layer_trend(study, monkeypatch):
    """The Study page on the demo study: its peak-layer table (by level, mean over subjects and each
    subject) shows the planted peak, and jnecore.study's across-subject means rank the layers as
    the truth does."""
    pytest.importorskip("streamlit.testing.v1")
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    from jnecore.study import group_layer_table, load_study, study_vertices, subject_layer_table

    truth = json.loads((study / "truth.json").read_text())
    mean = group_layer_table(subject_layer_table(study_vertices(load_study(study)), by="level"), by="level")
    for lv in LEVELS:
        got = mean[mean["level"] == lv].sort_values("layer_index")["mean"].to_numpy()
        planted = np.mean([[s["true_jne"][layer]["levels"][lv] for layer in LAYERS]
                           for s in truth["subjects"].values()], axis=0)
        assert stats.spearmanr(got, planted).statistic > 0.7, (lv, got, planted)

    monkeypatch.setenv("JNE_BUNDLE_ROOTS", str(study))
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "dashboard" / "pages" / "7_Study.py"),
                           default_timeout=180)
    at.run()
    assert not at.exception and not at.error
    at.radio(key="st_by").set_value("level").run()
    assert not at.exception and not at.error
    subjects = sorted(truth["subjects"])
    peaks = next(d.value for d in at.dataframe if {"level", "mean", *subjects} <= set(d.value.columns))
    peaks = peaks.set_index("level")
    for lv in LEVELS:
        assert peaks.loc[lv, "mean"] == PEAK_LAYER[lv]
        assert all(peaks.loc[lv, s] == PEAK_LAYER[lv] for s in subjects)


@pytest.mark.parametrize("args,flag", [(["--jobs", "0"], "--jobs"), (["--seed", "-1"], "--seed"),
                                       (["--device", "quantum"], "--device"), (["--device", "meta"], "--device")])
def test_bad_options_write_nothing(tmp_path, capsys, args, flag):
    out = tmp_path / "study"
    assert main(["demo", "--study", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {flag}: ") and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()
