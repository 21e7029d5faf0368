"""Runs that fail safely: Ctrl-C / SIGTERM leave no bundle and no temporary directory, fitted
encoders are checkpointed in ``<out>.partial`` and ``--resume`` reuses them to give the same
bundle, and a CUDA out-of-memory error in the Jacobian step halves the chunk and retries."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch

from jnecore.analysis import _stages as stages
from jnecore.bundle import load_bundle
from jnecore.cli import main

FAST = ["--hidden", "16", "--max-epochs", "200", "--n-boot", "50", "--quiet", "--device", "cpu"]


pytestmark = pytest.mark.usefixtures("one_thread")


def _data(tmp_path, n=160, d=5, v=10, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    Y = X @ rng.normal(size=(d, v)) + 3.0 * np.abs(X[:, :1]) + 0.3 * rng.normal(size=(n, v))
    Y[:, -1] = 1.0  # a constant column: excluded with a warning, not an error
    Y[3, -2] = np.nan  # a non-finite value: that column is excluded too
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "Y.npy", Y.astype(np.float32))
    pd.DataFrame({"roi": ["V1"] * 5 + ["FFA-1"] * 5}).to_csv(tmp_path / "rois.csv", index=False)


def _run(tmp_path, out, *extra):
    return main(["run", "--features", str(tmp_path / "X.npy"), "--responses", str(tmp_path / "Y.npy"),
                 "--rois", str(tmp_path / "rois.csv"), "--out", str(tmp_path / out), *FAST, *extra])


def _leftovers(tmp_path, out):
    return [p.name for p in tmp_path.iterdir() if p.name.startswith(f".{out}.")]


def _interrupt_at_jne(*args, **kwargs):
    raise KeyboardInterrupt


def test_interrupted_run_resumes_to_the_same_bundle(tmp_path, capsys, monkeypatch):
    _data(tmp_path)
    assert _run(tmp_path, "full") == 0
    err = capsys.readouterr().err
    assert "warning: 2 of 10 response columns are constant or non-finite; they are excluded" in err
    full = load_bundle(tmp_path / "full")
    assert full.vertices["excluded"].tolist() == [False] * 8 + [True] * 2
    assert not (tmp_path / "full.partial").exists()

    monkeypatch.setattr(stages, "compute_jne", _interrupt_at_jne)
    assert _run(tmp_path, "b") == 130
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: interrupted; no bundle was written") and "--resume" in err and "\n" not in err
    assert not (tmp_path / "b").exists() and not _leftovers(tmp_path, "b")
    ck = tmp_path / "b.partial"
    assert sorted(p.name for p in ck.iterdir()) == ["checkpoint.json", "linear.safetensors", "nonlinear.safetensors"]
    monkeypatch.undo()

    def no_refit(*a, **k):
        raise AssertionError("--resume refitted an encoder that was checkpointed")

    monkeypatch.setattr(stages, "fit_encoder", no_refit)
    assert _run(tmp_path, "b", "--resume") == 0
    b = load_bundle(tmp_path / "b")
    assert b.manifest["resumed"] == ["linear", "nonlinear"]
    pd.testing.assert_frame_equal(b.vertices, full.vertices)
    np.testing.assert_array_equal(np.asarray(b.jne_ss), np.asarray(full.jne_ss))
    pd.testing.assert_frame_equal(b.stimuli, full.stimuli)
    assert not ck.exists() and not _leftovers(tmp_path, "b")


def test_resume_refuses_a_checkpoint_of_other_settings(tmp_path, capsys, monkeypatch):
    _data(tmp_path)
    monkeypatch.setattr(stages, "compute_jne", _interrupt_at_jne)
    assert _run(tmp_path, "b") == 130
    monkeypatch.undo()
    capsys.readouterr()
    assert _run(tmp_path, "b", "--resume", "--seed", "1") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --resume: ") and "other inputs or fit settings" in err
    assert (tmp_path / "b.partial" / "linear.safetensors").is_file() and not (tmp_path / "b").exists()
    # without --resume the stale checkpoint is replaced and removed on success
    calls = []
    real = stages.fit_encoder
    monkeypatch.setattr(stages, "fit_encoder", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert _run(tmp_path, "b", "--seed", "1") == 0
    assert len(calls) == 2 and not (tmp_path / "b.partial").exists()


def test_resume_without_checkpoint_fits_from_the_start(tmp_path, capsys):
    _data(tmp_path)
    assert _run(tmp_path, "b", "--resume") == 0
    assert "no checkpoint" in capsys.readouterr().err


def test_cuda_out_of_memory_halves_the_jacobian_chunk(tmp_path, capsys, monkeypatch):
    _data(tmp_path)
    seen = []
    real = stages.compute_jne

    def flaky(model, X, **kw):
        seen.append(kw["batch_size"])
        if len(seen) == 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(model, X, **kw)

    monkeypatch.setattr(stages, "compute_jne", flaky)
    assert _run(tmp_path, "b", "--jne-batch-size", "8") == 0
    assert seen == [8, 4]
    b = load_bundle(tmp_path / "b")
    assert b.manifest["jne"]["oom_retries"] == [{"batch_size": 8, "retry_with": 4}]
    assert "retried with 4" in capsys.readouterr().err
    assert b.vertices["significant"].any()


def test_out_of_memory_at_batch_one_is_a_clear_error(tmp_path, capsys, monkeypatch):
    _data(tmp_path)

    def oom(model, X, **kw):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(stages, "compute_jne", oom)
    assert _run(tmp_path, "b", "--jne-batch-size", "2") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --device: out of GPU memory") and "\n" not in err
    assert not (tmp_path / "b").exists() and not _leftovers(tmp_path, "b")


def test_sigint_during_fitting_leaves_no_bundle(tmp_path):
    """A real Ctrl-C (SIGINT) to a `jne run` process that is fitting."""
    _data(tmp_path, n=400)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "jnecore.cli", "run", "--features", str(tmp_path / "X.npy"),
           "--responses", str(tmp_path / "Y.npy"), "--out", str(tmp_path / "b"), "--hidden", "16",
           "--max-epochs", "1000000", "--patience", "1000000", "--quiet", "--device", "cpu"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    marker = tmp_path / "b.partial" / "checkpoint.json"
    try:
        deadline = time.time() + 120
        while not marker.exists():  # written when fitting starts
            assert proc.poll() is None, proc.communicate()
            assert time.time() < deadline, "the run did not start fitting"
            time.sleep(0.2)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
    assert "Traceback" not in err
    assert err.strip().splitlines() == ["error: interrupted; no bundle was written"]
    assert not (tmp_path / "b").exists() and not _leftovers(tmp_path, "b")
    assert not (tmp_path / "b.partial").exists()  # no encoder was fitted yet: nothing kept


def test_sigterm_during_fitting_runs_the_same_cleanup(tmp_path, capsys, monkeypatch):
    """SIGTERM (a kill) while the nonlinear encoder is fitting: the handler installed by `main`
    raises KeyboardInterrupt, so no bundle appears, the linear encoder stays checkpointed, and
    the handler is restored afterwards."""
    _data(tmp_path)
    real = stages.fit_encoder
    calls = []

    def fit_then_kill(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler interrupts this
        return real(*a, **k)

    monkeypatch.setattr(stages, "fit_encoder", fit_then_kill)
    before = signal.getsignal(signal.SIGTERM)
    t0 = time.time()
    assert _run(tmp_path, "b") == 143
    assert time.time() - t0 < 30
    assert signal.getsignal(signal.SIGTERM) is before
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: interrupted; no bundle was written (fitted encoders kept in ") and "\n" not in err
    assert not (tmp_path / "b").exists() and not _leftovers(tmp_path, "b")
    assert sorted(p.name for p in (tmp_path / "b.partial").iterdir()) == ["checkpoint.json", "linear.safetensors"]
