"""`jne run` option rules (issue 14, item 1): every violation is one line `error: --option: problem`,
exit 2, before any work and with no bundle written."""

import numpy as np
import pytest

from jnecore.cli import main


@pytest.fixture()
def inputs(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4)).astype(np.float32)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "Y.npy", (X @ rng.normal(size=(4, 6))).astype(np.float32))
    return tmp_path


@pytest.mark.parametrize("extra, start", [
    (["--seed", str(2**32)], "error: --seed: must be an integer in [0, 4294967295], got 4294967296"),
    (["--seed", "-1"], "error: --seed: must be an integer in [0, 4294967295], got -1"),
    (["--hidden", "0"], "error: --hidden: must be an integer >= 1, got 0"),
    (["--device", "meta"], "error: --device: device type 'meta' cannot compute here"),
    (["--device", "bogus"], "error: --device: unknown device 'bogus'"),
    (["--n-clusters", "500", "--groups", "clusters"],
     "error: --n-clusters: must be at most the number of test stimuli (6), got 500"),
])
def test_out_of_range_options_are_one_line(inputs, capsys, extra, start):
    out = inputs / "o"
    rc = main(["run", "--features", str(inputs / "X.npy"), "--responses", str(inputs / "Y.npy"),
               "--out", str(out), "--hidden", "8", "--max-epochs", "5", "--n-boot", "10", "--quiet",
               "--device", "cpu", *extra])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.startswith(start) and "\n" not in err, err
    assert not out.exists()
    assert sorted(p.name for p in inputs.iterdir()) == ["X.npy", "Y.npy"]  # no lock or temp folder left
