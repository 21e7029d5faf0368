"""Inputs checked before fitting (issue 14, item 2): overflowing values named with file and count,
and one feature column working end to end with clustering."""

import numpy as np
import pytest

from jnecore.bundle import load_bundle
from jnecore.cli import main

FAST = ["--hidden", "8", "--max-epochs", "5", "--n-boot", "10", "--quiet", "--device", "cpu"]

pytestmark = pytest.mark.usefixtures("one_thread")


def _run(tmp_path, X, Y, *extra):
    np.save(tmp_path / "X.npy", X.astype(np.float32))
    np.save(tmp_path / "Y.npy", Y.astype(np.float32))
    return main(["run", "--features", str(tmp_path / "X.npy"), "--responses", str(tmp_path / "Y.npy"),
                 "--out", str(tmp_path / "o"), *FAST, *extra])


@pytest.mark.parametrize("which", ["X", "Y"])
def test_values_whose_squares_overflow_are_refused_with_file_and_count(tmp_path, capsys, which):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    Y = X @ rng.normal(size=(4, 6))
    (X if which == "X" else Y)[:3, 0] = 3e37  # finite in float32, square is inf
    assert _run(tmp_path, X, Y, "--groups", "none") == 2
    err = capsys.readouterr().err.strip()
    what = "features" if which == "X" else "responses"
    assert err.startswith(f"error: {tmp_path / (which + '.npy')}: 3 {what} value(s) above 1.84e+19") and "\n" not in err
    assert not (tmp_path / "o").exists()


def test_one_feature_column_end_to_end_with_clusters(tmp_path, capsys):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 1))
    Y = X @ rng.normal(size=(1, 6)) + 2.0 * np.abs(X) + 0.1 * rng.normal(size=(80, 6))
    assert _run(tmp_path, X, Y, "--groups", "clusters") == 0, capsys.readouterr().err
    b = load_bundle(tmp_path / "o")
    test = b.test_stimuli
    assert "cluster" in test.columns and test["cluster"].notna().all()


def test_a_fit_with_all_nan_key_maps_is_an_error_not_a_bundle(tmp_path, capsys, monkeypatch):
    from jnecore.analysis import JNEAnalysis

    real_fit = JNEAnalysis.fit

    def nan_fit(self, *args, **kw):  # a fit whose nonlinear R² came out NaN everywhere
        real_fit(self, *args, **kw)
        self.r2_nonlinear_ = np.full_like(np.asarray(self.r2_nonlinear_, dtype=float), np.nan)
        return self

    monkeypatch.setattr(JNEAnalysis, "fit", nan_fit)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    assert _run(tmp_path, X, X @ rng.normal(size=(4, 6)), "--groups", "none") == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"error: {tmp_path / 'Y.npy'}: the fit gave no finite r2_nonlinear in any of the 6 modelled "
                   "columns (all NaN): nothing written; check the inputs' scale and values")
    assert not (tmp_path / "o").exists()


def test_key_map_check_against_hand_made_tables():
    import pandas as pd

    from jnecore.bundle import check_key_maps
    from jnecore.validation import InputError

    def table(r2, jne, sig, excluded=(False, False, False)):
        return pd.DataFrame({"r2_linear": [0.1, 0.2, 0.3], "r2_nonlinear": r2, "jne": jne, "significant": sig,
                             "excluded": list(excluded)})

    nan = float("nan")
    check_key_maps(table([nan, nan, 0.1], [nan] * 3, [False] * 3))  # one finite R²; JNE NaN: none significant
    check_key_maps(table([0.1, nan, nan], [nan, 0.5, nan], [False, True, True]))
    with pytest.raises(InputError, match="no finite r2_nonlinear in any of the 2 modelled"):
        check_key_maps(table([nan, nan, 0.1], [nan] * 3, [False] * 3, excluded=(False, False, True)))
    with pytest.raises(InputError, match="JNE is NaN in all 2 significant"):
        check_key_maps(table([0.1, 0.2, 0.3], [nan] * 3, [True, True, False]))
