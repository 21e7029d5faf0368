"""Readers for every supported format, each built here with numpy / pandas / h5py / nibabel and
read back: arrays and tables, GIfTI, MGH/MGZ, CIFTI-2, NIfTI + mask, ROI label files, lookup
tables, categories, and the space checks. Two small end-to-end ``jne run`` calls (CIFTI on fs_LR
32k with an annot-free dlabel, NIfTI volume with a label image) check that the bundle carries
the right space, vertices, hemispheres and ROIs."""

import json

import h5py
import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch
from nibabel import cifti2
from nibabel.gifti import GiftiDataArray, GiftiImage, GiftiLabel, GiftiLabelTable, GiftiMetaData

from jnecore.bundle import load_bundle
from jnecore.cli import main
from jnecore.io import (UNLABELLED, apply_vertices, check_space, file_kind, read_array, read_categories,
                        read_labels, read_lookup, read_responses, read_rois, sniff)
from jnecore.validation import InputError

FS5 = 10242
FSLR = 32492


pytestmark = pytest.mark.usefixtures("one_thread")


# ----------------------------------------------------------------- writers


def gifti_func(path, data, hemi=None, one_array=False):
    """data (N, n_vertices) -> a GIfTI functional file (one darray per sample, or one 2-D darray)."""
    meta = GiftiMetaData({"AnatomicalStructurePrimary": {"left": "CortexLeft", "right": "CortexRight"}[hemi]}) if hemi else None
    if one_array:
        arrays = [GiftiDataArray(np.asarray(data, np.float32), intent="NIFTI_INTENT_NONE", datatype="NIFTI_TYPE_FLOAT32")]
    else:
        arrays = [GiftiDataArray(np.asarray(row, np.float32), intent="NIFTI_INTENT_NONE", datatype="NIFTI_TYPE_FLOAT32")
                  for row in data]
    img = GiftiImage(darrays=arrays, meta=meta) if meta else GiftiImage(darrays=arrays)
    nib.save(img, str(path))
    return path


def gifti_label(path, values, table):
    lt = GiftiLabelTable()
    for k, name in table.items():
        lab = GiftiLabel(key=k, red=0.5, green=0.5, blue=0.5, alpha=1.0)
        lab.label = name
        lt.labels.append(lab)
    arr = GiftiDataArray(np.asarray(values, np.int32), intent="NIFTI_INTENT_LABEL", datatype="NIFTI_TYPE_INT32")
    nib.save(GiftiImage(darrays=[arr], labeltable=lt), str(path))
    return path


def mgh(path, data):
    """data (N, n_vertices) -> (n_vertices, 1, 1, N) MGH/MGZ overlay; 1-D -> (n, 1, 1) label map."""
    a = np.asarray(data)
    a = a.reshape(len(a), 1, 1) if a.ndim == 1 else a.T.reshape(a.shape[1], 1, 1, a.shape[0])
    nib.save(nib.MGHImage(a.astype(np.float32), np.eye(4)), str(path))
    return path


def fs_label(path, vertices):
    lines = ["#!ascii label  , from subject fsaverage5 vox2ras=TkReg", str(len(vertices))]
    lines += [f"{v} 0.0 0.0 0.0 0.0" for v in vertices]
    path.write_text("\n".join(lines) + "\n")
    return path


def cifti(path, data, left, right, *, labels=None, series=False, volume=True):
    """A dense CIFTI file with cortex models on fs_LR 32k vertices ``left`` / ``right`` (plus a small
    subcortical volume model, which the reader must drop)."""
    ml = np.zeros(FSLR, bool)
    ml[left] = True
    mr = np.zeros(FSLR, bool)
    mr[right] = True
    bm = (cifti2.BrainModelAxis.from_mask(ml, name="CortexLeft")
          + cifti2.BrainModelAxis.from_mask(mr, name="CortexRight"))
    if volume:
        vm = np.zeros((3, 3, 3), bool)
        vm[1, 1, :] = True
        bm = bm + cifti2.BrainModelAxis.from_mask(vm, name="thalamus_left", affine=np.eye(4))
    n_cols = len(bm)
    data = np.asarray(data, np.float32)
    if data.shape[1] != n_cols:  # pad the subcortical columns
        data = np.concatenate([data, np.full((data.shape[0], n_cols - data.shape[1]), 99.0, np.float32)], 1)
    if labels is not None:
        ax0 = cifti2.LabelAxis(["rois"], [{k: (name, (1.0, 0.0, 0.0, 1.0)) for k, name in labels.items()}])
    elif series:
        ax0 = cifti2.SeriesAxis(start=0, step=1, size=data.shape[0])
    else:
        ax0 = cifti2.ScalarAxis([f"s{i}" for i in range(data.shape[0])])
    nib.save(cifti2.Cifti2Image(data, header=(ax0, bm)), str(path))
    return path


AFFINE = np.array([[2.0, 0, 0, -10], [0, 2.0, 0, -20], [0, 0, 2.0, -30], [0, 0, 0, 1]])


def nifti(path, data, affine=AFFINE):
    nib.save(nib.Nifti1Image(np.asarray(data), affine), str(path))
    return path


# ----------------------------------------------------------------- arrays and tables


def test_array_formats_read_back(tmp_path):
    X = np.arange(24, dtype=np.float32).reshape(6, 4) / 7
    np.save(tmp_path / "a.npy", X)
    np.savez(tmp_path / "one.npz", X)
    np.savez(tmp_path / "two.npz", feats=X, other=X[:2])
    with h5py.File(tmp_path / "a.h5", "w") as fh:
        fh.create_dataset("group/feats", data=X)
    pd.DataFrame(X, columns=list("abcd")).to_parquet(tmp_path / "a.parquet")
    pd.DataFrame(X, columns=list("abcd")).to_csv(tmp_path / "head.csv", index=False)
    np.savetxt(tmp_path / "nohead.csv", X, delimiter=",")
    pd.DataFrame(X).to_csv(tmp_path / "a.tsv", sep="\t", index=False, header=list("abcd"))
    for spec in ("a.npy", "one.npz", "two.npz:feats", "a.h5", "a.h5:group/feats", "a.parquet", "head.csv",
                 "nohead.csv", "a.tsv"):
        np.testing.assert_allclose(read_array(str(tmp_path / spec)), X, rtol=1e-6, err_msg=spec)


def test_content_is_checked_against_the_extension(tmp_path):
    (tmp_path / "x.npy").write_text("1,2,3\n4,5,6\n")
    with pytest.raises(InputError, match=r"x\.npy: is not a \.npy file: its content looks like plain text"):
        read_array(tmp_path / "x.npy")
    (tmp_path / "x.h5").write_bytes(b"\x00\x01\x02 this is not hdf5" * 20)
    with pytest.raises(InputError, match=r"x\.h5: is not a \.h5 file"):
        read_array(tmp_path / "x.h5")
    np.save(tmp_path / "real.npy", np.ones((3, 2)))
    (tmp_path / "y.csv").write_bytes((tmp_path / "real.npy").read_bytes())
    with pytest.raises(InputError, match="content looks like a NumPy .npy array"):
        read_array(tmp_path / "y.csv")
    import pickle

    (tmp_path / "p.npy").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(InputError, match="pickle"):
        read_array(tmp_path / "p.npy")
    assert sniff(tmp_path / "real.npy") == "npy"


def test_labels_tables_and_1d_arrays(tmp_path):
    pd.DataFrame({"roi": ["V1", "V2", "V1"]}).to_csv(tmp_path / "r.csv", index=False)
    assert list(read_labels(tmp_path / "r.csv")) == ["V1", "V2", "V1"]
    np.savetxt(tmp_path / "idx.csv", np.array([3, 1, 2]), fmt="%d")  # no header row
    assert list(read_labels(tmp_path / "idx.csv")) == ["3", "1", "2"]
    np.save(tmp_path / "idx.npy", np.array([5, 6]))
    assert list(read_labels(tmp_path / "idx.npy")) == ["5", "6"]
    pd.Series([7, 8, 9]).to_csv(tmp_path / "series.csv", index=False)  # pandas' default header "0"
    assert list(read_labels(tmp_path / "series.csv")) == ["0", "7", "8", "9"]  # length unknown: no header
    assert list(read_labels(tmp_path / "series.csv", n=3)) == ["7", "8", "9"]  # only this reading fits
    pd.Series([3, 0, 5]).to_csv(tmp_path / "rows.csv", index=False)
    assert list(read_labels(tmp_path / "rows.csv", unique=True)) == ["3", "0", "5"]  # "0" repeats: a header
    pd.DataFrame(np.ones((3, 2))).to_csv(tmp_path / "frame.csv", index=False)  # header "0,1": pandas' default
    assert read_array(tmp_path / "frame.csv").shape == (3, 2)
    (tmp_path / "r.txt").write_text("a\nb\n\n")
    assert list(read_labels(tmp_path / "r.txt")) == ["a", "b"]


# ----------------------------------------------------------------- responses


def test_gifti_per_hemisphere_samples_and_metadata_order(tmp_path):
    rng = np.random.default_rng(0)
    L, R = rng.normal(size=(5, FS5)), rng.normal(size=(5, FS5))
    gifti_func(tmp_path / "a.func.gii", R, hemi="right")  # names say nothing, metadata does
    gifti_func(tmp_path / "b.func.gii", L, hemi="left")
    r = read_responses([str(tmp_path / "a.func.gii"), str(tmp_path / "b.func.gii")])
    assert r.space == "fsaverage5" and r.data.shape == (5, 2 * FS5)
    np.testing.assert_allclose(r.data[:, :FS5], L, rtol=1e-6)
    np.testing.assert_allclose(r.data[:, FS5:], R, rtol=1e-6)
    assert (r.hemi[:FS5] == "left").all() and (r.hemi[FS5:] == "right").all()
    np.testing.assert_array_equal(r.vertex, np.arange(2 * FS5))
    # one (N, V) data array
    gifti_func(tmp_path / "lh.one.func.gii", L, one_array=True)
    r1 = read_responses([str(tmp_path / "lh.one.func.gii")])
    assert r1.data.shape == (5, FS5) and set(r1.hemi) == {"left"}
    with pytest.raises(InputError, match=r"a\.func\.gii: has 10242 vertices per hemisphere but `space` fsLR32k has 32492"):
        read_responses([str(tmp_path / "a.func.gii"), str(tmp_path / "b.func.gii")], space="fsLR32k")


def test_mgh_sessions_concatenate_in_order_per_hemisphere(tmp_path):
    rng = np.random.default_rng(1)
    parts = {(h, s): rng.normal(size=(3, FS5)).astype(np.float32) for h in ("lh", "rh") for s in (1, 2)}
    files = []
    for s in (1, 2):
        for h in ("lh", "rh"):
            ext = "mgz" if s == 2 else "mgh"
            files.append(str(mgh(tmp_path / f"{h}.betas_session{s:02d}.{ext}", parts[h, s])))
    r = read_responses(files)
    assert r.space == "fsaverage5" and r.data.shape == (6, 2 * FS5)
    np.testing.assert_allclose(r.data[:3, :FS5], parts["lh", 1])
    np.testing.assert_allclose(r.data[3:, :FS5], parts["lh", 2])
    np.testing.assert_allclose(r.data[3:, FS5:], parts["rh", 2])
    with pytest.raises(InputError, match="left-hemisphere"):
        read_responses(files[:3])
    mgh(tmp_path / "rh.short.mgh", parts["rh", 1][:2])
    with pytest.raises(InputError, match=r"rh\.short\.mgh: has 2 samples but its left-hemisphere partner"):
        read_responses([files[0], str(tmp_path / "rh.short.mgh")])


def test_cifti_keeps_cortex_with_brain_model_vertices(tmp_path):
    left, right = np.array([0, 5, 9, 100]), np.array([1, 2, 32491])
    rng = np.random.default_rng(2)
    data = rng.normal(size=(4, len(left) + len(right)))
    for name, series in (("x.dscalar.nii", False), ("x.dtseries.nii", True)):
        cifti(tmp_path / name, data, left, right, series=series)
        r = read_responses([str(tmp_path / name)])
        assert r.space == "fsLR32k" and r.data.shape == (4, 7)
        np.testing.assert_array_equal(r.vertex, np.r_[left, right + FSLR])
        assert list(r.hemi) == ["left"] * 4 + ["right"] * 3
        np.testing.assert_allclose(r.data, data, rtol=1e-6)  # the subcortical columns (99) are dropped
    with pytest.raises(InputError, match="x.dscalar.nii: has 32492 vertices per hemisphere but `space` fsaverage5"):
        read_responses([str(tmp_path / "x.dscalar.nii")], space="fsaverage5")


def test_nifti_volume_with_mask(tmp_path):
    rng = np.random.default_rng(3)
    vol = rng.normal(size=(4, 5, 6, 7)).astype(np.float32)
    mask = np.zeros((4, 5, 6), np.uint8)
    mask[1, 2, 3] = mask[3, 4, 5] = mask[0, 0, 1] = 1
    nifti(tmp_path / "bold.nii.gz", vol)
    nifti(tmp_path / "mask.nii.gz", mask)
    r = read_responses([str(tmp_path / "bold.nii.gz")], mask=str(tmp_path / "mask.nii.gz"))
    assert r.space == "volume" and r.data.shape == (7, 3)
    ijk = np.argwhere(mask)
    np.testing.assert_allclose(r.data, vol[ijk[:, 0], ijk[:, 1], ijk[:, 2]].T)
    np.testing.assert_array_equal(r.vertex, np.arange(3))
    np.testing.assert_allclose(r.extra_columns["x"], 2.0 * ijk[:, 0] - 10)
    assert r.volume["shape"] == [4, 5, 6] and np.allclose(r.volume["affine"], AFFINE)
    with pytest.raises(InputError, match="bold.nii.gz: is a volume: give `mask`"):
        read_responses([str(tmp_path / "bold.nii.gz")])
    nifti(tmp_path / "badmask.nii.gz", np.ones((4, 5, 5), np.uint8))
    with pytest.raises(InputError, match=r"badmask.nii.gz: has shape \(4, 5, 5\) but the responses' volume"):
        read_responses([str(tmp_path / "bold.nii.gz")], mask=str(tmp_path / "badmask.nii.gz"))
    with pytest.raises(InputError, match="holds volume data but `space` is fsLR32k"):
        read_responses([str(tmp_path / "bold.nii.gz")], mask=str(tmp_path / "mask.nii.gz"), space="fsLR32k")


def test_array_space_checks(tmp_path):
    np.save(tmp_path / "Y.npy", np.zeros((6, 12), np.float32))
    r = read_responses([str(tmp_path / "Y.npy")], space="fsLR32k")
    with pytest.raises(InputError, match=r"Y.npy: has 12 columns but `space` fsLR32k has 32492 vertices per hemisphere"):
        check_space(r)
    pd.DataFrame({"vertex": [0, 1, 2, 3, 4, 5, 32492, 32493, 32494, 40000, 50000, 64983]}).to_csv(tmp_path / "v.csv", index=False)
    r = check_space(apply_vertices(r, str(tmp_path / "v.csv")), vertices_source="v.csv")
    assert list(r.hemi) == ["left"] * 6 + ["right"] * 6
    pd.DataFrame({"vertex": list(range(11)) + [64984]}).to_csv(tmp_path / "bad.csv", index=False)
    r = read_responses([str(tmp_path / "Y.npy")], space="fsLR32k")
    with pytest.raises(InputError, match=r"bad.csv: vertex indices must lie in \[0, 64984\)"):
        check_space(apply_vertices(r, str(tmp_path / "bad.csv")), vertices_source=str(tmp_path / "bad.csv"))


# ----------------------------------------------------------------- ROI labels


def _fs5_responses(tmp_path, n=4):
    rng = np.random.default_rng(4)
    gifti_func(tmp_path / "lh.f.func.gii", rng.normal(size=(n, FS5)))
    gifti_func(tmp_path / "rh.f.func.gii", rng.normal(size=(n, FS5)))
    return read_responses([str(tmp_path / "lh.f.func.gii"), str(tmp_path / "rh.f.func.gii")])


def test_annot_label_and_gifti_label_files(tmp_path):
    resp = _fs5_responses(tmp_path)
    labels = np.full(FS5, -1)
    labels[:10] = 1
    labels[10:20] = 2
    ctab = np.array([[25, 5, 25, 0], [200, 0, 0, 0], [0, 200, 0, 0]])
    nib.freesurfer.write_annot(str(tmp_path / "lh.test.annot"), labels, ctab, [b"unknown", b"V1", b"FFA-1"])
    fs_label(tmp_path / "rh.PPA.label", [0, 1, 2, 3000])
    gifti_label(tmp_path / "rh.extra.label.gii", np.r_[np.full(5, 7), np.zeros(FS5 - 5)], {0: "???", 7: "RSC"})
    rois, warnings = read_rois([str(tmp_path / "lh.test.annot"), str(tmp_path / "rh.PPA.label"),
                                str(tmp_path / "rh.extra.label.gii")], resp)
    assert rois.shape == (2 * FS5,)
    assert list(rois[:10]) == ["V1"] * 10 and list(rois[10:20]) == ["FFA-1"] * 10 and rois[20] == UNLABELLED
    assert list(rois[FS5:FS5 + 5]) == ["PPA"] * 3 + ["RSC"] * 2 and rois[FS5 + 3000] == "PPA"
    assert any("earlier" in w for w in warnings)  # rh vertices 0-2: PPA from the .label file wins over RSC


def test_mgz_labels_with_nsd_ctab_and_lookup_options(tmp_path):
    resp = _fs5_responses(tmp_path)
    vals = np.zeros(FS5)
    vals[:3] = 1
    vals[3:6] = 7
    mgh(tmp_path / "lh.prf-visualrois.mgz", vals)
    mgh(tmp_path / "rh.prf-visualrois.mgz", vals[::-1].copy())
    (tmp_path / "prf-visualrois.mgz.ctab").write_text("0 Unknown\n1 V1v\n2 V1d\n7 hV4\n")
    rois, _ = read_rois([str(tmp_path / "lh.prf-visualrois.mgz"), str(tmp_path / "rh.prf-visualrois.mgz")], resp)
    assert list(rois[:6]) == ["V1v"] * 3 + ["hV4"] * 3 and rois[6] == UNLABELLED and rois[-1] == "V1v"
    # an explicit lookup (tsv) wins over the sibling ctab
    pd.DataFrame({"index": [1, 7], "name": ["A", "B"]}).to_csv(tmp_path / "lut.tsv", sep="\t", index=False)
    rois, _ = read_rois([str(tmp_path / "lh.prf-visualrois.mgz")], resp, lookups=[str(tmp_path / "lut.tsv")])
    assert list(rois[:6]) == ["A"] * 3 + ["B"] * 3
    (tmp_path / "small.ctab").write_text("1 X\n")
    with pytest.raises(InputError, match="holds label value 7 missing from its lookup table"):
        read_rois([str(tmp_path / "lh.prf-visualrois.mgz")], resp, lookups=[str(tmp_path / "small.ctab")])
    mgh(tmp_path / "lh.wrong.mgz", np.zeros(500))
    with pytest.raises(InputError, match=r"lh.wrong.mgz: has 500 vertices but the responses' space fsaverage5 has 10242"):
        read_rois([str(tmp_path / "lh.wrong.mgz")], resp)


def test_cifti_dlabel_and_table_rois(tmp_path):
    left, right = np.array([0, 5, 9]), np.array([1, 2])
    cifti(tmp_path / "x.dscalar.nii", np.zeros((2, 5)), left, right)
    resp = read_responses([str(tmp_path / "x.dscalar.nii")])
    cifti(tmp_path / "r.dlabel.nii", np.array([[1, 2, 0, 2, 1]]), left, right, labels={0: "???", 1: "V1", 2: "V2"},
          volume=False)
    rois, _ = read_rois([str(tmp_path / "r.dlabel.nii")], resp)
    assert list(rois) == ["V1", "V2", UNLABELLED, "V2", "V1"]
    # a one-column table with one label per mesh vertex is indexed by the responses' vertices
    full = np.array([f"r{i}" for i in range(2 * FSLR)])
    pd.DataFrame({"roi": full}).to_parquet(tmp_path / "full.parquet")
    rois, _ = read_rois([str(tmp_path / "full.parquet")], resp)
    assert list(rois) == ["r0", "r5", "r9", f"r{FSLR + 1}", f"r{FSLR + 2}"]
    pd.DataFrame({"roi": ["a"] * 4}).to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(InputError, match="short.csv: has 4 ROI labels but 5 response columns"):
        read_rois([str(tmp_path / "short.csv")], resp)


def test_lookup_formats(tmp_path):
    (tmp_path / "a.ctab").write_text("# comment\n0 Unknown 0 0 0 0\n1  V1v 255 0 0 0\n")
    assert read_lookup(tmp_path / "a.ctab") == {0: "Unknown", 1: "V1v"}
    (tmp_path / "b.ctab").write_text("1 V1\nbad line here\n")
    with pytest.raises(InputError, match=r"b.ctab: line 2: 'bad' is not an integer"):
        read_lookup(tmp_path / "b.ctab")


# ----------------------------------------------------------------- categories


def test_categories_in_row_order_or_keyed(tmp_path):
    pd.DataFrame({"category": ["a", "b", "a"]}).to_csv(tmp_path / "rows.csv", index=False)
    assert list(read_categories(tmp_path / "rows.csv", 3)) == ["a", "b", "a"]
    pd.DataFrame({"stimulus": ["17", "3", "005"], "category": ["x", "y", "z"]}).to_csv(tmp_path / "keyed.csv", index=False)
    assert list(read_categories(tmp_path / "keyed.csv", 3, ["5", "17", "3"])) == ["z", "x", "y"]
    with pytest.raises(InputError, match=r"keyed.csv: has no category for 1 of 3 stimuli \(e.g. stimulus '4'\)"):
        read_categories(tmp_path / "keyed.csv", 3, ["5", "17", "4"])
    pd.DataFrame({"nsdId": [1, 1], "supercategory": ["x", "y"]}).to_csv(tmp_path / "dup.csv", index=False)
    with pytest.raises(InputError, match="two categories"):
        read_categories(tmp_path / "dup.csv", 1, ["1"])
    with pytest.raises(InputError, match="rows.csv: has 3 categories but 4 stimuli"):
        read_categories(tmp_path / "rows.csv", 4)


def test_file_kinds():
    assert file_kind("a.dscalar.nii") == "cifti" and file_kind("a.dlabel.nii") == "cifti-label"
    assert file_kind("lh.a.label.gii") == "gifti-label" and file_kind("lh.a.func.gii") == "gifti"
    assert file_kind("a.nii.gz") == "nifti" and file_kind("a.npz:key") == "array" and file_kind("x.mgz") == "mgh"


# ----------------------------------------------------------------- end to end

FAST = ["--hidden", "16", "--max-epochs", "30", "--n-boot", "50", "--quiet", "--device", "cpu"]


def _signal(n, v, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5)).astype(np.float32)
    Y = X @ rng.normal(size=(5, v)) + np.abs(X[:, :1]) + 0.3 * rng.normal(size=(n, v))
    return X, Y.astype(np.float32)


def test_run_on_cifti_with_dlabel_rois(tmp_path):
    left, right = np.arange(0, 40, 5), np.arange(3, 30, 4)
    X, Y = _signal(60, len(left) + len(right))
    np.save(tmp_path / "X.npy", X)
    cifti(tmp_path / "y.dtseries.nii", Y, left, right, series=True)
    keys = np.where(np.arange(Y.shape[1]) % 2 == 0, 1, 2)
    cifti(tmp_path / "r.dlabel.nii", keys[None], left, right, labels={0: "???", 1: "V1", 2: "FFC"}, volume=False)
    out = tmp_path / "b"
    code = main(["run", "--features", str(tmp_path / "X.npy"), "--responses", str(tmp_path / "y.dtseries.nii"),
                 "--rois", str(tmp_path / "r.dlabel.nii"), "--out", str(out), "--groups", "none", *FAST])
    assert code == 0
    b = load_bundle(out)
    assert b.space == "fsLR32k"
    np.testing.assert_array_equal(b.vertices["vertex"], np.r_[left, right + FSLR])
    assert list(b.vertices["hemi"]) == ["left"] * len(left) + ["right"] * len(right)
    assert set(b.vertices["roi"]) == {"V1", "FFC"} and set(b.vertices["level"]) == {"primary", "higher"}
    assert not (tmp_path / "b.partial").exists()


def test_run_on_volume_records_affine_and_voxels(tmp_path):
    X, Y = _signal(60, 6, seed=1)
    vol = np.zeros((3, 3, 4, 60), np.float32)
    mask = np.zeros((3, 3, 4), np.uint8)
    ijk = np.array([[0, 0, 0], [0, 1, 2], [1, 1, 1], [2, 0, 3], [2, 2, 2], [1, 2, 0]])
    ijk = ijk[np.lexsort(ijk.T[::-1])]  # C order, as the mask is read
    for c, (i, j, k) in enumerate(ijk):
        vol[i, j, k] = Y[:, c]
        mask[i, j, k] = 1
    labels = np.zeros((3, 3, 4), np.int16)
    labels[ijk[:3, 0], ijk[:3, 1], ijk[:3, 2]] = 1
    labels[ijk[3:, 0], ijk[3:, 1], ijk[3:, 2]] = 2
    np.save(tmp_path / "X.npy", X)
    nifti(tmp_path / "bold.nii.gz", vol)
    nifti(tmp_path / "mask.nii.gz", mask)
    nifti(tmp_path / "rois.nii.gz", labels)
    (tmp_path / "rois.ctab").write_text("0 Unknown\n1 V1v\n2 PPA\n")
    out = tmp_path / "vol"
    code = main(["run", "--features", str(tmp_path / "X.npy"), "--responses", str(tmp_path / "bold.nii.gz"),
                 "--mask", str(tmp_path / "mask.nii.gz"), "--rois", str(tmp_path / "rois.nii.gz"),
                 "--roi-lookup", str(tmp_path / "rois.ctab"), "--out", str(out), "--groups", "none", *FAST])
    assert code == 0
    b = load_bundle(out)
    assert b.space == "volume" and np.allclose(b.manifest["volume"]["affine"], AFFINE)
    v = b.vertices
    np.testing.assert_array_equal(v[["voxel_i", "voxel_j", "voxel_k"]].to_numpy(), ijk)
    assert list(v["roi"]) == ["V1v"] * 3 + ["PPA"] * 3
    np.testing.assert_allclose(v["z"], 2.0 * ijk[:, 2] - 30)
    assert json.loads((out / "manifest.json").read_text())["volume"]["shape"] == [3, 3, 4]
