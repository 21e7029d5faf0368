"""Inputs checked before fitting (issue 14, item 2): overflowing values named with file and count,
and one feature column working end to end with clustering."""

import re

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
    assert sorted(p.name for p in tmp_path.iterdir()) == ["X.npy", "Y.npy"]  # no checkpoint, lock or temp left


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


# ------------------------------------------------------------------------------ size claims in headers

TB = (500_000, 500_000)  # float32: 10^12 bytes claimed


def _npy_claiming(shape) -> bytes:
    import io

    buf = io.BytesIO()
    h = np.lib.format.header_data_from_array_1_0(np.zeros((1, 1), np.float32))
    h["shape"] = shape
    np.lib.format.write_array_header_1_0(buf, h)
    return buf.getvalue() + b"\0" * 64


def _claims(d):
    """{file name: bytes} of files whose headers claim ~10^12 bytes in a few hundred."""
    import struct
    import zipfile

    import h5py
    import nibabel as nib

    (d / "X.npy").write_bytes(_npy_claiming(TB))
    with zipfile.ZipFile(d / "X.npz", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("x.npy", _npy_claiming(TB))
    with h5py.File(d / "X.h5", "w") as f:
        f.create_dataset("x", shape=TB, dtype="f4")  # never written: a read would allocate it all
    with h5py.File(d / "Xc.h5", "w") as f:
        f.create_dataset("x", shape=TB, dtype="f4", compression="gzip", chunks=(100, 100))
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2, 2), np.float32), np.eye(4)), d / "Y.nii")
    raw = bytearray((d / "Y.nii").read_bytes())
    struct.pack_into("<8h", raw, 40, 4, 1000, 1000, 1000, 100, 1, 1, 1)  # dim[]: 4-D, 10^11 voxels
    (d / "Y.nii").write_bytes(raw)
    nib.save(nib.MGHImage(np.zeros((10, 1, 1, 3), np.float32), np.eye(4)), d / "lh.Y.mgh")
    raw = bytearray((d / "lh.Y.mgh").read_bytes())
    struct.pack_into(">4i", raw, 4, 10 ** 6, 1, 1, 10 ** 5)  # width, height, depth, frames
    (d / "lh.Y.mgh").write_bytes(raw)


@pytest.mark.parametrize("name,words", [
    ("X.npy", "its header claims 1,000,000,000,000 bytes of data (shape (500000, 500000), float32), the file holds 64"),
    ("X.npz", "array 'x' is truncated or damaged: its header claims 1,000,000,000,000 bytes, the member holds 64"),
    ("X.h5", "dataset '/x' is truncated or damaged: its header claims 1,000,000,000,000 bytes"),
    ("Xc.h5", "more than 1100:1 compression of the file"),
    ("Y.nii", "its header claims 400,000,000,000 bytes of data (shape (1000, 1000, 1000, 100), float32)"),
    ("lh.Y.mgh", "its header claims 400,000,000,000 bytes of data (shape (1000000, 1, 1, 100000), >f4)"),
])
def test_header_size_claims_are_checked_before_allocating(tmp_path, name, words):
    from jnecore.io import read_array, read_responses
    from jnecore.validation import InputError

    _claims(tmp_path)
    with pytest.raises(InputError) as exc:
        (read_array if name.startswith("X") else lambda p: read_responses([p]))(str(tmp_path / name))
    assert str(exc.value).startswith(str(tmp_path / name)) and words in str(exc.value)


def test_honest_files_at_high_compression_are_read(tmp_path):
    """Zeros compress near deflate's 1032:1 ceiling: the claim checks must let them through."""
    import h5py
    import nibabel as nib

    from jnecore.io import read_array, read_responses

    zeros = np.zeros((400, 2500), np.float32)
    np.savez_compressed(tmp_path / "z.npz", x=zeros)
    with h5py.File(tmp_path / "z.h5", "w") as f:
        f.create_dataset("x", data=zeros, compression="gzip", compression_opts=9)
    assert read_array(str(tmp_path / "z.npz")).shape == (400, 2500)
    assert read_array(str(tmp_path / "z.h5")).shape == (400, 2500)
    vol = np.zeros((40, 40, 40, 5), np.float32)
    nib.save(nib.Nifti1Image(vol, np.eye(4)), tmp_path / "v.nii.gz")
    nib.save(nib.Nifti1Image(np.ones((40, 40, 40), np.uint8), np.eye(4)), tmp_path / "m.nii.gz")
    assert read_responses([str(tmp_path / "v.nii.gz")], mask=str(tmp_path / "m.nii.gz")).data.shape == (5, 64000)


# ------------------------------------------------------------------------------ non-numeric column types


def _typed(d, kind):
    import pandas as pd

    n = 6
    t = pd.DataFrame({"a": np.arange(n, dtype=float), "b": np.ones(n)})
    if kind == "dates":
        t["when"] = pd.date_range("2020-01-01", periods=n)
    elif kind == "lists":
        t["vec"] = [[1.0, 2.0]] * n
    elif kind == "category":
        t["cat"] = pd.Categorical(["x", "y"] * 3)
    elif kind == "text":
        t["name"] = ["x"] * n
    t.to_parquet(d / "X.parquet", index=False)
    return "X.parquet"


@pytest.mark.parametrize("kind,words", [("dates", "column when (timestamp[us]) is not numeric"),
                                        ("lists", "column vec (list<element: double>) is not numeric"),
                                        ("category", "column cat (dictionary<values=string, indices=int8, ordered=0>) is not"),
                                        ("text", "column name (large_string) is not numeric")])
def test_non_numeric_parquet_columns_are_refused_by_name(tmp_path, kind, words):
    from jnecore.io import read_array
    from jnecore.validation import InputError

    name = _typed(tmp_path, kind)
    with pytest.raises(InputError, match=re.escape(words)):
        read_array(str(tmp_path / name))


def test_compound_h5_and_structured_npy_are_refused_by_field(tmp_path):
    import h5py

    from jnecore.io import read_array
    from jnecore.validation import InputError

    rec = np.zeros(4, dtype=[("x", "<f4"), ("label", "S3")])
    with h5py.File(tmp_path / "X.h5", "w") as f:
        f.create_dataset("t", data=rec)
    np.save(tmp_path / "X.npy", rec)
    for name in ("X.h5", "X.npy"):
        with pytest.raises(InputError, match=r"compound type with fields x \(float32\), label \(\|S3\)"):
            read_array(str(tmp_path / name))
