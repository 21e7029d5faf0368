"""The `jne` command line end to end: run, info, demo, and one-line errors for bad input."""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from jnecore.bundle import load_bundle
from jnecore.cli import main


pytestmark = pytest.mark.usefixtures("one_thread")


def _data(tmp_path, n=240, d=6, v=12, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    W = rng.normal(size=(d, v))
    Y = X @ W
    Y[:, :4] += 4.0 * np.abs(X[:, :1])  # nonlinear vertices (strong enough for a small, short fit)
    Y += 0.3 * rng.normal(size=Y.shape)
    Y[:, -2:] = rng.normal(size=(n, 2))  # pure noise vertices
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "Y.npy", Y.astype(np.float32))
    pd.DataFrame({"roi": ["V1"] * 4 + ["FFA-1"] * 4 + ["hV4"] * 4}).to_csv(tmp_path / "rois.csv", index=False)
    pd.DataFrame({"category": np.where(X[:, 0] > 0, "face", "scene")}).to_csv(tmp_path / "cats.csv", index=False)
    return X, Y


FAST = ["--hidden", "32", "--max-epochs", "150", "--n-boot", "100", "--quiet"]


def test_run_end_to_end(tmp_path, capsys):
    _data(tmp_path)
    out = tmp_path / "bundle"
    code = main(["run", "--features", str(tmp_path / "X.npy"), "--responses", str(tmp_path / "Y.npy"),
                 "--out", str(out), "--rois", str(tmp_path / "rois.csv"), "--categories", str(tmp_path / "cats.csv"),
                 *FAST])
    assert code == 0
    b = load_bundle(out)
    v = b.vertices
    assert list(v["level"]) == ["primary"] * 4 + ["higher"] * 4 + ["intermediate"] * 4
    assert len(b.test_stimuli) == 24 and b.jne_ss.shape == (24, 12)
    sig = v["significant"].to_numpy()
    assert sig[:10].all() and not sig[-2:].any()  # signal vertices found, noise vertices not
    assert np.isnan(v["jne"][~sig]).all() and np.isnan(np.asarray(b.jne_ss)[:, ~sig]).all()
    jne = v["jne"].to_numpy()
    assert jne[:4].min() > np.nanmax(jne[4:10])  # the planted |x| vertices are the most nonlinear
    m = b.manifest
    assert m["config"]["hidden"] == 32 and m["config"]["norm"] == "l1"
    assert {"split", "fit_linear", "fit_nonlinear", "scoring", "jne", "summaries"} <= set(m["timings"])
    assert set(b.table_names) >= {"roi_summary", "level_summary", "level_tests", "roi_group"}
    assert set(b.table("roi_group")["group"]) == {"face", "scene"}
    assert main(["info", str(out)]) == 0
    info = capsys.readouterr().out
    assert "significant 10" in info and "space    none" in info


def _run(tmp_path, *extra, out="b"):
    return main(["run", "--features", str(tmp_path / "X.npy"), "--responses", str(tmp_path / "Y.npy"),
                 "--out", str(tmp_path / out), *FAST, *extra])


@pytest.mark.parametrize("setup, args, needle", [
    (lambda p: np.save(p / "X.npy", np.full((240, 6), np.nan, np.float32)), [], "X.npy: features: 240 of 240 rows contain NaN"),
    (lambda p: np.save(p / "Y.npy", np.zeros((100, 12), np.float32)), [], "Y.npy: has 100 rows but"),
    (lambda p: (p / "X.npy").write_bytes(b""), [], "X.npy: is empty"),
    (lambda p: (p / "X.npy").write_bytes(b"\x93NUMPY garbage"), [], "X.npy: not a readable .npy file"),
    (lambda p: np.save(p / "X.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True), [], "pickled"),
    (lambda p: None, ["--norm", "l3"], "--norm: unknown value 'l3'"),
    (lambda p: None, ["--space", "mni"], "--space: unknown value 'mni'"),
    (lambda p: None, ["--rois", "MISSING.csv"], "MISSING.csv: no such file"),
    (lambda p: pd.DataFrame({"roi": ["V1"] * 5}).to_csv(p / "short.csv", index=False), ["--rois", "SHORT"], "has 5 ROI labels but 12"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, setup, args, needle):
    _data(tmp_path)
    setup(tmp_path)
    args = [str(tmp_path / "short.csv") if a == "SHORT" else a for a in args]
    assert _run(tmp_path, *args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and needle in err and "\n" not in err
    assert not (tmp_path / "b").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".b.tmp")]


def test_existing_out_refused_without_overwrite(tmp_path, capsys):
    _data(tmp_path)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "keep").write_text("x")
    assert _run(tmp_path) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert (tmp_path / "b" / "keep").read_text() == "x"


def test_console_script_reports_without_traceback(tmp_path):
    env = dict(os.environ)
    r = subprocess.run([sys.executable, "-m", "jnecore.cli", "run", "--features", str(tmp_path / "nope.npy"),
                        "--responses", str(tmp_path / "nope.npy"), "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 2
    assert r.stderr.strip().endswith("nope.npy: no such file") and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "jnecore.cli", "run", "--bogus"], capture_output=True, text=True)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1


def test_memory_estimate_is_printed_and_a_run_too_big_stops_at_once(tmp_path, capsys, monkeypatch):
    from jnecore.analysis import _memory

    _data(tmp_path)
    argv = ["run", "--features", str(tmp_path / "X.npy"), "--responses", str(tmp_path / "Y.npy"),
            "--out", str(tmp_path / "b"), *[f for f in FAST if f != "--quiet"], "--max-epochs", "2"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "memory: estimated peak" in err and "GB available" in err
    monkeypatch.setattr(_memory, "available_bytes", lambda device="cpu": 10 * 2**20)  # 10 MB free
    assert main(argv[:6] + [str(tmp_path / "c")] + argv[7:]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {tmp_path / 'Y.npy'}: this run needs about") and "\n" not in err
    assert "GB are available" in err and "--keep rois" in err
    assert not (tmp_path / "c").exists() and not (tmp_path / "c.partial").exists()


def test_memory_estimate_grows_with_the_responses():
    from jnecore import JNEAnalysis

    a = JNEAnalysis(hidden=64)
    small, big = (a.memory_estimate(2000, v, 32) for v in (20_000, 327_684))
    # the responses and their float32 working copy are held throughout: 2 * N * V * 4 bytes
    assert big.parts["responses"] == big.parts["working copy"] == 2000 * 327_684 * 4
    assert big.total - small.total > 2 * 2000 * (327_684 - 20_000) * 4
    assert a.memory_estimate(2000, 20_000, 32, responses_itemsize=8).parts["responses"] == 2 * small.parts["responses"]
