"""Outputs that cannot be lost (issue 14, item 3): an exclusive lock on ``--out`` naming its holder,
``--overwrite`` never replacing a bundle another process wrote meanwhile, and stale temporary
folders of killed writers cleaned by the next run or ``--resume``."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest

from jnecore._atomic import clean_stale, lock_out, out_state, replace_dir
from jnecore.bundle import load_bundle
from jnecore.cli import main
from jnecore.validation import InputError

FAST = ["--hidden", "16", "--max-epochs", "200", "--n-boot", "50", "--quiet", "--device", "cpu"]
ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")

pytestmark = pytest.mark.usefixtures("one_thread")


def _data(tmp_path, n=160, d=5, v=10, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    Y = X @ rng.normal(size=(d, v)) + 3.0 * np.abs(X[:, :1]) + 0.3 * rng.normal(size=(n, v))
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "Y.npy", Y.astype(np.float32))
    pd.DataFrame({"roi": ["V1"] * 5 + ["FFA-1"] * 5}).to_csv(tmp_path / "rois.csv", index=False)


def _args(tmp_path, out, *extra):
    return ["run", "--features", str(tmp_path / "X.npy"), "--responses", str(tmp_path / "Y.npy"),
            "--rois", str(tmp_path / "rois.csv"), "--out", str(tmp_path / out), *extra]


def _leftovers(tmp_path, out):
    return sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(f".{out}."))


def _dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_second_writer_fails_at_once_naming_the_holder(tmp_path, capsys):
    """Two concurrent `jne run` on one --out: the second (even with --overwrite) is refused at once."""
    _data(tmp_path, n=400)
    cmd = [sys.executable, "-m", "jnecore.cli", *_args(tmp_path, "b", "--hidden", "16", "--max-epochs",
                                                      "1000000", "--patience", "1000000", "--quiet",
                                                      "--device", "cpu")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    lock = tmp_path / ".b.lock"
    try:
        deadline = time.time() + 120
        while not (lock.exists() and lock.read_text().strip()):
            assert proc.poll() is None, proc.communicate()
            assert time.time() < deadline, "the first run never took the lock"
            time.sleep(0.1)
        assert lock.read_text().strip() == str(proc.pid)
        for extra in ([], ["--overwrite"], ["--resume"]):
            t0 = time.time()
            assert main(_args(tmp_path, "b", *FAST, "--seed", "7", *extra)) == 2
            assert time.time() - t0 < 10  # at once: no input read, nothing fitted
            err = capsys.readouterr().err.strip()
            assert "\n" not in err and "Traceback" not in err
            assert err.startswith(f"error: {tmp_path / 'b'}: is being written by another process (PID {proc.pid}")
        assert proc.poll() is None  # the first writer is undisturbed
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert not lock.exists()  # released (and removed) by the holder
    assert main(_args(tmp_path, "b", *FAST, "--resume")) == 0  # the lock is free again
    assert load_bundle(tmp_path / "b").jne_ss.shape[1] == 10


def test_lock_released_when_holder_is_killed(tmp_path):
    """flock dies with its holder: a SIGKILLed writer never blocks the next one."""
    out = tmp_path / "b"
    code = f"from jnecore._atomic import lock_out\nimport time\nwith lock_out({str(out)!r}):\n" \
           "    print('locked', flush=True); time.sleep(600)\n"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(InputError, match=f"PID {proc.pid}"):
            with lock_out(out):
                pass
    finally:
        proc.kill()
        proc.wait()
    with lock_out(out) as lock:  # the stale lock file of a dead holder does not count
        assert lock.read_text().strip() == str(os.getpid())
    assert not lock.exists()


def test_sigkill_during_final_write_then_resume(tmp_path):
    """A run killed while writing the bundle leaves its temporary folder; --resume removes it."""
    _data(tmp_path)
    code = textwrap.dedent(f"""
        import os, signal, sys
        import jnecore.bundle._bundle as b
        def die(tmp, out, **kw):
            assert (tmp / "jne_ss.npy").exists()  # the final write is under way
            os.kill(os.getpid(), signal.SIGKILL)
        b.replace_dir = die
        from jnecore.cli import main
        sys.exit(main({_args(tmp_path, 'b', *FAST)!r}))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    left = _leftovers(tmp_path, "b")
    assert any(n.startswith(".b.tmp-") for n in left), left
    assert not (tmp_path / "b").exists() and (tmp_path / "b.partial").is_dir()

    assert main(_args(tmp_path, "b", *FAST, "--resume")) == 0
    assert _leftovers(tmp_path, "b") == []  # temporary folder and lock file both gone
    assert not (tmp_path / "b.partial").exists()
    assert load_bundle(tmp_path / "b").jne_ss.shape[1] == 10


def test_overwrite_never_replaces_a_bundle_written_meanwhile(tmp_path):
    out, tmp = tmp_path / "b", tmp_path / ".b.tmp-new"
    seen = out_state(out)  # absent when our write began
    tmp.mkdir()
    (tmp / "manifest.json").write_text("{}")
    out.mkdir()
    (out / "manifest.json").write_text('{"theirs": 1}')  # another process wrote it meanwhile
    with pytest.raises(InputError, match="written by another process"):
        replace_dir(tmp, out, overwrite=True, expect=seen)
    assert (out / "manifest.json").read_text() == '{"theirs": 1}'

    seen = out_state(out)  # what we saw is what is there: --overwrite replaces it
    replace_dir(tmp, out, overwrite=True, expect=seen)
    assert (out / "manifest.json").read_text() == "{}"
    assert _leftovers(tmp_path, "b") == []


def test_stale_folders_of_dead_writers_only(tmp_path):
    out = tmp_path / "b"
    dead, alive = _dead_pid(), os.getpid()
    (tmp_path / f".b.tmp-{dead}-x1").mkdir()
    (tmp_path / f".b.tmp-{alive}-x2").mkdir()  # a live writer's folder is left alone
    (tmp_path / f".b.old-{dead}").mkdir()  # killed between the two renames of a swap: restored
    (tmp_path / f".b.old-{dead}" / "manifest.json").write_text('{"old": 1}')
    (tmp_path / ".bb.tmp-1-x").mkdir()  # another --out's folder
    assert clean_stale(out) == [f".b.old-{dead}", f".b.tmp-{dead}-x1"]
    assert (out / "manifest.json").read_text() == '{"old": 1}'
    assert _leftovers(tmp_path, "b") == [f".b.tmp-{alive}-x2"]
    assert (tmp_path / ".bb.tmp-1-x").exists()

    (tmp_path / f".b.old-{dead}").mkdir()  # out is in place: an old copy left by a swap is removed
    assert clean_stale(out) == [f".b.old-{dead}"]
    assert out.exists()


def test_out_under_a_file_is_one_line(tmp_path, capsys):
    _data(tmp_path)
    (tmp_path / "f").write_text("x")
    assert main(_args(tmp_path, "f/b", *FAST)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {tmp_path / 'f' / 'b'}: cannot create its folder") and "\n" not in err
