"""`jne sweep` (issue 12, item 2): a study file's subjects x layers x settings, each an ordinary
bundle; study.json states; a failed cell does not stop the others; --resume; per-cell locks;
bad study files; the same sweep on a local Ray instance gives identical bundles."""

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from jnecore._atomic import lock_out
from jnecore.bundle import load_bundle, validate_bundle
from jnecore.cli import main
from jnecore.sweep import read_state, run_sweep

N, D, V = 120, 4, 6
LAYERS = ("embedding", "block01", "block02")
RUN = 'hidden = 8\nmax_epochs = 25\nn_boot = 20\ndevice = "cpu"\nseed = 3\n'
ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1",
           PYTHONPATH=str(Path(__file__).resolve().parents[1]))

pytestmark = pytest.mark.usefixtures("one_thread")


def _inputs(root: Path, subjects=("s1", "s2")):
    """A jne-features file (one dataset per layer) and one input set per subject, each subject with
    its own response count (so a bundle shows which subject it came from)."""
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(N, D))
    with h5py.File(root / "feat.h5", "w") as fh:
        fh.attrs["format"] = "jne-features"
        fh.attrs["layers"] = json.dumps(list(LAYERS))
        fh.attrs["dims"] = json.dumps([D] * len(LAYERS))
        for i, name in enumerate(LAYERS):
            fh[name] = (Z + 0.4 * i * Z ** 2).astype(np.float32)
    for k, s in enumerate(subjects):
        v = V + k
        Y = Z @ rng.normal(size=(D, v)) + np.abs(Z[:, :1]) + 0.3 * rng.normal(size=(N, v))
        (root / s).mkdir(exist_ok=True)
        np.save(root / s / "Y.npy", Y.astype(np.float32))
        pd.DataFrame({"roi": ["V1"] * (v // 2) + ["FFC"] * (v - v // 2)}).to_csv(root / s / "rois.csv", index=False)


def _study(root: Path, *, subjects=("s1", "s2"), layers=LAYERS[:2], settings='[settings.default]\n', extra="",
           run=RUN, name="tiny"):
    subs = "".join(f'[subjects.{s}]\nresponses = "{s}/Y.npy"\nrois = "{s}/rois.csv"\n' for s in subjects)
    text = (f'name = "{name}"\nfeatures = "feat.h5"\nlayers = {json.dumps(list(layers))}\n{extra}\n{subs}'
            f'{settings}\n[run]\n{run}')
    path = root / "study.toml"
    path.write_text(text)
    return path


SETTINGS = '[settings.default]\n[settings.gelu-h4]\nactivation = "gelu"\nhidden = 4\n'


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """2 subjects x 2 layers x 2 settings, swept with --jobs 2 (one torch thread per job)."""
    root = tmp_path_factory.mktemp("sweep")
    _inputs(root)
    study = _study(root, settings=SETTINGS)
    lines = []
    path, counts, _ = run_sweep(study, jobs=2, log=lines.append)
    return root, study, path, counts, lines


def test_every_cell_is_a_bundle_with_its_study_metadata(swept):
    root, study, path, counts, lines = swept
    assert counts == {"done": 8, "failed": 0, "skipped": 0, "total": 8}
    state = json.loads(path.read_text())
    assert state["schema"] == "jne-study/1" and state["name"] == "tiny" and state["study_file"] == str(study)
    expected = [(s, li, l, st) for s in ("s1", "s2") for li, l in enumerate(LAYERS[:2])
                for st in ("default", "gelu-h4")]
    assert [(c["subject"], c["layer_index"], c["layer"], c["setting"]) for c in state["cells"]] == expected
    params = {"default": {}, "gelu-h4": {"activation": "gelu", "hidden": 4}}
    for c in state["cells"]:
        assert c["id"] == f"{c['subject']}/{c['layer']}/{c['setting']}"
        assert c["bundle"] == f"cells/{c['id']}" and c["state"] == "done" and c["reason"] is None
        assert c["params"] == params[c["setting"]]
        assert isinstance(c["seconds"], float) and c["started"] <= c["finished"]
        bundle = path.parent / c["bundle"]
        assert validate_bundle(bundle) == []
        b = load_bundle(bundle)
        assert b.manifest["study"] == {"name": "tiny", "subject": c["subject"], "layer": c["layer"],
                                       "layer_index": c["layer_index"], "setting": c["setting"],
                                       "params": params[c["setting"]]}
        # the cell read its own subject's responses and its own layer of the feature file
        assert len(b.vertices) == V + (c["subject"] == "s2")
        assert b.manifest["sources"]["features"] == f"{root / 'feat.h5'}:{c['layer']}"
        config = b.manifest["config"]  # the setting overrides [run]; [run] applies to the rest
        assert config["hidden"] == (4 if c["setting"] == "gelu-h4" else 8)
        assert (config["activation"], config["max_epochs"], config["seed"]) == \
            ("gelu" if c["setting"] == "gelu-h4" else "relu", 25, 3)
    assert sum(": done in " in line for line in lines) == 8
    assert lines[-1].startswith("study tiny: 8 of 8 cells done, 0 failed")


def test_cell_matches_jne_run_on_the_same_inputs(swept, tmp_path):
    """A cell is what `jne run` writes for its subject, layer and options (same vertex table)."""
    root, _, path, _, _ = swept
    out = tmp_path / "run"
    assert main(["run", "--features", f"{root / 'feat.h5'}:block01", "--responses", str(root / "s2" / "Y.npy"),
                 "--rois", str(root / "s2" / "rois.csv"), "--hidden", "4", "--activation", "gelu",
                 "--max-epochs", "25", "--n-boot", "20", "--device", "cpu", "--seed", "3", "--quiet",
                 "--out", str(out)]) == 0
    a = pd.read_parquet(out / "vertices.parquet")
    b = pd.read_parquet(path.parent / "cells/s2/block01/gelu-h4/vertices.parquet")
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_rerun_needs_resume_and_resume_with_nothing_left_runs_nothing(swept, capsys):
    _, study, path, _, _ = swept
    before = path.read_text()
    assert main(["sweep", str(study)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "study.json: exists: pass --resume" in err
    assert main(["sweep", str(study), "--resume"]) == 0
    out = capsys.readouterr().out
    assert "0 of 8 cells to run" in out and "8 of 8 cells done" in out
    assert json.loads(path.read_text())["cells"] == json.loads(before)["cells"]


def test_failed_cell_does_not_stop_the_others_and_resume_runs_only_it(tmp_path, capsys):
    _inputs(tmp_path, subjects=("s1", "s3"))
    good = np.load(tmp_path / "s3" / "Y.npy")
    np.save(tmp_path / "s3" / "Y.npy", good[:-1])  # one row short: every s3 cell fails
    study = _study(tmp_path, subjects=("s1", "s3"))
    assert main(["sweep", str(study), "--threads", "1"]) == 1
    out = capsys.readouterr().out
    state = read_state(tmp_path / "tiny")
    by_id = {c["id"]: c for c in state["cells"]}
    for layer in LAYERS[:2]:
        assert by_id[f"s1/{layer}/default"]["state"] == "done"
        bad = by_id[f"s3/{layer}/default"]
        assert bad["state"] == "failed" and not (tmp_path / "tiny" / bad["bundle"]).exists()
        # the line `jne run` prints for the same inputs
        assert bad["reason"] == f"{tmp_path / 's3' / 'Y.npy'}: has {N - 1} rows but {tmp_path / 'feat.h5'}:{layer} " \
                                f"has {N}: one row per stimulus in both"
        assert "\n" not in bad["reason"]
    assert "study tiny: 2 of 4 cells done, 2 failed" in out
    done_mtime = (tmp_path / "tiny/cells/s1/embedding/default/manifest.json").stat().st_mtime_ns

    np.save(tmp_path / "s3" / "Y.npy", good)
    assert main(["sweep", str(study), "--resume", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    ran = [line.split()[1].rstrip(":") for line in out.splitlines() if line.startswith("[")]
    assert sorted(ran) == ["s3/block01/default", "s3/embedding/default"]
    assert all(c["state"] == "done" and c["reason"] is None for c in read_state(tmp_path / "tiny")["cells"])
    assert (tmp_path / "tiny/cells/s1/embedding/default/manifest.json").stat().st_mtime_ns == done_mtime


def test_a_cell_locked_by_another_sweep_is_left_to_it(tmp_path, capsys):
    _inputs(tmp_path, subjects=("s1",))
    study = _study(tmp_path, subjects=("s1",))
    held = tmp_path / "tiny" / "cells" / "s1" / "block01" / "default"
    with lock_out(held):
        assert main(["sweep", str(study), "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert f"s1/block01/default: skipped: being run by another sweep (PID {os.getpid()})" in out
    cells = {c["id"]: c for c in read_state(tmp_path / "tiny")["cells"]}
    assert cells["s1/embedding/default"]["state"] == "done"
    assert cells["s1/block01/default"]["state"] == "pending" and not held.exists()
    assert "1 of 2 cells done, 0 failed, 1 left to another sweep" in out


@pytest.mark.slow
def test_two_concurrent_sweeps_never_run_the_same_cell(tmp_path):
    _inputs(tmp_path, subjects=("s1", "s2"))
    study = _study(tmp_path, subjects=("s1", "s2"))
    code = ("import sys; from jnecore.cli import main; c = main(sys.argv[1:]); "
            "print('RAY-IMPORTED' if 'ray' in sys.modules else 'no-ray'); sys.exit(c)")
    cmd = [sys.executable, "-c", code, "sweep", str(study), "--resume", "--threads", "1"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
             for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1] for o in outs]
    ran = [line.split()[1].rstrip(":") for out, _ in outs for line in out.splitlines()
           if line.startswith("[") and ": done in " in line]
    assert sorted(ran) == sorted(f"{s}/{layer}/default" for s in ("s1", "s2") for layer in LAYERS[:2])
    assert all(out.strip().endswith("no-ray") for out, _ in outs)  # a local sweep never imports Ray
    assert all(c["state"] == "done" for c in read_state(tmp_path / "tiny")["cells"])


BAD = {
    "unknown top key": (dict(extra='colour = "red"'), "study.toml: colour: unknown key"),
    "unknown subject key": (dict(extra=""), "study.toml: subjects.s1.respones: unknown key"),
    "missing subject folder": (dict(extra=""), "study.toml: subjects.s9.prepared: {tmp}/nowhere/s9 does not exist"),
    "layer not in feature file": (dict(layers=["embedding", "block07"]),
                                  "study.toml: layers: the feature file has no layer 'block07'"),
    "unknown run option": (dict(run='hidden = 8\ndepth = 3\n'), "study.toml: run.depth: unknown option"),
    "bad option value": (dict(settings='[settings.h0]\nhidden = 0\n'),
                         "study.toml: settings.h0.hidden: must be an integer >= 1, got 0"),
    "bad option type": (dict(run='max_epochs = "many"\n'),
                        "study.toml: run.max_epochs: must be an integer, got 'many'"),
    "bad setting name": (dict(settings='[settings."a/b"]\n'), "study.toml: settings.a/b: 'a/b' is not a usable"),
    "not toml": (None, "study.toml: is not valid TOML"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_study_file_is_one_line_before_any_cell(tmp_path, capsys, case):
    _inputs(tmp_path, subjects=("s1",))
    kwargs, expected = BAD[case]
    if kwargs is None:
        path = tmp_path / "study.toml"
        path.write_text("name = \n")
    else:
        path = _study(tmp_path, subjects=("s1",), **kwargs)
        text = path.read_text()
        if case == "unknown subject key":
            path.write_text(text.replace('responses = "s1/Y.npy"', 'respones = "s1/Y.npy"'))
        if case == "missing subject folder":
            path.write_text(text.replace("[run]", '[subjects.s9]\nprepared = "nowhere/s9"\n\n[run]'))
    assert main(["sweep", str(path)]) == 2
    err = capsys.readouterr().err
    expected = expected.format(tmp=tmp_path)
    assert err.count("\n") == 1 and err.startswith(f"error: {tmp_path}/{expected}"), err
    assert not (tmp_path / "tiny").exists()


def test_bad_combination_of_run_options_is_caught_before_any_cell(tmp_path, capsys):
    """Options checked together as `jne run` checks them: grouping = categories needs categories."""
    _inputs(tmp_path, subjects=("s1",))
    path = _study(tmp_path, subjects=("s1",), run=RUN + 'grouping = "categories"\n')
    assert main(["sweep", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {path}: subjects.s1 (setting default): --groups: 'categories' needs --categories\n"
    assert not (tmp_path / "tiny").exists()


def test_unreachable_ray_address_is_one_line(tmp_path, capsys):
    pytest.importorskip("ray")
    _inputs(tmp_path, subjects=("s1",))
    path = _study(tmp_path, subjects=("s1",))
    assert main(["sweep", str(path), "--address", "127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: --address: cannot reach a Ray cluster at 127.0.0.1:9")


@pytest.mark.slow
def test_sweep_on_local_ray_gives_identical_bundles(swept, tmp_path):
    ray = pytest.importorskip("ray")
    root, study, path, _, _ = swept
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": ENV["PYTHONPATH"], "OMP_NUM_THREADS": "1"}})
    try:
        lines = []
        ray_path, counts, _ = run_sweep(study, out=tmp_path / "on-ray", ray=True, log=lines.append)
    finally:
        ray.shutdown()
    assert counts == {"done": 8, "failed": 0, "skipped": 0, "total": 8}, lines
    local = {c["id"]: c for c in read_state(path.parent)["cells"]}
    for c in read_state(ray_path.parent)["cells"]:
        assert c["state"] == "done" and {k: c[k] for k in ("layer_index", "params", "bundle")} == \
            {k: local[c["id"]][k] for k in ("layer_index", "params", "bundle")}
        a, b = path.parent / c["bundle"], ray_path.parent / c["bundle"]
        pd.testing.assert_frame_equal(pd.read_parquet(a / "vertices.parquet"), pd.read_parquet(b / "vertices.parquet"),
                                      check_exact=True)
        np.testing.assert_array_equal(np.load(a / "jne_ss.npy"), np.load(b / "jne_ss.npy"))
        assert json.loads((b / "manifest.json").read_text())["study"] == \
            json.loads((a / "manifest.json").read_text())["study"]


def test_prepared_subject_takes_its_rows_of_a_73k_feature_file(tmp_path):
    """An NSD subject (a `jne nsd-prepare` folder, stimulus ids = 0-based 73k ids) gets the rows of
    its images from a 73,000-row feature file, as `jne run` on those rows gives."""
    rng = np.random.default_rng(1)
    full = rng.normal(size=(73000, D)).astype(np.float32)
    with h5py.File(tmp_path / "feat73k.h5", "w") as fh:
        fh.attrs["format"] = "jne-features"
        fh.attrs["layers"] = json.dumps(["embedding"])
        fh.attrs["dims"] = json.dumps([D])
        fh["embedding"] = full
    ids = rng.choice(73000, N, replace=False)
    X = full[ids]
    Y = X @ rng.normal(size=(D, V)) + np.abs(X[:, :1]) + 0.3 * rng.normal(size=(N, V))
    prep = tmp_path / "prepared" / "subj01"
    prep.mkdir(parents=True)
    np.save(prep / "responses.npy", Y.astype(np.float32))
    pd.DataFrame({"stimulus": ids}).to_csv(prep / "stimulus_ids.csv", index=False)
    pd.DataFrame({"roi": ["V1"] * 3 + ["FFC"] * 3}).to_csv(prep / "rois.csv", index=False)
    (prep / "prepare.json").write_text(json.dumps({"files": {"responses": "responses.npy", "rois": "rois.csv",
                                                             "stimulus_ids": "stimulus_ids.csv"}}))
    np.save(tmp_path / "X.npy", X)
    study = tmp_path / "study.toml"
    study.write_text(f'name = "nsd"\nfeatures = "feat73k.h5"\nlayers = ["embedding"]\n'
                     f'[subjects.subj01]\nprepared = "prepared/subj01"\n[run]\n{RUN}')
    assert main(["sweep", str(study), "--threads", "1"]) == 0
    out = tmp_path / "ref"
    assert main(["run", "--prepared", str(prep), "--features", str(tmp_path / "X.npy"), "--hidden", "8",
                 "--max-epochs", "25", "--n-boot", "20", "--device", "cpu", "--seed", "3", "--quiet",
                 "--out", str(out)]) == 0
    cell = tmp_path / "nsd" / "cells" / "subj01" / "embedding" / "default"
    pd.testing.assert_frame_equal(pd.read_parquet(cell / "vertices.parquet"), pd.read_parquet(out / "vertices.parquet"),
                                  check_exact=True)
    stimuli = load_bundle(cell).stimuli
    pd.testing.assert_frame_equal(stimuli, load_bundle(out).stimuli)
    assert sorted(stimuli["stimulus"].astype(int)) == sorted(ids)


def test_cuda_device_is_left_to_the_cluster_but_checked_locally(tmp_path, capsys, monkeypatch):
    """A Ray sweep may drive GPU workers from a machine without one: device = "cuda" is checked
    there only for its spelling; a local sweep refuses it when this machine has no CUDA GPU."""
    import torch

    from jnecore.sweep import check_cells, read_study
    from jnecore.sweep._execute import cell_spec
    from jnecore.sweep._cells import expand_cells

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    _inputs(tmp_path, subjects=("s1",))
    path = _study(tmp_path, subjects=("s1",), run=RUN.replace('device = "cpu"', 'device = "cuda"'))
    assert main(["sweep", str(path)]) == 2
    assert "run.device: cuda was asked for but no CUDA GPU is visible" in capsys.readouterr().err
    study = read_study(path, remote=True)
    assert study.run["device"] == "cuda"
    check_cells(study, [cell_spec(study, c) for c in expand_cells(study)], remote=True)
    bad = _study(tmp_path, subjects=("s1",), run=RUN.replace('device = "cpu"', 'device = "gpu"'))
    with pytest.raises(Exception, match="settings|run.device"):
        read_study(bad, remote=True)
