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


# ----------------------------------------------------------------- the stages of prepare_nsd, one by one


def _paths(nsd, **kw):
    from jnecore.nsd import resolve_paths

    return resolve_paths(nsd["root"], 1, **kw)


def test_resolve_paths_names_parameters_not_flags(nsd, tmp_path):
    from jnecore.nsd import resolve_paths
    from jnecore.validation import InputError

    p = _paths(nsd)
    betas = nsd["root"] / "nsddata_betas/ppdata/subj01/fsaverage/betas_fithrf_GLMdenoise_RR"
    assert p.betas("rh", 2) == betas / "rh.betas_session02.mgh"
    assert p.roi("lh", "floc-faces").name == "lh.floc-faces.mgz" and p.subj == "subj01"
    assert _paths(nsd, keep="all", roi_sets=()).roi_sets == ()  # no ROI sets, not the default ones
    assert resolve_paths(None, "subj03", keep="all", betas_dir=tmp_path, expdesign=tmp_path / "d.mat",
                         roi_sets=()).label_dir is None
    for kw, source, needle in [
        (dict(keep="some"), "keep", "unknown value 'some'"),
        (dict(roi_sets=()), "keep", "'rois' needs ROI sets: give `roi_sets`"),
        (dict(trials_per_session=0), "trials_per_session", "must be >= 1"),
        (dict(subject="x9"), "subject", "expected a subject number"),
        (dict(root=None), "betas_dir", "is required without `root`"),
        (dict(root=None, betas_dir=tmp_path), "expdesign", "is required without `root`"),
        (dict(root=None, betas_dir=tmp_path, expdesign=tmp_path), "label_dir", "is required without `root`"),
    ]:
        kw = {"root": nsd["root"], "subject": 1, **kw}
        with pytest.raises(InputError) as info:
            resolve_paths(kw.pop("root"), kw.pop("subject"), **kw)
        assert info.value.source == source and needle in info.value.problem and "--" not in str(info.value)


def test_read_design_and_plan_sessions(nsd):
    from jnecore.nsd import plan_sessions, read_design, session_images
    from jnecore.validation import InputError

    paths, warnings = _paths(nsd), []
    design = read_design(paths, warnings)
    np.testing.assert_array_equal(design.images_of_trial, SUBJ_IMAGES[nsd["order"] - 1] - 1)
    np.testing.assert_array_equal(design.shared, np.sort(SHARED - 1))
    assert list(design.stim_info["nsdId"]) == list(SUBJ_IMAGES - 1)
    assert len(warnings) == 1 and "shared1000 images differ from sharedix" in warnings[0]  # 60000 is in sharedix only

    layout = plan_sessions(paths, len(design.images_of_trial), None, None, warnings)
    assert (layout.sessions, layout.trials_per_session, layout.n_vertices, layout.space) == ([1, 2], T, NV, "fsaverage")
    assert layout.first_lh.shape == (T, NV)
    np.testing.assert_array_equal(layout.trials(2), np.arange(T, 2 * T))
    np.testing.assert_array_equal(session_images(design.images_of_trial, layout), np.unique(SUBJ_IMAGES - 1))
    one = plan_sessions(paths, len(design.images_of_trial), [2], None)
    np.testing.assert_array_equal(session_images(design.images_of_trial, one), np.unique(nsd["raw"][2][0]))
    for args, needle in [(([3], None), "lh.betas_session03.mgh: no such file"),
                         (([1], 7), "has 10 trials but sessions are assumed to have 7 (`trials_per_session`)")]:
        with pytest.raises(InputError, match=needle.replace("(", r"\(").replace(")", r"\)")):
            plan_sessions(paths, len(design.images_of_trial), *args)
    with pytest.raises(InputError, match="masterordering has 15 trials but session 2 of 10 trials needs 20") as info:
        plan_sessions(paths, 15, [1, 2], None)
    assert info.value.source == str(paths.expdesign)


def test_read_rois_choose_vertices_and_labels(nsd):
    from jnecore.nsd import choose_vertices, read_rois, roi_labels
    from jnecore.validation import InputError

    warnings = []
    roi, counts = read_rois(_paths(nsd), NV, warnings)
    assert roi.shape == (2 * NV,)
    assert list(roi[:20]) == ["V1v"] * 10 + ["hV4"] * 5 + ["FFA-1"] * 5 and roi[20] is None
    assert list(roi[NV:NV + 10]) == ["PPA"] * 10 and roi[NV + 10] is None
    assert counts["lh.prf-visualrois"] == 15 and counts["lh.floc-faces"] == 8 and counts["rh.floc-places"] == 10
    assert len(warnings) == 1 and "3 vertices already have an ROI from an earlier set" in warnings[0]
    idx = choose_vertices(roi, "rois")
    np.testing.assert_array_equal(idx, np.r_[KEEP_LH, NV + KEEP_RH])
    np.testing.assert_array_equal(choose_vertices(roi, "all"), np.arange(2 * NV))
    labels = roi_labels(roi, np.array([0, 12, 20, NV]))
    assert list(labels) == ["V1v", "hV4", "unlabelled", "PPA"]
    none, none_counts = read_rois(_paths(nsd, keep="all", roi_sets=()), NV, [])
    assert none_counts == {} and all(r is None for r in none[::1000])
    with pytest.raises(InputError, match="label no vertex") as info:
        choose_vertices(none, "rois", "LABELS")
    assert info.value.source == "LABELS"


def test_read_betas_matches_direct_zscored_sums_and_stops(nsd):
    from jnecore.cancel import clear_stop, request_stop
    from jnecore.nsd import plan_sessions, read_betas, read_design

    paths = _paths(nsd)
    design = read_design(paths, [])
    layout = plan_sessions(paths, len(design.images_of_trial))
    keep_idx = np.r_[KEEP_LH, NV + KEEP_RH, [25, NV + 30]]  # two vertices that are 0 in every session
    warnings = []
    sums = read_betas(paths, layout, design.images_of_trial, keep_idx, progress=False, warnings=warnings)
    assert layout.first_lh is None  # handed over, read once
    ids, mean, acc = _expected(nsd)
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

    ids, mean, acc = _expected(nsd)
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
    assert "no such file (ROI set 'nosuchset': set --label-dir / --roi-pattern, or --roi-sets)" in err
    assert main(argv + ["--nsd-root", str(nsd["root"]), "--roi-sets", "none"]) == 2
    assert capsys.readouterr().err.strip() == "error: --keep: 'rois' needs ROI sets: give --roi-sets or --keep all"
