"""``jne nsd-prepare`` on a miniature fake NSD tree (real fsaverage vertex count, 2 sessions x 10
trials, 14 images of which 6 shared, ROI maps with NSD-style ctab files), checked against a direct
computation, then ``jne run --prepared`` on its output."""

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import scipy.io
import torch

from jnecore.bundle import load_bundle
from jnecore.cli import main
from jnecore.nsd import parse_sessions, read_expdesign, trial_images

NV = 163842
T = 10
SUBJ_IMAGES = np.array([101, 205, 307, 410, 512, 640, 777, 901, 1003, 2000, 3141, 5000, 70001, 72999])  # 1-based 73k
SHARED = np.r_[SUBJ_IMAGES[:6], 60000]  # one shared image this subject never saw in these sessions
KEEP_LH, KEEP_RH = np.arange(20), np.arange(10)


pytestmark = pytest.mark.usefixtures("one_thread")


def _features73k(d=4, seed=0):
    return np.random.default_rng(seed).normal(size=(73000, d)).astype(np.float32)


@pytest.fixture(scope="module")
def nsd(tmp_path_factory):
    """The fake NSD root and what went into it."""
    root = tmp_path_factory.mktemp("nsd")
    rng = np.random.default_rng(0)
    # trials: the 6 shared images twice, the 8 others once, shuffled over 2 sessions of 10 trials
    order = rng.permutation(np.r_[np.arange(1, 7), np.arange(1, 7), np.arange(7, 15)])  # 1-based into subjectim
    subjectim = np.zeros((8, len(SUBJ_IMAGES)), dtype=np.int64)
    for s in range(8):
        subjectim[s] = SUBJ_IMAGES if s == 0 else rng.permutation(SUBJ_IMAGES)
    exp = root / "nsddata" / "experiments" / "nsd"
    exp.mkdir(parents=True)
    scipy.io.savemat(exp / "nsd_expdesign.mat", {"masterordering": order[None].astype(float),
                                                  "subjectim": subjectim.astype(float),
                                                  "sharedix": SHARED[None].astype(float)})
    info = pd.DataFrame({"nsdId": SUBJ_IMAGES - 1, "cocoId": 500000 + SUBJ_IMAGES,
                         "shared1000": np.isin(SUBJ_IMAGES, SHARED)})
    info.to_csv(exp / "nsd_stim_info_merged.csv")
    # betas: a signal from the features in the kept vertices, per-session offset and scale
    feats = _features73k()
    W = rng.normal(size=(feats.shape[1], 30))
    betas_dir = root / "nsddata_betas" / "ppdata" / "subj01" / "fsaverage" / "betas_fithrf_GLMdenoise_RR"
    betas_dir.mkdir(parents=True)
    raw = {}
    for s in (1, 2):
        ids = SUBJ_IMAGES[order[(s - 1) * T: s * T] - 1] - 1
        sig = feats[ids] @ W + np.abs(feats[ids, :1]) + 0.3 * rng.normal(size=(T, 30))
        sig = sig * (300.0 if s == 2 else 1.0) + 5.0 * s
        for hemi, cols, keep in (("lh", slice(0, 20), KEEP_LH), ("rh", slice(20, 30), KEEP_RH)):
            full = np.zeros((NV, 1, 1, T), np.float32)
            full[keep, 0, 0, :] = sig[:, cols].T
            nib.save(nib.MGHImage(full, np.eye(4)), str(betas_dir / f"{hemi}.betas_session{s:02d}.mgh"))
        raw[s] = (ids, sig.astype(np.float32))
    # ROI maps (NSD style: integer .mgz + <set>.mgz.ctab)
    lab = root / "nsddata" / "freesurfer" / "subj01" / "label"
    lab.mkdir(parents=True)
    maps = {name: {"lh": np.zeros(NV), "rh": np.zeros(NV)} for name in
            ("prf-visualrois", "floc-faces", "floc-places", "floc-bodies", "floc-words")}
    maps["prf-visualrois"]["lh"][:10] = 1
    maps["prf-visualrois"]["lh"][10:15] = 7
    maps["floc-faces"]["lh"][12:20] = 2  # overlaps hV4 on 12-14: the earlier set wins
    maps["floc-places"]["rh"][:10] = 2
    ctabs = {"prf-visualrois": "0 Unknown\n1 V1v\n2 V1d\n3 V2v\n4 V2d\n5 V3v\n6 V3d\n7 hV4\n",
             "floc-faces": "0 Unknown\n1 OFA\n2 FFA-1\n3 FFA-2\n", "floc-places": "0 Unknown\n1 OPA\n2 PPA\n3 RSC\n",
             "floc-bodies": "0 Unknown\n1 EBA\n", "floc-words": "0 Unknown\n1 OWFA\n"}
    for name, hemis in maps.items():
        for hemi, values in hemis.items():
            nib.save(nib.MGHImage(values.reshape(NV, 1, 1).astype(np.float32), np.eye(4)), str(lab / f"{hemi}.{name}.mgz"))
        (lab / f"{name}.mgz.ctab").write_text(ctabs[name])
    np.save(root / "features73k.npy", feats)
    pd.DataFrame({"cocoId": 500000 + SUBJ_IMAGES, "category": np.where(SUBJ_IMAGES % 2 == 0, "animal", "vehicle")}
                 ).to_csv(root / "coco_cats.csv", index=False)
    return dict(root=root, order=order, raw=raw, feats=feats)


def _expected(nsd):
    """Direct computation: z-score each session per vertex, average the trials of each image."""
    ids = np.unique(SUBJ_IMAGES - 1)
    acc = {i: [] for i in ids}
    for s in (1, 2):
        img, sig = nsd["raw"][s]
        z = (sig - sig.mean(0)) / sig.std(0)
        for t, i in enumerate(img):
            acc[i].append(z[t])
    return ids, np.stack([np.mean(acc[i], 0) for i in ids]), acc


def _prepare(nsd, out, *extra):
    return main(["nsd-prepare", "--nsd-root", str(nsd["root"]), "--subject", "1", "--out", str(out), "--quiet",
                 *extra])


def test_expdesign_and_session_parsing(nsd):
    d = read_expdesign(nsd["root"] / "nsddata" / "experiments" / "nsd" / "nsd_expdesign.mat")
    assert d["masterordering"].shape == (20,) and d["subjectim"].shape == (8, 14)
    np.testing.assert_array_equal(trial_images(d, 1), SUBJ_IMAGES[nsd["order"] - 1] - 1)
    assert parse_sessions("1-3,5,2") == [1, 2, 3, 5]


def test_prepare_then_run(nsd, tmp_path, capsys):
    out = tmp_path / "prep"
    assert _prepare(nsd, out, "--features", str(nsd["root"] / "features73k.npy"),
                    "--categories", str(nsd["root"] / "coco_cats.csv")) == 0
    cap = capsys.readouterr()
    assert "wrote" in cap.out and "jne run --prepared" in cap.out
    assert "already have an ROI from an earlier set" in cap.err and "6 of the 7 shared images" in cap.err
    ids, mean, acc = _expected(nsd)
    Y = np.load(out / "responses.npy")
    assert Y.shape == (14, 30) and Y.dtype == np.float32
    np.testing.assert_allclose(Y, mean, rtol=1e-4, atol=1e-5)  # the x300 scale of session 2 is gone
    stim = pd.read_csv(out / "stimulus_ids.csv")["stimulus"].to_numpy()
    np.testing.assert_array_equal(stim, ids)
    test_rows = pd.read_csv(out / "test_index.csv")["test_index"].to_numpy()
    np.testing.assert_array_equal(stim[test_rows], np.sort(SUBJ_IMAGES[:6] - 1))
    rois = pd.read_csv(out / "rois.csv")["roi"].tolist()
    assert rois == ["V1v"] * 10 + ["hV4"] * 5 + ["FFA-1"] * 5 + ["PPA"] * 10
    verts = pd.read_csv(out / "vertices.csv")["vertex"].to_numpy()
    np.testing.assert_array_equal(verts, np.r_[KEEP_LH, NV + KEEP_RH])
    np.testing.assert_array_equal(np.load(out / "features.npy"), nsd["feats"][ids])
    cats = pd.read_csv(out / "categories.csv")["category"].to_numpy()
    np.testing.assert_array_equal(cats, np.where((ids + 1) % 2 == 0, "animal", "vehicle"))
    # noise ceiling from the repeats: s2 = mean over repeated images of the across-repeat variance
    reps = np.stack([np.stack(acc[i]) for i in ids if len(acc[i]) == 2])
    s2 = reps.var(1, ddof=1).mean(0)
    ncsnr2 = np.maximum(1 - s2, 0) / s2
    nc = 100 * ncsnr2 / (ncsnr2 + 0.5)
    np.testing.assert_allclose(pd.read_csv(out / "noise_ceiling.csv")["noise_ceiling"], nc, rtol=1e-4)
    info = json.loads((out / "prepare.json").read_text())
    assert info["space"] == "fsaverage" and info["sessions"] == [1, 2] and info["trials_per_session"] == T
    assert info["counts"]["test"] == 6 and info["assumptions"]

    bundle = tmp_path / "bundle"
    assert main(["run", "--prepared", str(out), "--out", str(bundle), "--hidden", "16", "--max-epochs", "30",
                 "--n-boot", "50", "--quiet", "--device", "cpu"]) == 0
    b = load_bundle(bundle)
    assert b.space == "fsaverage"
    v = b.vertices
    np.testing.assert_array_equal(v["vertex"], verts)
    assert list(v["hemi"]) == ["left"] * 20 + ["right"] * 10 and v["roi"].tolist() == rois
    assert set(v["level"]) == {"primary", "intermediate", "higher"}
    np.testing.assert_allclose(v["noise_ceiling"], nc, rtol=1e-4)
    assert sorted(b.test_stimuli["stimulus"].astype(int)) == sorted(SUBJ_IMAGES[:6] - 1)
    assert set(b.stimuli["category"]) == {"animal", "vehicle"}
    assert b.manifest["sources"]["prepared"] == str(out)


def test_prepare_with_keyed_features_one_session_and_all_vertices(nsd, tmp_path):
    ids = np.unique(SUBJ_IMAGES - 1)
    table = pd.DataFrame(nsd["feats"][ids], columns=[f"f{i}" for i in range(4)])
    table.insert(0, "nsdId", ids)
    table.sample(frac=1.0, random_state=0).to_parquet(tmp_path / "feats.parquet")
    out = tmp_path / "prep"
    assert _prepare(nsd, out, "--features", str(tmp_path / "feats.parquet"), "--sessions", "1", "--keep", "all",
                    "--roi-sets", "prf-visualrois") == 0
    Y = np.load(out / "responses.npy")
    s1_ids = np.unique(nsd["raw"][1][0])
    assert Y.shape == (len(s1_ids), 2 * NV)
    np.testing.assert_array_equal(np.load(out / "features.npy"), nsd["feats"][s1_ids])
    rois = pd.read_csv(out / "rois.csv", keep_default_na=False)["roi"]
    assert (rois[:10] == "V1v").all() and (rois[20:] == "unlabelled").all()
    assert not (out / "noise_ceiling.csv").exists() or len(pd.read_csv(out / "noise_ceiling.csv")) == 2 * NV


@pytest.mark.parametrize("extra, needle", [
    (["--features", "SHORT"], "has 5000 rows: give 73000 rows in 73k order, a table with an nsdId column, or --feature-ids"),
    (["--sessions", "3"], "lh.betas_session03.mgh: no such file"),
    (["--expdesign", "TEXT"], "is not a MATLAB .mat file"),
    (["--roi-pattern", "{hemi}.small.mgz"], "lh.small.mgz: has 500 vertices but the betas have 163842 per hemisphere"),
    (["--subject", "x9"], "--subject: expected a subject number such as 1 or subj01, got 'x9'"),
    (["--keep", "some"], "--keep: unknown value 'some': use one of rois, all"),
])
def test_prepare_errors(nsd, tmp_path, capsys, extra, needle):
    np.save(tmp_path / "short.npy", np.ones((5000, 4), np.float32))
    (tmp_path / "design.mat").write_text("masterordering = [1 2 3]\n")
    lab = nsd["root"] / "nsddata" / "freesurfer" / "subj01" / "label"
    for hemi in ("lh", "rh"):
        nib.save(nib.MGHImage(np.zeros((500, 1, 1), np.float32), np.eye(4)), str(lab / f"{hemi}.small.mgz"))
    extra = [str(tmp_path / "short.npy") if e == "SHORT" else str(tmp_path / "design.mat") if e == "TEXT" else e
             for e in extra]
    argv = ["nsd-prepare", "--nsd-root", str(nsd["root"]), "--out", str(tmp_path / "prep"), "--quiet"]
    if "--subject" not in extra:
        argv += ["--subject", "1"]
    if "--roi-pattern" in extra:
        argv += ["--roi-sets", "small"]
    assert main(argv + extra) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and needle in err and "\n" not in err
    assert not (tmp_path / "prep").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".prep")]
