"""A corpus of bad inputs to ``jne run``, each with its exact expected behaviour: exit code 2, one
line on stderr (``error: <file or option>: <problem>``), no bundle, no temporary or checkpoint
directory left beside --out. Run in-process through :func:`jnecore.cli.main`; two through a
subprocess to check that no traceback escapes. Plus the uploaded-archive checks of
:func:`jnecore.bundle.extract_bundle_archive`."""

import io
import os
import pickle
import re
import subprocess
import sys
import tarfile
import zipfile

import h5py
import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch
from nibabel.gifti import GiftiDataArray, GiftiImage

from jnecore.bundle import extract_bundle_archive, load_bundle
from jnecore.cli import main
from jnecore.validation import InputError

N, D, V = 60, 4, 6


pytestmark = pytest.mark.usefixtures("one_thread")


def _base(d):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N, D)).astype(np.float32)
    np.save(d / "X.npy", X)
    np.save(d / "Y.npy", (X @ rng.normal(size=(D, V))).astype(np.float32))
    pd.DataFrame({"roi": ["V1"] * 3 + ["PPA"] * 3}).to_csv(d / "rois.csv", index=False)
    pd.DataFrame({"category": ["a", "b"] * (N // 2)}).to_csv(d / "cats.csv", index=False)


def _save(name, array, **kw):
    def setup(d):
        np.save(d / name, array, **kw)
    return setup


def _write(name, data):
    def setup(d):
        (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())
    return setup


def _truncated_npy(d):
    np.save(d / "X.npy", np.ones((N, D), np.float32))
    raw = (d / "X.npy").read_bytes()
    (d / "X.npy").write_bytes(raw[: len(raw) // 2])


def _truncated_h5(d):
    with h5py.File(d / "X.h5", "w") as fh:
        fh.create_dataset("x", data=np.ones((N, D)))
    raw = (d / "X.h5").read_bytes()
    (d / "X.h5").write_bytes(raw[: len(raw) // 3])


def _npz_two(d):
    np.savez(d / "X.npz", a=np.ones((N, D)), b=np.ones((N, D)))


def _npz_one(d):
    np.savez(d / "X.npz", a=np.ones((N, D)))


def _csv_text_column(d):
    df = pd.DataFrame(np.ones((N, D)), columns=list("abcd"))
    df["name"] = "x"
    df.to_csv(d / "X.csv", index=False)


def _csv_ragged(d):
    (d / "X.csv").write_text("a,b\n1,2\n3,4,5,6\n")


def _table(name, column, values):
    def setup(d):
        pd.DataFrame({column: values}).to_csv(d / name, index=False)
    return setup


def _keyed_missing(d):
    pd.DataFrame({"stimulus": np.arange(N - 1), "category": "a"}).to_csv(d / "keyed.csv", index=False)


def _two_columns(d):
    pd.DataFrame({"a": ["V1"] * V, "b": ["x"] * V}).to_csv(d / "two.csv", index=False)


def _few_rows(d):
    np.save(d / "X.npy", np.random.default_rng(0).normal(size=(8, D)).astype(np.float32))
    np.save(d / "Y.npy", np.random.default_rng(1).normal(size=(8, V)).astype(np.float32))


def _gifti(name, n_vertices):
    def setup(d):
        arrays = [GiftiDataArray(np.zeros(n_vertices, np.float32), datatype="NIFTI_TYPE_FLOAT32") for _ in range(N)]
        nib.save(GiftiImage(darrays=arrays), str(d / name))
    return setup


def _nifti4d(d):
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2, N), np.float32), np.eye(4)), str(d / "bold.nii.gz"))


def _prepared_empty(d):
    (d / "prep").mkdir()


def _all(*setups):
    def setup(d):
        for s in setups:
            s(d)
    return setup


def _noop(d):
    pass


# (id, setup, argument overrides, expected stderr line as a regex; {d} is the data folder)
CASES = [
    ("features-nan", _save("X.npy", np.where(np.arange(N)[:, None] < 3, np.nan, 1.0).repeat(D, 1).astype(np.float32)),
     {}, r"error: {d}/X\.npy: features: 3 of 60 rows contain NaN or inf"),
    ("features-inf", _save("X.npy", np.where(np.arange(N)[:, None] == 7, np.inf, 1.0).repeat(D, 1)),
     {}, r"error: {d}/X\.npy: features: 1 of 60 rows contain NaN or inf"),
    ("row-count-mismatch", _save("Y.npy", np.ones((50, V), np.float32)),
     {}, r"error: {d}/Y\.npy: has 50 rows but {d}/X\.npy has 60: one row per stimulus in both"),
    ("features-3d", _save("X.npy", np.ones((N, 2, 2), np.float32)),
     {}, r"error: {d}/X\.npy: features must be 2-D \(rows x columns\), got shape \(60, 2, 2\)"),
    ("features-strings", _save("X.npy", np.array([["a"] * D] * N)),
     {}, r"error: {d}/X\.npy: features must be numeric, got dtype <U1"),
    ("responses-one-column-row", _save("Y.npy", np.ones((1, V), np.float32)),
     {}, r"error: {d}/Y\.npy: responses has shape \(1, 6\): need at least 6 rows and 1 columns"),
    ("empty-file", _write("X.npy", b""), {}, r"error: {d}/X\.npy: is empty"),
    ("truncated-npy", _truncated_npy, {}, r"error: {d}/X\.npy: is truncated or damaged: its header claims [\d,]+ bytes of data \(shape \(\d+, \d+\), "
     r"float32\), the file holds [\d,]+"),
    ("npy-that-is-csv", _write("X.npy", "1,2,3,4\n5,6,7,8\n"),
     {}, r"error: {d}/X\.npy: is not a \.npy file: its content looks like plain text \(CSV\?\) \(rename it to \.csv if it is a table\)"),
    ("h5-that-is-not-hdf5", _write("X.h5", bytes(range(256)) * 4), {"--features": "X.h5"},
     r"error: {d}/X\.h5: is not a \.h5 file: its content looks like binary data"),
    ("truncated-h5", _truncated_h5, {"--features": "X.h5"},
     r"error: {d}/X\.h5: not a readable HDF5 file, truncated or damaged \(.+\)"),
    ("npz-not-zip", _write("X.npz", "a,b\n1,2\n"), {"--features": "X.npz"},
     r"error: {d}/X\.npz: is not a \.npz file: its content looks like plain text \(CSV\?\) \(rename it to \.csv if it is a table\)"),
    ("npz-two-arrays-no-key", _npz_two, {"--features": "X.npz"},
     r"error: {d}/X\.npz: holds 2 arrays \(a, b\): name one as FILE:key"),
    ("npz-missing-key", _npz_one, {"--features": "X.npz:nope"}, r"error: {d}/X\.npz: has no array 'nope' \(it has a\)"),
    ("pickled-npy", _save("X.npy", np.array([{"a": 1}] * N, dtype=object), allow_pickle=True), {},
     r"error: {d}/X\.npy: holds pickled Python objects, which are refused \(they can run code\): save a plain numeric array with np\.save"),
    ("pickle-bytes-as-npy", _write("X.npy", pickle.dumps(np.ones(3))), {},
     r"error: {d}/X\.npy: holds a Python pickle, which is refused \(loading it can run code\): save a plain array \(\.npy, \.npz, \.h5\) or a table \(\.csv, \.parquet\)"),
    ("pkl-file", _write("X.pkl", pickle.dumps(np.ones(3))), {"--features": "X.pkl"},
     r"error: {d}/X\.pkl: pickle files are refused \(loading them can run code\): save a plain array \(\.npy, \.npz, \.h5\) or a table \(\.csv, \.parquet\)"),
    ("unknown-extension", _write("X.mat", b"MATLAB 5.0"), {"--features": "X.mat"},
     r"error: {d}/X\.mat: unsupported extension '\.mat': use \.npy, \.npz, \.h5, \.hdf5, \.parquet, \.csv, \.tsv"),
    ("csv-text-column", _csv_text_column, {"--features": "X.csv"},
     r"error: {d}/X\.csv: column name \(string\) is not numeric: features must be numbers"),
    ("csv-ragged", _csv_ragged, {"--features": "X.csv"}, r"error: {d}/X\.csv: not a readable table \(ParserError: .+\)"),
    ("missing-file", _noop, {"--features": "nope.npy"}, r"error: {d}/nope\.npy: no such file"),
    ("features-is-a-folder", lambda d: (d / "dir.npy").mkdir(), {"--features": "dir.npy"},
     r"error: {d}/dir\.npy: is a directory, expected a file"),
    ("rois-wrong-length", _table("short.csv", "roi", ["V1"] * 5), {"--rois": "short.csv"},
     r"error: {d}/short\.csv: has 5 ROI labels but 6 response columns were expected"),
    ("rois-two-columns", _two_columns, {"--rois": "two.csv"},
     r"error: {d}/two\.csv: must have exactly one column, it has 2 \(a, b\)"),
    ("categories-wrong-length", _table("c.csv", "category", ["a"] * (N - 1)), {"--categories": "c.csv"},
     r"error: {d}/c\.csv: has 59 categories but 60 stimuli were expected"),
    ("categories-keyed-missing-id", _keyed_missing, {"--categories": "keyed.csv"},
     r"error: {d}/keyed\.csv: has no category for 1 of 60 stimuli \(e\.g\. stimulus '59'\)"),
    ("stimulus-ids-repeat", _table("ids.csv", "stimulus", ["s"] * N), {"--stimulus-ids": "ids.csv"},
     r"error: {d}/ids\.csv: repeats a stimulus id"),
    ("unknown-norm", _noop, {"--norm": "l3"}, r"error: --norm: unknown value 'l3': use one of l1, l2, zl1, zl2"),
    ("unknown-groups", _noop, {"--groups": "kmeans"},
     r"error: --grouping: unknown value 'kmeans': use one of auto, categories, clusters, both, none"),
    ("unknown-space", _noop, {"--space": "mni"},
     r"error: --space: unknown value 'mni': use one of auto, fsLR32k, fsaverage5, fsaverage, volume, none"),
    ("unknown-activation", _noop, {"--activation": "softmax"},
     r"error: --activation: unknown value 'softmax': use one of relu, leaky_relu, gelu, silu, tanh"),
    ("test-fraction-out-of-range", _noop, {"--test-fraction": "1.5"}, r"error: --test-fraction: must be in \(0, 1\), got 1\.5"),
    ("hidden-zero", _noop, {"--hidden": "0"}, r"error: --hidden: must be an integer >= 1, got 0"),
    ("hidden-not-a-number", _noop, {"--hidden": "abc"}, r"error: jne run: argument --hidden: invalid int value: 'abc'"),
    ("groups-categories-without-categories", _noop, {"--groups": "categories"},
     r"error: --groups: 'categories' needs --categories"),
    ("too-few-stimuli-to-split", _few_rows, {},
     r"error: {d}/Y\.npy: too few stimuli to split \(8 rows gave \{.+\}\): need at least 2 train, 1 val and 3 test rows"),
    ("test-index-out-of-range", _table("ti.csv", "i", [0, 1, 2, 60]), {"--test-index": "ti.csv"},
     r"error: {d}/ti\.csv: indices must lie in \[0, 59\]"),
    ("test-index-not-integers", _table("ti.csv", "i", ["a", "b", "c"]), {"--test-index": "ti.csv"},
     r"error: {d}/ti\.csv: test indices must be integers"),
    ("all-columns-constant", _save("Y.npy", np.ones((N, V), np.float32)), {},
     r"error: {d}/Y\.npy: every column is constant or non-finite: nothing to model"),
    ("space-mismatch-array", _noop, {"--space": "fsLR32k"},
     r"error: {d}/Y\.npy: has 6 columns but --space fsLR32k has 32492 vertices per hemisphere: give all 64984 "
     r"\(left then right\), or --vertices with the mesh vertex of each column"),
    ("vertices-outside-the-mesh", _table("v.csv", "vertex", [0, 1, 2, 3, 4, 99999]), {"--space": "fsaverage5", "--vertices": "v.csv"},
     r"error: {d}/v\.csv: vertex indices must lie in \[0, 20484\) for fsaverage5 \(10242 per hemisphere, left then right\), got 0\.\.99999"),
    ("gifti-wrong-mesh", _gifti("lh.y.func.gii", 100), {"--responses": "lh.y.func.gii", "--space": "fsaverage5"},
     r"error: {d}/lh\.y\.func\.gii: has 100 vertices per hemisphere but --space fsaverage5 has 10242 \(its 60 data arrays read as 60 samples of 100 vertices\)"),
    ("gifti-that-is-not-xml", _write("lh.y.func.gii", "1,2,3\n"), {"--responses": "lh.y.func.gii"},
     r"error: {d}/lh\.y\.func\.gii: is not a GIfTI file: its content looks like plain text \(CSV\?\)"),
    ("volume-without-mask", _nifti4d, {"--responses": "bold.nii.gz"},
     r"error: {d}/bold\.nii\.gz: is a volume: give --mask \(a 3-D NIfTI of the voxels to model\)"),
    ("mask-with-array-responses", _noop, {"--mask": "m.nii.gz"}, r"error: --mask: applies to NIfTI volume responses only"),
    ("roi-lookup-without-rois", _write("l.ctab", "1 V1\n"), {"--roi-lookup": "l.ctab"}, r"error: --roi-lookup: needs --rois"),
    ("prepared-folder-without-manifest", _prepared_empty, {"--prepared": "prep"},
     r"error: {d}/prep: is not a folder written by `jne nsd-prepare` \(no prepare\.json\)"),
]

PATH_OPTIONS = {"--features", "--responses", "--rois", "--categories", "--test-index", "--vertices", "--stimulus-ids",
                "--mask", "--roi-lookup", "--prepared"}


def _argv(d, overrides):
    args = {"--features": "X.npy", "--responses": "Y.npy"}
    args.update(overrides)
    argv = ["run", "--out", str(d / "out"), "--hidden", "16", "--max-epochs", "30", "--n-boot", "50", "--quiet",
            "--device", "cpu"]
    for k, v in args.items():
        argv += [k, str(d / v) if k in PATH_OPTIONS else v]
    return argv


def _nothing_left(d):
    assert not (d / "out").exists()
    assert not (d / "out.partial").exists()
    assert not [p.name for p in d.iterdir() if p.name.startswith(".out.")]


def test_corpus_is_large_and_distinct():
    assert len(CASES) >= 25
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("setup, overrides, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input(tmp_path, capsys, setup, overrides, expected):
    _base(tmp_path)
    setup(tmp_path)
    code = main(_argv(tmp_path, overrides))
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert re.fullmatch(expected.replace("{d}", re.escape(str(tmp_path))), lines[0]), lines[0]
    _nothing_left(tmp_path)


def test_existing_out_is_refused_and_left_untouched(tmp_path, capsys):
    _base(tmp_path)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    assert main(_argv(tmp_path, {})) == 2
    assert capsys.readouterr().err.strip() == (f"error: {tmp_path / 'out'}: exists and is not empty: "
                                               "choose another --out or pass --overwrite")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["keep.txt"]
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"


def test_a_few_bad_columns_are_a_warning_not_an_error(tmp_path, capsys):
    _base(tmp_path)
    Y = np.load(tmp_path / "Y.npy")
    Y[:, 0] = 2.0  # constant
    Y[5, 1] = np.inf  # non-finite
    np.save(tmp_path / "Y.npy", Y)
    assert main(_argv(tmp_path, {"--groups": "none", "--max-epochs": "100"})) == 0
    assert "warning: 2 of 6 response columns are constant or non-finite; they are excluded" in capsys.readouterr().err
    v = load_bundle(tmp_path / "out").vertices
    assert v["excluded"].tolist() == [True, True, False, False, False, False]
    assert v.loc[v["excluded"], "significant"].eq(False).all() and v.loc[v["excluded"], "jne"].isna().all()


@pytest.mark.parametrize("overrides, needle", [
    ({"--features": "X.npy"}, "X.npy: features: 60 of 60 rows contain NaN or inf"),
    ({"--bogus": "1"}, "unrecognized arguments: --bogus 1"),
])
def test_subprocess_prints_one_line_without_traceback(tmp_path, overrides, needle):
    _base(tmp_path)
    np.save(tmp_path / "X.npy", np.full((N, D), np.nan, np.float32))
    argv = _argv(tmp_path, {k: v for k, v in overrides.items() if k != "--bogus"})
    if "--bogus" in overrides:
        argv += ["--bogus", "1"]
    r = subprocess.run([sys.executable, "-m", "jnecore.cli", *argv], capture_output=True, text=True,
                       env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=120)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0]
    _nothing_left(tmp_path)


# ----------------------------------------------------------------- uploaded archives


@pytest.fixture(scope="module")
def small_bundle(tmp_path_factory):
    """A tiny valid bundle (written directly: no fitting)."""
    from jnecore.bundle import write_bundle

    root = tmp_path_factory.mktemp("arch")
    n_test, nv = 3, 4
    vertices = pd.DataFrame({"vertex": np.arange(nv), "hemi": "none", "roi": "V1", "level": "primary",
                             "r2_linear": 0.1, "r2_nonlinear": 0.2, "p_fdr": 0.01, "significant": True,
                             "jne": np.linspace(0, 1, nv)})
    stimuli = pd.DataFrame({"stimulus": list("abcde"), "split": ["test"] * 3 + ["train"] * 2, "category": "all"})
    return write_bundle(root / "mybundle", vertices=vertices, jne_ss=np.zeros((n_test, nv), np.float32),
                        stimuli=stimuli, manifest={"space": "none", "config": {}})


def _zip_dir(src, path, prefix=""):
    with zipfile.ZipFile(path, "w") as zf:
        for f in sorted(src.rglob("*")):
            if f.is_file():
                zf.write(f, prefix + str(f.relative_to(src)))
    return path


def _tar_with(path, members):
    """members: list of (TarInfo-modifier, name, bytes)"""
    with tarfile.open(path, "w:gz") as tf:
        for name, data, kind in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            elif kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = data
                tf.addfile(info)
            elif kind == "hardlink":
                info.type = tarfile.LNKTYPE
                info.linkname = data
                tf.addfile(info)
    return path


def test_archive_zip_and_tar_extract_to_a_valid_bundle(tmp_path, small_bundle):
    z = _zip_dir(small_bundle, tmp_path / "up.zip", prefix="mybundle/")
    got = extract_bundle_archive(z, tmp_path / "dest")
    assert got == tmp_path / "dest" / "mybundle" and load_bundle(got).space == "none"
    t = tmp_path / "flat.tar.gz"
    with tarfile.open(t, "w:gz") as tf:
        for f in sorted(small_bundle.rglob("*")):
            tf.add(f, str(f.relative_to(small_bundle)), recursive=False)
    got2 = extract_bundle_archive(t, tmp_path / "dest")
    assert got2 == tmp_path / "dest" / "flat" and load_bundle(got2)
    got3 = extract_bundle_archive(z, tmp_path / "dest")
    assert got3.name == "mybundle-1"
    assert not [p for p in (tmp_path / "dest").iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("make, needle", [
    (lambda d, b: _write_bytes(d / "a.zip", b"not an archive at all"), "is not a zip or tar(.gz) archive"),
    (lambda d, b: _tar_with(d / "a.tar.gz", [("../evil.txt", b"x", "file")]), "points outside the archive"),
    (lambda d, b: _tar_with(d / "a.tar.gz", [("/etc/evil", b"x", "file")]), "has an absolute path"),
    (lambda d, b: _tar_with(d / "a.tar.gz", [("b/link", "/etc/passwd", "symlink")]), "is a symbolic link"),
    (lambda d, b: _tar_with(d / "a.tar.gz", [("b/f", b"x", "file"), ("b/h", "b/f", "hardlink")]), "is a hard link"),
    (lambda d, b: _zip_symlink(d / "a.zip"), "is a symbolic link"),
    (lambda d, b: _zip_members(d / "a.zip", {"x/../../evil": b"x"}), "points outside the archive"),
    (lambda d, b: _zip_members(d / "a.zip", {"bundle/readme.txt": b"hello"}), "holds no result bundle"),
    (lambda d, b: _zip_members(d / "a.zip", {"manifest.json": b"{not json"}), "is not a valid result bundle"),
    (lambda d, b: _zip_dir(b, d / "a.zip"), "unpacks to"),  # over the size limit below
])
def test_archive_refusals(tmp_path, small_bundle, make, needle):
    path = make(tmp_path, small_bundle)
    limit = 1000 if needle == "unpacks to" else 500 * 1024 * 1024
    with pytest.raises(InputError) as info:
        extract_bundle_archive(path, tmp_path / "dest", max_bytes=limit)
    assert str(info.value).startswith(f"{path}: ") and needle in str(info.value)
    assert not (tmp_path / "dest").exists() or not list((tmp_path / "dest").iterdir())
    assert not (tmp_path / "evil.txt").exists()


def test_archive_too_many_files(tmp_path, small_bundle):
    z = _zip_members(tmp_path / "many.zip", {f"f{i}.txt": b"x" for i in range(30)})
    with pytest.raises(InputError, match="holds 30 members, more than the 10 allowed"):
        extract_bundle_archive(z, tmp_path / "dest", max_files=10)


def test_archive_lying_sizes_are_caught_while_extracting(tmp_path, small_bundle):
    z = _zip_dir(small_bundle, tmp_path / "a.zip")
    raw = bytearray(z.read_bytes())
    # shrink every declared uncompressed size in the central directory to 1 byte
    i = raw.find(b"PK\x01\x02")
    while i >= 0:
        raw[i + 24:i + 28] = (1).to_bytes(4, "little")
        i = raw.find(b"PK\x01\x02", i + 4)
    z.write_bytes(bytes(raw))
    with pytest.raises(InputError) as info:
        extract_bundle_archive(z, tmp_path / "dest", max_bytes=2000)
    assert str(info.value).startswith(f"{z}: ")
    assert not list((tmp_path / "dest").iterdir())


def _write_bytes(path, data):
    path.write_bytes(data)
    return path


def _zip_members(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return path


def _zip_symlink(path):
    with zipfile.ZipFile(path, "w") as zf:
        info = zipfile.ZipInfo("b/link")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "/etc/passwd")
    return path
