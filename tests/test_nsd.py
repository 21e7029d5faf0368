"""``jne nsd-prepare`` on a miniature NSD tree laid out exactly as NSD publishes it (relative to the
NSD root), every mapping checked against values computed by hand or directly:

- ``nsddata/experiments/nsd/nsd_expdesign.mat`` and ``nsd_stim_info_merged.csv``: 2 sessions x
  10 trials, 14 images of which 6 shared (shown twice);
- ``nsddata_betas/ppdata/subj01/fsaverage/betas_fithrf_GLMdenoise_RR/{lh,rh}.betas_sessionNN.mgh``
  on the real fsaverage vertex count, and ``.../func1pt8mm/.../betas_sessionNN.nii.gz`` on a
  (4, 5, 3) grid stored as scaled int16 like NSD's;
- ``nsddata/freesurfer/fsaverage/label/{lh,rh}.<set>.mgz`` + ``<set>.mgz.ctab`` for streams,
  HCP_MMP1, Kastner2015, nsdgeneral;
- ``nsddata/freesurfer/subj01/label/{lh,rh}.<set>.mgz`` on small native meshes (60 / 50 vertices)
  for prf-visualrois and floc-*;
- ``nsddata/ppdata/subj01/transforms/{lh,rh}.white-to-fsaverage.mgz`` and
  ``{lh,rh}.func1pt8-to-layerB{1,2,3}.mgz``;
- ``nsddata/ppdata/subj01/func1pt8mm/brainmask.nii.gz`` and ``roi/<set>.nii.gz``;

then ``jne run --prepared`` on the surface and on the volume output."""

import json
import shutil

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import scipy.io

from jnecore.bundle import load_bundle
from jnecore.cli import main
from jnecore.nsd import parse_sessions, read_expdesign, trial_images
from jnecore.validation import InputError

NV = 163842
T = 10
SUBJ_IMAGES = np.array([101, 205, 307, 410, 512, 640, 777, 901, 1003, 2000, 3141, 5000, 70001, 72999])  # 1-based 73k
SHARED = np.r_[SUBJ_IMAGES[:6], 60000]  # one shared image this subject never saw in these sessions
KEEP_LH, KEEP_RH = np.arange(20), np.arange(10)  # fsaverage vertices with a signal
N_NATIVE = {"lh": 60, "rh": 50}
GRID = (4, 5, 3)
AFFINE = np.array([[-1.8, 0, 0, 3.0], [0, 1.8, 0, -4.0], [0, 0, 1.8, 1.0], [0, 0, 0, 1]])
BRAIN = np.zeros(GRID, bool)
BRAIN[1:] = True  # the i = 0 plane is outside the brain: 45 voxels
BRAIN_IJK = np.argwhere(BRAIN)
FS_SETS = {  # fsaverage label sets: {set: (ctab, {hemi: {value: vertices}})}
    "HCP_MMP1": ("0 Unknown\n1 V1\n4 V2\n8 4\n18 FFC\n",
                 {"lh": {1: range(0, 10), 4: range(10, 15), 18: range(15, 20), 8: range(20, 25)},
                  "rh": {1: range(0, 10), 8: range(10, 13)}}),
    "Kastner2015": ("0 Unknown\n1 V1v\n7 hV4\n8 VO1\n", {"lh": {1: range(0, 5), 8: range(30, 35)}, "rh": {}}),
    "streams": ("0 Unknown\n1 early\n5 ventral\n",
                {"lh": {1: range(0, 15), 5: range(15, 20)}, "rh": {1: range(0, 10)}}),
    "nsdgeneral": ("-1 Unknown\n0 Unknown\n1 nsdgeneral\n", {"lh": {1: range(0, 20)}, "rh": {1: range(0, 10)}}),
}
NATIVE_SETS = {  # subject label sets on the native surfaces
    "prf-visualrois": ("0 Unknown\n1 V1v\n2 V1d\n3 V2v\n4 V2d\n5 V3v\n6 V3d\n7 hV4\n",
                       {"lh": {1: range(0, 10), 7: range(10, 15)}, "rh": {}}),
    "floc-faces": ("0 Unknown\n1 OFA\n2 FFA-1\n3 FFA-2\n", {"lh": {2: range(12, 20)}, "rh": {}}),
    "floc-places": ("0 Unknown\n1 OPA\n2 PPA\n3 RSC\n", {"lh": {}, "rh": {2: range(0, 20)}}),
    "floc-bodies": ("0 Unknown\n1 EBA\n", {"lh": {}, "rh": {}}),
    "floc-words": ("0 Unknown\n1 OWFA\n", {"lh": {}, "rh": {}}),
}
VOLUME_SETS = {  # func1pt8mm ROI volumes: {set: {value: voxel selector}}
    "prf-visualrois": {1: (1, slice(0, 3)), 7: (2, slice(None))},
    "HCP_MMP1": {1: (slice(0, 2), slice(None)), 8: (3, 0)},
}


pytestmark = pytest.mark.usefixtures("one_thread")


def white_to_fsaverage(hemi):
    """The fake transform, 0-based: lh fsaverage v < 20 -> native 19 - v, 20, 21 -> 0, others -> 59
    (unlabelled); rh v < 10 -> native 2 v, others -> 49."""
    idx = np.full(NV, N_NATIVE[hemi] - 1)
    if hemi == "lh":
        idx[:20] = 19 - np.arange(20)
        idx[20:22] = 0
    else:
        idx[:10] = 2 * np.arange(10)
    return idx


def _mgh(path, values):
    values = np.asarray(values, np.float32)
    nib.save(nib.MGHImage(values.reshape(values.shape[0], 1, 1, -1).squeeze(-1) if values.ndim == 1
                          else values.reshape(values.shape[0], 1, 1, -1), np.eye(4)), str(path))


def _label_map(n, spec):
    out = np.zeros(n)
    for value, where in spec.items():
        out[list(where)] = value
    return out


def _features73k(d=4, seed=0):
    return np.random.default_rng(seed).normal(size=(73000, d)).astype(np.float32)


def _design(root, rng):
    """nsd_expdesign.mat + nsd_stim_info_merged.csv; returns masterordering (1-based)."""
    order = rng.permutation(np.r_[np.arange(1, 7), np.arange(1, 7), np.arange(7, 15)])  # 1-based into subjectim
    subjectim = np.zeros((8, len(SUBJ_IMAGES)), dtype=np.int64)
    for s in range(8):
        subjectim[s] = SUBJ_IMAGES if s == 0 else rng.permutation(SUBJ_IMAGES)
    exp = root / "nsddata" / "experiments" / "nsd"
    exp.mkdir(parents=True)
    scipy.io.savemat(exp / "nsd_expdesign.mat", {"masterordering": order[None].astype(float),
                                                  "subjectim": subjectim.astype(float),
                                                  "sharedix": SHARED[None].astype(float)})
    pd.DataFrame({"nsdId": SUBJ_IMAGES - 1, "cocoId": 500000 + SUBJ_IMAGES, "shared1000": np.isin(SUBJ_IMAGES, SHARED)}
                 ).to_csv(exp / "nsd_stim_info_merged.csv")
    return order


def _surface_betas(root, rng, order, feats):
    W = rng.normal(size=(feats.shape[1], 30))
    d = root / "nsddata_betas" / "ppdata" / "subj01" / "fsaverage" / "betas_fithrf_GLMdenoise_RR"
    d.mkdir(parents=True)
    raw = {}
    for s in (1, 2):
        ids = SUBJ_IMAGES[order[(s - 1) * T: s * T] - 1] - 1
        sig = feats[ids] @ W + np.abs(feats[ids, :1]) + 0.3 * rng.normal(size=(T, 30))
        sig = sig * (300.0 if s == 2 else 1.0) + 5.0 * s
        for hemi, cols, keep in (("lh", slice(0, 20), KEEP_LH), ("rh", slice(20, 30), KEEP_RH)):
            full = np.zeros((NV, T), np.float32)
            full[keep] = sig[:, cols].T
            _mgh(d / f"{hemi}.betas_session{s:02d}.mgh", full)
        raw[s] = (ids, sig.astype(np.float32))
    return raw


def _volume_betas(root, rng, order, feats):
    """Scaled int16 NIfTI betas (nibabel picks the slope), signal in the 45 brain voxels; returns
    {session: (ids, (T, 45) stored values at the brain voxels as nibabel scales them)}."""
    W = rng.normal(size=(feats.shape[1], len(BRAIN_IJK)))
    d = root / "nsddata_betas" / "ppdata" / "subj01" / "func1pt8mm" / "betas_fithrf_GLMdenoise_RR"
    d.mkdir(parents=True)
    raw = {}
    for s in (1, 2):
        ids = SUBJ_IMAGES[order[(s - 1) * T: s * T] - 1] - 1
        sig = (feats[ids] @ W + 0.3 * rng.normal(size=(T, len(BRAIN_IJK)))) * 300.0 * s
        vol = np.zeros(GRID + (T,), np.float32)
        vol[BRAIN] = sig.T
        img = nib.Nifti1Image(vol, AFFINE)
        img.set_data_dtype(np.int16)
        f = d / f"betas_session{s:02d}.nii.gz"
        nib.save(img, str(f))
        raw[s] = (ids, nib.load(str(f)).get_fdata()[BRAIN].T)
    return raw


def _labels(root):
    fs = root / "nsddata" / "freesurfer" / "fsaverage" / "label"
    sub = root / "nsddata" / "freesurfer" / "subj01" / "label"
    for folder, sets, n in ((fs, FS_SETS, {"lh": NV, "rh": NV}), (sub, NATIVE_SETS, N_NATIVE)):
        folder.mkdir(parents=True)
        for name, (ctab, hemis) in sets.items():
            for hemi in ("lh", "rh"):
                _mgh(folder / f"{hemi}.{name}.mgz", _label_map(n[hemi], hemis.get(hemi, {})))
            (folder / f"{name}.mgz.ctab").write_text(ctab)


def _layer_coords(hemi):
    """(n_native, 3, 3) 1-based coordinates per vertex and depth (9999 = none): lh native 0 goes
    from voxel (1,2,1) through (1.5,2,1) to (2,2,1) (0-based); lh native 19 has (0,2,1) (outside the
    brain), (0.5,2,1) and none; rh native 0 sits at (3,4,2); every other vertex has none."""
    c = np.full((N_NATIVE[hemi], 3, 3), 9999.0)
    if hemi == "lh":
        c[0] = np.array([[1, 2, 1], [1.5, 2, 1], [2, 2, 1]]) + 1
        c[19, :2] = np.array([[0, 2, 1], [0.5, 2, 1]]) + 1
    else:
        c[0] = np.array([3, 4, 2]) + 1
    return c


def _transforms(root):
    d = root / "nsddata" / "ppdata" / "subj01" / "transforms"
    d.mkdir(parents=True)
    for hemi in ("lh", "rh"):
        _mgh(d / f"{hemi}.white-to-fsaverage.mgz", white_to_fsaverage(hemi) + 1)
        c = _layer_coords(hemi)
        for depth in range(3):
            _mgh(d / f"{hemi}.func1pt8-to-layerB{depth + 1}.mgz", c[:, depth])


def _volumes(root):
    d = root / "nsddata" / "ppdata" / "subj01" / "func1pt8mm"
    (d / "roi").mkdir(parents=True)
    nib.save(nib.Nifti1Image(BRAIN.astype(np.float32), AFFINE), str(d / "brainmask.nii.gz"))
    for name, spec in VOLUME_SETS.items():
        vol = np.zeros(GRID, np.int16)
        for value, where in spec.items():
            vol[where] = value
        nib.save(nib.Nifti1Image(vol, AFFINE), str(d / "roi" / f"{name}.nii.gz"))


@pytest.fixture(scope="module")
def nsd(tmp_path_factory):
    """The miniature NSD root and what went into it."""
    root = tmp_path_factory.mktemp("nsd")
    rng = np.random.default_rng(0)
    order = _design(root, rng)
    feats = _features73k()
    raw = _surface_betas(root, rng, order, feats)
    vraw = _volume_betas(root, rng, order, feats)
    _labels(root)
    _transforms(root)
    _volumes(root)
    np.save(root / "features73k.npy", feats)
    pd.DataFrame({"cocoId": 500000 + SUBJ_IMAGES, "category": np.where(SUBJ_IMAGES % 2 == 0, "animal", "vehicle")}
                 ).to_csv(root / "coco_cats.csv", index=False)
    return dict(root=root, order=order, raw=raw, vraw=vraw, feats=feats)


def _expected(raw):
    """Direct computation: z-score each session per column, average the trials of each image."""
    ids = np.unique(SUBJ_IMAGES - 1)
    acc = {i: [] for i in ids}
    for s in (1, 2):
        img, sig = raw[s]
        z = (sig - sig.mean(0)) / sig.std(0)
        for t, i in enumerate(img):
            acc[i].append(z[t])
    return ids, np.stack([np.mean(acc[i], 0) for i in ids]), acc


def _nc(ids, acc):
    """Noise ceiling from the repeats: s2 = mean over repeated images of the across-repeat variance."""
    reps = np.stack([np.stack(acc[i]) for i in ids if len(acc[i]) == 2])
    s2 = reps.var(1, ddof=1).mean(0)
    ncsnr2 = np.maximum(1 - s2, 0) / s2
    return 100 * ncsnr2 / (ncsnr2 + 0.5)


def _prepare(nsd, out, *extra):
    return main(["nsd-prepare", "--nsd-root", str(nsd["root"]), "--subject", "1", "--out", str(out), "--quiet",
                 *extra])


def _run(prepared, bundle):
    return main(["run", "--prepared", str(prepared), "--out", str(bundle), "--hidden", "16", "--max-epochs", "30",
                 "--n-boot", "50", "--quiet", "--device", "cpu"])


def test_expdesign_and_session_parsing(nsd):
    d = read_expdesign(nsd["root"] / "nsddata" / "experiments" / "nsd" / "nsd_expdesign.mat")
    assert d["masterordering"].shape == (20,) and d["subjectim"].shape == (8, 14)
    np.testing.assert_array_equal(trial_images(d, 1), SUBJ_IMAGES[nsd["order"] - 1] - 1)
    assert parse_sessions("1-3,5,2") == [1, 2, 3, 5]


def test_prepare_defaults_fsaverage_hcp_mmp_then_run(nsd, tmp_path, capsys):
    """No path given: fsaverage betas, the HCP_MMP1 set from fsaverage's label folder, visual areas kept."""
    out = tmp_path / "prep"
    assert _prepare(nsd, out, "--features", str(nsd["root"] / "features73k.npy"),
                    "--categories", str(nsd["root"] / "coco_cats.csv")) == 0
    cap = capsys.readouterr()
    assert "wrote" in cap.out and "30 vertices" in cap.out and "jne run --prepared" in cap.out
    assert "6 of the 7 shared images" in cap.err
    ids, mean, acc = _expected(nsd["raw"])
    Y = np.load(out / "responses.npy")
    assert Y.shape == (14, 30) and Y.dtype == np.float32
    np.testing.assert_allclose(Y, mean, rtol=1e-4, atol=1e-5)  # the x300 scale of session 2 is gone
    stim = pd.read_csv(out / "stimulus_ids.csv")["stimulus"].to_numpy()
    np.testing.assert_array_equal(stim, ids)
    test_rows = pd.read_csv(out / "test_index.csv")["test_index"].to_numpy()
    np.testing.assert_array_equal(stim[test_rows], np.sort(SUBJ_IMAGES[:6] - 1))
    rois = pd.read_csv(out / "rois.csv")["roi"].tolist()
    assert rois == ["V1"] * 10 + ["V2"] * 5 + ["FFC"] * 5 + ["V1"] * 10  # area "4" (motor) is not visual
    verts = pd.read_csv(out / "vertices.csv")["vertex"].to_numpy()
    np.testing.assert_array_equal(verts, np.r_[KEEP_LH, NV + KEEP_RH])
    np.testing.assert_array_equal(np.load(out / "features.npy"), nsd["feats"][ids])
    cats = pd.read_csv(out / "categories.csv")["category"].to_numpy()
    np.testing.assert_array_equal(cats, np.where((ids + 1) % 2 == 0, "animal", "vehicle"))
    nc = _nc(ids, acc)
    np.testing.assert_allclose(pd.read_csv(out / "noise_ceiling.csv")["noise_ceiling"], nc, rtol=1e-4)
    info = json.loads((out / "prepare.json").read_text())
    assert info["space"] == "fsaverage" and info["sessions"] == [1, 2] and info["trials_per_session"] == T
    assert info["roi_sets"] == ["HCP_MMP1"] and info["keep"] == "visual" and info["counts"]["test"] == 6
    assert info["sources"]["fsaverage_label_dir"] == str(nsd["root"] / "nsddata/freesurfer/fsaverage/label")

    bundle = tmp_path / "bundle"
    assert _run(out, bundle) == 0
    b = load_bundle(bundle)
    assert b.space == "fsaverage"
    v = b.vertices
    np.testing.assert_array_equal(v["vertex"], verts)
    assert list(v["hemi"]) == ["left"] * 20 + ["right"] * 10 and v["roi"].tolist() == rois
    assert list(v["level"]) == ["primary"] * 10 + ["intermediate"] * 5 + ["higher"] * 5 + ["primary"] * 10
    np.testing.assert_allclose(v["noise_ceiling"], nc, rtol=1e-4)
    assert sorted(b.test_stimuli["stimulus"].astype(int)) == sorted(SUBJ_IMAGES[:6] - 1)
    assert set(b.stimuli["category"]) == {"animal", "vehicle"}
    assert b.manifest["sources"]["prepared"] == str(out)


def test_every_fsaverage_set_and_keep_rois(nsd, tmp_path):
    """The four sets NSD ships on fsaverage, read where NSD keeps them; earlier sets win."""
    out = tmp_path / "prep"
    assert _prepare(nsd, out, "--features", str(nsd["root"] / "features73k.npy"), "--keep", "rois",
                    "--roi-sets", "Kastner2015", "streams", "HCP_MMP1", "nsdgeneral") == 0
    verts = pd.read_csv(out / "vertices.csv")["vertex"].to_numpy()
    np.testing.assert_array_equal(verts, np.r_[np.arange(25), np.arange(30, 35), NV + np.arange(13)])
    rois = pd.read_csv(out / "rois.csv")["roi"].tolist()
    assert rois == (["V1v"] * 5 + ["early"] * 10 + ["ventral"] * 5 + ["4"] * 5 + ["VO1"] * 5
                    + ["early"] * 10 + ["4"] * 3)
    info = json.loads((out / "prepare.json").read_text())
    assert info["counts"]["roi_vertices"] == {"lh.Kastner2015": 10, "rh.Kastner2015": 0, "lh.streams": 20,
                                              "rh.streams": 10, "lh.HCP_MMP1": 25, "rh.HCP_MMP1": 13,
                                              "lh.nsdgeneral": 20, "rh.nsdgeneral": 10}


def test_subject_rois_carried_through_white_to_fsaverage(nsd, tmp_path, capsys):
    """prf-visualrois and floc-* from the native surface, each fsaverage vertex taking its nearest
    native vertex's label (see :func:`white_to_fsaverage`)."""
    out = tmp_path / "prep"
    assert _prepare(nsd, out, "--features", str(nsd["root"] / "features73k.npy"),
                    "--roi-sets", "prf-visualrois", "floc-faces", "floc-places", "floc-bodies", "floc-words") == 0
    err = capsys.readouterr().err
    assert "lh.floc-faces.mgz: 3 vertices already have an ROI from an earlier file" in err
    assert "4 vertex-sessions were constant" in err  # fsaverage 20, 21 (V1v through native 0) have no signal
    # by hand: lh v = 0..4 -> native 19..15 (FFA-1), 5..9 -> 14..10 (hV4; FFA-1 on 12..14 loses),
    # 10..19 -> 9..0 (V1v), 20, 21 -> 0 (V1v); rh v = 0..9 -> native 0..18 even (PPA)
    rois = pd.read_csv(out / "rois.csv")["roi"].tolist()
    assert rois == ["FFA-1"] * 5 + ["hV4"] * 5 + ["V1v"] * 12 + ["PPA"] * 10
    verts = pd.read_csv(out / "vertices.csv")["vertex"].to_numpy()
    np.testing.assert_array_equal(verts, np.r_[np.arange(22), NV + np.arange(10)])
    ids, mean, _ = _expected(nsd["raw"])
    Y = np.load(out / "responses.npy")
    np.testing.assert_allclose(Y[:, :20], mean[:, :20], rtol=1e-4, atol=1e-5)
    assert np.all(Y[:, 20:22] == 0)
    np.testing.assert_allclose(Y[:, 22:], mean[:, 20:], rtol=1e-4, atol=1e-5)
    info = json.loads((out / "prepare.json").read_text())
    counts = info["counts"]["roi_vertices"]
    assert counts["lh.prf-visualrois"] == 17 and counts["rh.floc-places"] == 10


def test_volume_betas_within_brainmask_then_run(nsd, tmp_path, capsys):
    """--space func1pt8mm: the volume betas at the brain-mask voxels whose ROI volume names a visual
    area, as a volume bundle with the grid, affine and mask."""
    out = tmp_path / "prep"
    assert _prepare(nsd, out, "--space", "func1pt8mm", "--features", str(nsd["root"] / "features73k.npy"),
                    "--roi-sets", "prf-visualrois", "HCP_MMP1") == 0
    cap = capsys.readouterr()
    assert "30 voxels" in cap.out
    assert "HCP_MMP1.nii.gz: 9 vertices already have an ROI from an earlier file" in cap.err
    # by hand: i = 1, j < 3: V1v (prf wins over HCP V1); i = 1, j >= 3: V1 (HCP); i = 2: hV4; i = 3, j = 0:
    # area "4" (not visual); i = 0: V1 outside the brain mask
    kept = np.argwhere(BRAIN & (np.arange(4)[:, None, None] <= 2))
    rois = pd.read_csv(out / "rois.csv")["roi"].tolist()
    assert rois == [("V1v" if j < 3 else "V1") if i == 1 else "hV4" for i, j, _ in kept]
    mask = nib.load(str(out / "mask.nii.gz"))
    np.testing.assert_array_equal(np.argwhere(np.asarray(mask.dataobj) != 0), kept)
    np.testing.assert_allclose(mask.affine, AFFINE)
    ids, mean, acc = _expected(nsd["vraw"])
    cols = [int(np.flatnonzero((BRAIN_IJK == v).all(1))[0]) for v in kept]
    Y = np.load(out / "responses.npy")
    np.testing.assert_allclose(Y, mean[:, cols], rtol=1e-4, atol=1e-4)  # int16 x slope, z-scored per session
    np.testing.assert_allclose(pd.read_csv(out / "noise_ceiling.csv")["noise_ceiling"], _nc(ids, acc)[cols],
                               rtol=1e-3)
    info = json.loads((out / "prepare.json").read_text())
    assert info["space"] == "volume" and info["nsd_space"] == "func1pt8mm" and "vertices" not in info["files"]
    assert info["volume"]["shape"] == list(GRID) and info["volume"]["nsd"]["transforms_dir"].endswith(
        "nsddata/ppdata/subj01/transforms")

    bundle = tmp_path / "bundle"
    assert _run(out, bundle) == 0
    b = load_bundle(bundle)
    assert b.space == "volume"
    vol = b.manifest["volume"]
    assert vol["shape"] == list(GRID) and vol["n_voxels"] == 30 and vol["space"] == "native"
    np.testing.assert_allclose(vol["affine"], AFFINE)
    assert vol["nsd"]["subject"] == "subj01"
    v = b.vertices
    np.testing.assert_array_equal(v[["voxel_i", "voxel_j", "voxel_k"]].to_numpy(), kept)
    np.testing.assert_allclose(v[["x", "y", "z"]].to_numpy(), kept @ AFFINE[:3, :3].T + AFFINE[:3, 3], atol=1e-5)
    assert v["roi"].tolist() == rois and set(v["level"]) == {"primary", "intermediate"}


def test_prepare_with_keyed_features_one_session_and_all_vertices(nsd, tmp_path):
    ids = np.unique(SUBJ_IMAGES - 1)
    table = pd.DataFrame(nsd["feats"][ids], columns=[f"f{i}" for i in range(4)])
    table.insert(0, "nsdId", ids)
    table.sample(frac=1.0, random_state=0).to_parquet(tmp_path / "feats.parquet")
    out = tmp_path / "prep"
    assert _prepare(nsd, out, "--features", str(tmp_path / "feats.parquet"), "--sessions", "1", "--keep", "all") == 0
    Y = np.load(out / "responses.npy")
    s1_ids = np.unique(nsd["raw"][1][0])
    assert Y.shape == (len(s1_ids), 2 * NV)
    np.testing.assert_array_equal(np.load(out / "features.npy"), nsd["feats"][s1_ids])
    rois = pd.read_csv(out / "rois.csv", keep_default_na=False)["roi"]
    assert (rois[:10] == "V1").all() and (rois[25:NV] == "unlabelled").all() and (rois[NV + 13:] == "unlabelled").all()


def _copy_betas(nsd, dst, sessions, edit=None):
    """A betas folder with some sessions of the fake tree (``edit(path)`` may rewrite a file)."""
    src = nsd["root"] / "nsddata_betas/ppdata/subj01/fsaverage/betas_fithrf_GLMdenoise_RR"
    dst.mkdir()
    for s_dst, s_src in sessions.items():
        for hemi in ("lh", "rh"):
            shutil.copy(src / f"{hemi}.betas_session{s_src:02d}.mgh", dst / f"{hemi}.betas_session{s_dst:02d}.mgh")
    if edit:
        edit(dst)
    return dst


def _short_rh(d):
    _mgh(d / "rh.betas_session02.mgh", np.zeros((NV, T - 1)))


def _bad_transform(n):
    def setup(d):
        d.mkdir()
        for hemi in ("lh", "rh"):
            _mgh(d / f"{hemi}.white-to-fsaverage.mgz", np.ones(n))
    return setup


def _past_native(d):
    d.mkdir()
    for hemi in ("lh", "rh"):
        _mgh(d / f"{hemi}.white-to-fsaverage.mgz", np.full(NV, N_NATIVE[hemi] + 1.0))


@pytest.mark.parametrize("extra, setup, needle", [
    (["--features", "SHORT"], None,
     "short.npy: has 5000 rows: give 73000 rows in 73k order, a table with an nsdId column, or --feature-ids"),
    (["--sessions", "3"], None, "lh.betas_session03.mgh: no such file"),
    (["--expdesign", "TEXT"], None, "is not a MATLAB .mat file"),
    (["--subject", "x9"], None, "--subject: expected a subject number such as 1 or subj01, got 'x9'"),
    (["--keep", "some"], None, "--keep: unknown value 'some': use one of visual, rois, all"),
    (["--space", "MNI"], None, "--space: unknown value 'MNI': use one of fsaverage, func1pt8mm"),
    # a session missing, trial counts that disagree
    (["--betas-dir", "BETAS"], lambda nsd, d: _copy_betas(nsd, d, {1: 1, 3: 2}),
     "/lh.betas_session02.mgh: no such file: session 2 is missing among the sessions found (1-3; give --sessions"),
    (["--betas-dir", "BETAS"], lambda nsd, d: _copy_betas(nsd, d, {1: 1, 2: 2}, _short_rh),
     "/rh.betas_session02.mgh: has 9 trials but sessions are assumed to have 10"),
    (["--betas-dir", "BETAS", "--trials-per-session", "7"], lambda nsd, d: _copy_betas(nsd, d, {1: 1}),
     "/lh.betas_session01.mgh: has 10 trials but sessions are assumed to have 7"),
    # missing files name the option that overrides them
    (["--fsaverage-label-dir", "NOWHERE"], None,
     "lh.HCP_MMP1.mgz: no such file (ROI set 'HCP_MMP1' on fsaverage: set --fsaverage-label-dir / --roi-pattern, "
     "or --roi-sets)"),
    (["--roi-sets", "floc-faces", "--label-dir", "NOWHERE"], None,
     "lh.floc-faces.mgz: no such file (ROI set 'floc-faces' on the subject's native surface: set --label-dir"),
    (["--roi-sets", "floc-faces", "--transforms-dir", "NOWHERE"], None,
     "lh.white-to-fsaverage.mgz: no such file (the transform that carries lh.floc-faces.mgz from the native surface "
     "to fsaverage: set --transforms-dir / --transform-pattern)"),
    (["--roi-sets", "floc-faces", "--transforms-dir", "TRANSFORMS"], lambda nsd, d: _bad_transform(1000)(d),
     "/lh.white-to-fsaverage.mgz: has 1000 entries but the target mesh has 163842 vertices per hemisphere"),
    (["--roi-sets", "floc-faces", "--transforms-dir", "TRANSFORMS"], lambda nsd, d: _past_native(d),
     "/lh.white-to-fsaverage.mgz: points at native vertex 61 but lh.floc-faces.mgz has 60 vertices"),
    (["--space", "func1pt8mm", "--brainmask", "NOWHERE"], None,
     "brainmask.nii.gz: no such file (the brain mask of the volume betas: set --brainmask or --nsd-root)"),
    (["--space", "func1pt8mm", "--roi-sets", "Kastner2015"], None,
     "roi/Kastner2015.nii.gz: no such file (ROI volume of set 'Kastner2015': set --roi-volume-dir / "
     "--roi-volume-pattern, or --roi-sets)"),
])
def test_prepare_errors(nsd, tmp_path, capsys, extra, setup, needle):
    np.save(tmp_path / "short.npy", np.ones((5000, 4), np.float32))
    (tmp_path / "design.mat").write_text("masterordering = [1 2 3]\n")
    if setup:
        setup(nsd, tmp_path / ("BETAS" if "BETAS" in extra else "TRANSFORMS"))
    names = {"SHORT": "short.npy", "TEXT": "design.mat", "BETAS": "BETAS", "TRANSFORMS": "TRANSFORMS"}
    extra = [str(tmp_path / names[e]) if e in names else str(tmp_path / "nowhere" / "brainmask.nii.gz")
             if e == "NOWHERE" and "--brainmask" in extra else str(tmp_path / "nowhere") if e == "NOWHERE" else e
             for e in extra]
    argv = ["nsd-prepare", "--nsd-root", str(nsd["root"]), "--out", str(tmp_path / "prep"), "--quiet"]
    if "--subject" not in extra:
        argv += ["--subject", "1"]
    assert main(argv + extra) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and needle in err and "\n" not in err
    assert not (tmp_path / "prep").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".prep")]


def test_volume_errors_name_the_file(nsd, tmp_path):
    from jnecore.nsd import plan_sessions, read_roi_volumes, resolve_paths

    betas = tmp_path / "betas"
    betas.mkdir()
    src = nsd["root"] / "nsddata_betas/ppdata/subj01/func1pt8mm/betas_fithrf_GLMdenoise_RR"
    shutil.copy(src / "betas_session01.nii.gz", betas / "betas_session01.nii.gz")
    nib.save(nib.Nifti1Image(np.zeros((4, 5, 4, T), np.float32), AFFINE), str(betas / "betas_session02.nii.gz"))
    paths = resolve_paths(nsd["root"], 1, space="func1pt8mm", betas_dir=betas)
    with pytest.raises(InputError, match=r"has grid \(4, 5, 4\) but the brain mask brainmask.nii.gz is \(4, 5, 3\)"
                       ) as e:
        plan_sessions(paths, 20)
    assert e.value.source == str(betas / "betas_session02.nii.gz")
    nib.save(nib.Nifti1Image(np.zeros(GRID + (T - 2,), np.float32), AFFINE), str(betas / "betas_session02.nii.gz"))
    with pytest.raises(InputError, match="has 8 trials but sessions are assumed to have 10") as e:
        plan_sessions(paths, 20)
    assert e.value.source == str(betas / "betas_session02.nii.gz")
    roi_dir = tmp_path / "roi"
    roi_dir.mkdir()
    shifted = AFFINE.copy()
    shifted[0, 3] += 5.0
    nib.save(nib.Nifti1Image(np.zeros(GRID, np.int16), shifted), str(roi_dir / "HCP_MMP1.nii.gz"))
    layout = plan_sessions(resolve_paths(nsd["root"], 1, space="func1pt8mm"), 20)
    with pytest.raises(InputError, match="its affine differs from that of the brain mask") as e:
        read_roi_volumes(resolve_paths(nsd["root"], 1, space="func1pt8mm", roi_volume_dir=roi_dir), layout.grid, [])
    assert e.value.source == str(roi_dir / "HCP_MMP1.nii.gz")


# ----------------------------------------------------------------- NSD's transforms, by hand


def test_sample_volume_and_depths_by_hand():
    from jnecore.atlas import sample_depths, sample_volume

    ijk = np.array([[1, 2, 1], [2, 2, 1], [1, 3, 1]])
    values = np.array([2.0, 6.0, 10.0])
    pts = np.array([[1, 2, 1], [1.5, 2, 1], [1.25, 2.5, 1], [0.5, 2, 1], [3, 4, 2], [-3, 0, 0], [np.nan] * 3,
                    [3.5, 2, 1]])
    # (1.25, 2.5, 1): weights 0.375 (a), 0.125 (b), 0.375 (c), 0.125 (unmodelled) -> 5.25 / 0.875
    expected = [2.0, 4.0, 6.0, 2.0, np.nan, np.nan, np.nan, np.nan]
    np.testing.assert_allclose(sample_volume(values, ijk, GRID, pts), expected)
    two = sample_volume(np.c_[values, [np.nan, 6.0, 10.0]], ijk, GRID, pts[:3])
    np.testing.assert_allclose(two, [[2.0, np.nan], [4.0, 6.0], [6.0, (0.125 * 6 + 0.375 * 10) / 0.5]])
    depths = [pts[[0, 4]], pts[[1, 4]], pts[[6, 4]]]
    np.testing.assert_allclose(sample_depths(values, ijk, GRID, depths), [3.0, np.nan])


def test_nsd_volume_to_fsaverage_on_the_fake_transforms(nsd):
    from jnecore.atlas import nsd_volume_to_fsaverage

    tdir = nsd["root"] / "nsddata/ppdata/subj01/transforms"
    values = np.array([100.0 * i + 10 * j + k for i, j, k in BRAIN_IJK])  # 0 nowhere: i = 0 is outside
    out = nsd_volume_to_fsaverage(values, BRAIN_IJK, GRID, tdir)
    assert out.shape == (2 * NV,)
    # lh native 0: (121 + 171 + 221) / 3; it is the nearest native vertex of fsaverage 19, 20, 21
    # lh native 19 (fsaverage 0): (0,2,1) outside the brain, (0.5,2,1) -> 121 only, no third depth
    # rh native 0 (fsaverage rh 0): 342 at every depth
    expected = np.full(2 * NV, np.nan)
    expected[[19, 20, 21]] = 171.0
    expected[0] = 121.0
    expected[NV] = 342.0
    np.testing.assert_allclose(out, expected)
    both = nsd_volume_to_fsaverage(np.c_[values, -values], BRAIN_IJK, GRID, tdir)
    np.testing.assert_allclose(both, np.c_[expected, -expected])


def test_transform_readers_refuse_bad_files(tmp_path):
    from jnecore.atlas import read_layer_coords, read_white_to_fsaverage

    _mgh(tmp_path / "short.mgz", np.arange(1, 11))
    with pytest.raises(InputError, match="has 10 entries but the target mesh has 163842") as e:
        read_white_to_fsaverage(tmp_path / "short.mgz")
    assert e.value.source == str(tmp_path / "short.mgz")
    np.testing.assert_array_equal(read_white_to_fsaverage(tmp_path / "short.mgz", n_fsaverage=None), np.arange(10))
    _mgh(tmp_path / "zero.mgz", np.arange(10))
    with pytest.raises(InputError, match="positive integers"):
        read_white_to_fsaverage(tmp_path / "zero.mgz", n_fsaverage=None)
    with pytest.raises(InputError, match="points at native vertex 10 but the native map has 9"):
        read_white_to_fsaverage(tmp_path / "short.mgz", n_fsaverage=None, n_native=9)
    with pytest.raises(InputError, match="has 1 values per vertex: a volume-to-surface transform has 3"):
        read_layer_coords(tmp_path / "short.mgz")
    with pytest.raises(InputError, match=r"no such file \(an NSD transform: set `transforms_dir`\)"):
        read_layer_coords(tmp_path / "none.mgz")
    _mgh(tmp_path / "coords.mgz", np.array([[1, 2, 3], [9999, 9999, 9999], [2.5, 1, 1]]))
    np.testing.assert_allclose(read_layer_coords(tmp_path / "coords.mgz"), [[0, 1, 2], [np.nan] * 3, [1.5, 0, 0]])


# ----------------------------------------------------------------- the stages of prepare_nsd, one by one


def _paths(nsd, **kw):
    from jnecore.nsd import resolve_paths

    return resolve_paths(nsd["root"], 1, **kw)


def test_resolve_paths_follow_nsd_layout_and_name_parameters(nsd, tmp_path):
    from jnecore.nsd import resolve_paths

    root = nsd["root"]
    p = _paths(nsd)
    betas = root / "nsddata_betas/ppdata/subj01/fsaverage/betas_fithrf_GLMdenoise_RR"
    assert p.betas("rh", 2) == betas / "rh.betas_session02.mgh"
    assert p.roi("lh", "HCP_MMP1") == root / "nsddata/freesurfer/fsaverage/label/lh.HCP_MMP1.mgz"
    assert p.ctab("nsdgeneral") == root / "nsddata/freesurfer/fsaverage/label/nsdgeneral.mgz.ctab"
    assert p.roi("rh", "floc-faces") == root / "nsddata/freesurfer/subj01/label/rh.floc-faces.mgz"
    assert p.ctab("prf-visualrois") == root / "nsddata/freesurfer/subj01/label/prf-visualrois.mgz.ctab"
    assert p.transform("lh") == root / "nsddata/ppdata/subj01/transforms/lh.white-to-fsaverage.mgz"
    v = _paths(nsd, space="func1pt8mm")
    assert v.session_files(3) == [root / "nsddata_betas/ppdata/subj01/func1pt8mm/betas_fithrf_GLMdenoise_RR/"
                                         "betas_session03.nii.gz"]
    assert v.brainmask == root / "nsddata/ppdata/subj01/func1pt8mm/brainmask.nii.gz"
    assert v.roi_volume("HCP_MMP1") == root / "nsddata/ppdata/subj01/func1pt8mm/roi/HCP_MMP1.nii.gz"
    assert v.volume_ctab("HCP_MMP1") == root / "nsddata/freesurfer/fsaverage/label/HCP_MMP1.mgz.ctab"
    assert v.volume_ctab("prf-visualrois") == root / "nsddata/freesurfer/subj01/label/prf-visualrois.mgz.ctab"
    assert _paths(nsd, keep="all", roi_sets=()).roi_sets == ()  # no ROI sets, not the default ones
    assert resolve_paths(None, "subj03", keep="all", betas_dir=tmp_path, expdesign=tmp_path / "d.mat",
                         roi_sets=()).label_dir is None
    for kw, source, needle in [
        (dict(keep="some"), "keep", "unknown value 'some'"),
        (dict(roi_sets=()), "keep", "'visual' needs ROI sets: give `roi_sets`"),
        (dict(trials_per_session=0), "trials_per_session", "must be >= 1"),
        (dict(subject="x9"), "subject", "expected a subject number"),
        (dict(space="mni"), "space", "unknown value 'mni'"),
        (dict(root=None), "betas_dir", "is required without `root`"),
        (dict(root=None, betas_dir=tmp_path), "expdesign", "is required without `root`"),
        (dict(root=None, betas_dir=tmp_path, expdesign=tmp_path), "fsaverage_label_dir", "for ROI set 'HCP_MMP1'"),
        (dict(root=None, betas_dir=tmp_path, expdesign=tmp_path, roi_sets=["floc-faces"]), "label_dir",
         "is required without `root`"),
        (dict(root=None, betas_dir=tmp_path, expdesign=tmp_path, space="func1pt8mm"), "brainmask", "required"),
    ]:
        kw = {"root": nsd["root"], "subject": 1, **kw}
        with pytest.raises(InputError) as info:
            resolve_paths(kw.pop("root"), kw.pop("subject"), **kw)
        assert info.value.source == source and needle in info.value.problem and "--" not in str(info.value)


def test_read_design_and_plan_sessions(nsd):
    from jnecore.nsd import plan_sessions, read_design, session_images

    paths, warnings = _paths(nsd), []
    design = read_design(paths, warnings)
    np.testing.assert_array_equal(design.images_of_trial, SUBJ_IMAGES[nsd["order"] - 1] - 1)
    np.testing.assert_array_equal(design.shared, np.sort(SHARED - 1))
    assert list(design.stim_info["nsdId"]) == list(SUBJ_IMAGES - 1)
    assert len(warnings) == 1 and "shared1000 images differ from sharedix" in warnings[0]  # 60000 is in sharedix only

    layout = plan_sessions(paths, len(design.images_of_trial), None, None, warnings)
    assert (layout.sessions, layout.trials_per_session, layout.n_vertices, layout.space) == ([1, 2], T, NV, "fsaverage")
    np.testing.assert_array_equal(layout.trials(2), np.arange(T, 2 * T))
    np.testing.assert_array_equal(session_images(design.images_of_trial, layout), np.unique(SUBJ_IMAGES - 1))
    one = plan_sessions(paths, len(design.images_of_trial), [2], None)
    np.testing.assert_array_equal(session_images(design.images_of_trial, one), np.unique(nsd["raw"][2][0]))
    vol = plan_sessions(_paths(nsd, space="func1pt8mm"), len(design.images_of_trial))
    assert (vol.space, vol.n_vertices, vol.grid.shape) == ("volume", 45, GRID)
    np.testing.assert_array_equal(vol.grid.ijk, BRAIN_IJK)
    for args, needle in [(([3], None), "lh.betas_session03.mgh: no such file"),
                         (([1], 7), "has 10 trials but sessions are assumed to have 7")]:
        with pytest.raises(InputError, match=needle):
            plan_sessions(paths, len(design.images_of_trial), *args)
    with pytest.raises(InputError, match="masterordering has 15 trials but session 2 of 10 trials needs 20") as info:
        plan_sessions(paths, 15, [1, 2], None)
    assert info.value.source == str(paths.expdesign)


def test_read_rois_choose_vertices_and_labels(nsd):
    from jnecore.nsd import choose_vertices, read_rois, roi_labels

    warnings = []
    roi, counts = read_rois(_paths(nsd, roi_sets=["HCP_MMP1", "prf-visualrois"]), NV, warnings)
    assert roi.shape == (2 * NV,)
    assert list(roi[:25]) == ["V1"] * 10 + ["V2"] * 5 + ["FFC"] * 5 + ["4"] * 5 and roi[25] is None
    assert list(roi[NV:NV + 13]) == ["V1"] * 10 + ["4"] * 3 and roi[NV + 13] is None
    # prf-visualrois through the transform labels fsaverage 5..21, all already labelled by HCP_MMP1 (which wins)
    assert counts == {"lh.HCP_MMP1": 25, "rh.HCP_MMP1": 13, "lh.prf-visualrois": 17, "rh.prf-visualrois": 0}
    assert len(warnings) == 1 and "lh.prf-visualrois.mgz: 17 vertices already have an ROI" in warnings[0]
    np.testing.assert_array_equal(choose_vertices(roi, "visual"), np.r_[np.arange(20), NV + np.arange(10)])
    np.testing.assert_array_equal(choose_vertices(roi, "rois"), np.r_[np.arange(25), NV + np.arange(13)])
    np.testing.assert_array_equal(choose_vertices(roi, "all"), np.arange(2 * NV))
    labels = roi_labels(roi, np.array([0, 12, 30, NV]))
    assert list(labels) == ["V1", "V2", "unlabelled", "V1"]
    none, none_counts = read_rois(_paths(nsd, keep="all", roi_sets=()), NV, [])
    assert none_counts == {} and all(r is None for r in none[::1000])
    with pytest.raises(InputError, match="label no vertex") as info:
        choose_vertices(none, "rois", "LABELS")
    assert info.value.source == "LABELS"
    general, _ = read_rois(_paths(nsd, roi_sets=["nsdgeneral"]), NV, [])
    with pytest.raises(InputError, match="label no vertex of a visual area"):
        choose_vertices(general, "visual")


def test_read_betas_matches_direct_zscored_sums_and_stops(nsd):
    from jnecore.cancel import clear_stop, request_stop
    from jnecore.nsd import plan_sessions, read_betas, read_design

    paths = _paths(nsd)
    design = read_design(paths, [])
    layout = plan_sessions(paths, len(design.images_of_trial))
    keep_idx = np.r_[KEEP_LH, NV + KEEP_RH, [25, NV + 30]]  # two vertices that are 0 in every session
    warnings = []
    sums = read_betas(paths, layout, design.images_of_trial, keep_idx, progress=False, warnings=warnings)
    ids, mean, acc = _expected(nsd["raw"])
    np.testing.assert_array_equal(sums.image_ids, ids)
    np.testing.assert_array_equal(sums.n_trials, [len(acc[i]) for i in ids])
    np.testing.assert_allclose(sums.mean()[:, :30], mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(sums.total_sq[:, :30], [np.sum(np.square(acc[i]), 0) for i in ids], rtol=1e-4, atol=1e-5)
    assert np.all(sums.total[:, 30:] == 0) and sums.constant == 4  # 2 vertices x 2 sessions
    assert warnings == ["4 vertex-sessions were constant within a session (set to 0 after z-scoring)"]
    request_stop()
    try:
        with pytest.raises(KeyboardInterrupt):
            read_betas(paths, plan_sessions(paths, len(design.images_of_trial)), design.images_of_trial, keep_idx,
                       progress=False)
    finally:
        clear_stop()


def test_repeat_noise_ceiling_stage(nsd):
    from jnecore.nsd import RepeatSums, repeat_noise_ceiling, shared_rows

    ids, mean, acc = _expected(nsd["raw"])
    total = np.stack([np.sum(acc[i], 0) for i in ids]).astype(np.float32)
    total_sq = np.stack([np.sum(np.square(acc[i]), 0) for i in ids]).astype(np.float32)
    counts = np.array([len(acc[i]) for i in ids])
    sums = RepeatSums(ids, total, total_sq, counts)
    warnings = []
    rows = shared_rows(ids, SHARED - 1, warnings)
    np.testing.assert_array_equal(ids[rows], np.sort(SUBJ_IMAGES[:6] - 1))
    assert warnings == ["6 of the 7 shared images were shown in the given sessions"]
    reps = np.stack([np.stack(acc[i]) for i in ids if len(acc[i]) == 2])
    s2 = reps.var(1, ddof=1).mean(0)
    ncsnr2 = np.maximum(1 - s2, 0) / s2
    np.testing.assert_allclose(repeat_noise_ceiling(sums, rows, warnings), 100 * ncsnr2 / (ncsnr2 + 0.5), rtol=1e-5)
    # test rows with 1 and 2 trials: mean(1/n) = 3/4
    mixed = np.r_[rows[:1], np.flatnonzero(counts == 1)[:1]]
    np.testing.assert_allclose(repeat_noise_ceiling(sums, mixed, []), 100 * ncsnr2 / (ncsnr2 + 0.75), rtol=1e-5)
    single = RepeatSums(ids, total, total_sq, np.ones_like(counts))
    assert repeat_noise_ceiling(single, rows, warnings) is None and "no noise ceiling" in warnings[-1]
    assert repeat_noise_ceiling(sums, rows[:0], warnings) is None and "no shared image" in warnings[-1]


def test_write_prepared_is_atomic(tmp_path, monkeypatch):
    from jnecore.nsd import RepeatSums, prepared_contents, write_prepared

    ids = np.array([3, 7, 9])
    sums = RepeatSums(ids, np.arange(6, dtype=np.float32).reshape(3, 2), np.zeros((3, 2), np.float32),
                      np.array([1, 2, 1]))
    contents = prepared_contents(sums, np.array([1]), np.array([0, 5]), np.array(["V1v", "unlabelled"]),
                                 np.array([7]), noise_ceiling=np.array([50.0, 10.0]),
                                 features=np.ones((3, 4)),
                                 stim_info=pd.DataFrame({"nsdId": [3, 7, 9], "cocoId": list("abc")}))
    assert "categories" not in contents and contents["features"][0] == "features.npy"
    out = write_prepared(tmp_path / "prep", contents, {"files": {}})
    np.testing.assert_allclose(np.load(out / "responses.npy"), [[0, 1], [1, 1.5], [4, 5]])
    info = pd.read_csv(out / "stimuli_info.csv")
    assert list(info["nsd73k"]) == [4, 8, 10] and list(info["shared"]) == [False, True, False]
    assert list(info["cocoId"]) == list("abc") and list(info["n_trials"]) == [1, 2, 1]
    assert pd.read_csv(out / "noise_ceiling.csv")["noise_ceiling"].tolist() == [50.0, 10.0]
    assert json.loads((out / "prepare.json").read_text()) == {"files": {}}

    def broken(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", broken)
    with pytest.raises(OSError):
        write_prepared(tmp_path / "prep2", contents, {})
    with pytest.raises(OSError):
        write_prepared(out, contents, {}, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prep"]  # no half-written folder, the old one kept
    np.testing.assert_allclose(np.load(out / "responses.npy")[0], [0, 1])


def test_cli_translates_parameter_names_to_flags(nsd, tmp_path, capsys):
    argv = ["nsd-prepare", "--subject", "1", "--out", str(tmp_path / "prep"), "--quiet"]
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == "error: --betas-dir: is required without --nsd-root"
    assert main(argv + ["--nsd-root", str(nsd["root"]), "--roi-sets", "nosuchset"]) == 2
    err = capsys.readouterr().err
    assert "no such file (ROI set 'nosuchset' on the subject's native surface: set --label-dir / --roi-pattern, " \
           "or --roi-sets)" in err
    assert main(argv + ["--nsd-root", str(nsd["root"]), "--roi-sets", "none"]) == 2
    assert capsys.readouterr().err.strip() == "error: --keep: 'visual' needs ROI sets: give --roi-sets or --keep all"


def test_volume_bundle_is_drawn_through_the_nsd_transforms(nsd, tmp_path, monkeypatch):
    """A func1pt8mm bundle whose transforms folder exists goes to the surface through NSD's transforms
    (route "nsd"); the maps page draws exactly nsd_volume_to_fsaverage of the shown values, brought to
    fsaverage5 by cell means. Without the folder it falls back to tables."""
    from jnecore.atlas import fsaverage_to_fsaverage5, nsd_volume_to_fsaverage, surface_route

    prep, bundle = tmp_path / "prep", tmp_path / "bundles" / "vol"
    assert _prepare(nsd, prep, "--space", "func1pt8mm", "--features", str(nsd["root"] / "features73k.npy"),
                    "--roi-sets", "prf-visualrois", "HCP_MMP1") == 0
    assert _run(prep, bundle) == 0
    b = load_bundle(bundle)
    assert surface_route(b.manifest) == "nsd"
    gone = json.loads(json.dumps(b.manifest))
    gone["volume"]["nsd"]["transforms_dir"] = str(tmp_path / "elsewhere")
    assert surface_route(gone) is None
    assert surface_route(dict(gone, volume=dict(gone["volume"], space="mni"))) == "mni"

    pytest.importorskip("streamlit.testing.v1")
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("JNE_BUNDLE_ROOTS", str(bundle.parent))
    page = Path(__file__).resolve().parents[1] / "dashboard" / "pages" / "1_Cortical_maps.py"
    at = AppTest.from_file(str(page), default_timeout=180)
    at.run()
    at.selectbox(key="map_metric").select("R² nonlinear").run()
    at.checkbox(key="map_sig_only").uncheck().run()
    assert not at.exception and not at.error, [e.value for e in list(at.exception) + list(at.error)]
    from _viewer import viewer_figure

    custom = viewer_figure(at)[2]  # [vertex, value] of the shown (finite) vertices
    v = b.vertices
    expect = fsaverage_to_fsaverage5(nsd_volume_to_fsaverage(
        v["r2_nonlinear"].to_numpy(float), v[["voxel_i", "voxel_j", "voxel_k"]].to_numpy(), GRID,
        nsd["root"] / "nsddata/ppdata/subj01/transforms"))
    got = np.full(2 * 10242, np.nan)
    got[custom[:, 0].astype(int)] = custom[:, 1]
    assert np.isfinite(expect).sum() >= 3
    np.testing.assert_allclose(got, expect.astype(np.float32), rtol=1e-5, equal_nan=True)
    assert any("NSD transforms" in c.value for c in at.caption)
