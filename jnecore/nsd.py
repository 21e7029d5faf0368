"""Prepare one subject of the Natural Scenes Dataset (NSD) for ``jne run``: ``jne nsd-prepare``.

From NSD's published layout this assembles per-image averaged betas on fsaverage, the train/test
split (test = the shared images, NSD's ``shared1000``), ROI labels, stimulus ids and, when given,
features and categories aligned to those ids; it writes plain files that ``jne run`` reads
(``jne run --prepared OUT --out BUNDLE``).

Assumptions (the real dataset could not be checked here; every path is an option)
---------------------------------------------------------------------------------
Layout, relative to ``--nsd-root`` (``subjXX`` = ``subj`` + two-digit subject number):

- betas: ``nsddata_betas/ppdata/subjXX/fsaverage/betas_fithrf_GLMdenoise_RR/{lh,rh}.betas_sessionNN.mgh``
  (``--betas-dir``, ``--betas-pattern`` with ``{hemi}`` and ``{session}``), FreeSurfer MGH
  surface overlays of shape (163842, 1, 1, n_trials): one column per trial, in presentation
  order within the session. Every session has the same number of trials (750 in NSD; taken
  from the first session file unless ``--trials-per-session`` is given).
- design: ``nsddata/experiments/nsd/nsd_expdesign.mat`` (``--expdesign``), a MATLAB v5 file
  (read with :func:`scipy.io.loadmat`; a v7.3 / HDF5 file is read with h5py) holding
  ``masterordering`` (1 x 30000: for each trial of the experiment, in order, a 1-based index
  into the subject's 10000 images), ``subjectim`` (8 x 10000: the 1-based 73k id of each
  subject's images) and ``sharedix`` (1 x 1000: the 1-based 73k ids of the images shown to all
  subjects). Trial ``j`` (0-based) of session ``s`` (1-based) is experiment trial
  ``(s - 1) * trials_per_session + j``.
- ROIs: ``nsddata/freesurfer/subjXX/label/{lh,rh}.<set>.mgz`` for the sets prf-visualrois,
  floc-faces, floc-places, floc-bodies, floc-words (``--label-dir``, ``--roi-pattern``,
  ``--roi-sets``), integer surface maps with one value per vertex of the betas' mesh, named by
  ``<set>.mgz.ctab`` in the same directory (lines ``<int> <name>``; 0 / "Unknown" and
  negative values = no ROI). NSD ships these sets on each subject's native surface; the betas
  here are on fsaverage, so the label maps must be fsaverage maps (163842 values): a map of
  another size is an error asking for fsaverage versions (e.g. made with NSD's
  ``nsd_mapdata``). Where sets overlap, the earlier set in ``--roi-sets`` wins.
- stimulus info: ``nsddata/experiments/nsd/nsd_stim_info_merged.csv`` (``--stim-info``,
  optional): columns ``nsdId`` (0-based 73k id), ``cocoId`` and ``shared1000``; used to map
  categories keyed by COCO id and to cross-check the shared images.

Processing:

- stimulus ids are 0-based 73k ids (NSD's ``nsdId``; the row of the image in
  ``nsd_stimuli.hdf5``), i.e. the 1-based ids of the .mat file minus one.
- each session's betas are z-scored per vertex across that session's trials (population std;
  a vertex constant within a session gets 0), as NSD recommends; this also removes any fixed
  scaling of the stored values (e.g. int16 percent signal change x 300).
- the responses of an image are the mean of its z-scored trials in the given sessions; rows are
  the images shown in those sessions, sorted by 73k id.
- test set: the images of ``sharedix`` among those rows (all 1000 with all 40 sessions).
- noise ceiling (percent, per vertex): s2 = the across-repeat variance (ddof=1) of the z-scored
  trials averaged over images with >= 2 trials, ncsnr = sqrt(max(1 - s2, 0)) / sqrt(s2), and
  NC = 100 ncsnr^2 / (ncsnr^2 + mean over test images of 1 / n_trials) (NSD's formula for
  averaged trials). Sums are kept in float32.
- vertices: those with an ROI in any set (``--keep rois``, default) or all vertices of both
  hemispheres (``--keep all``: n_images x 327684 floats, several GB for a full subject).
- features (``--features``): a table (.parquet / .csv) with an ``nsdId`` (or ``stimulus``)
  column keying its rows; or any array with ``--feature-ids`` (one 0-based 73k id per row); or
  an array of 73000 rows in 73k order. Every image needs a feature row.
- categories (``--categories``): a table with ``nsdId`` / ``stimulus`` and ``category``
  columns, or ``cocoId`` and ``category`` (mapped through the stimulus info), or one column of
  73000 labels in 73k order; e.g. COCO supercategories (one per image: choose e.g. the one
  covering the largest area).

Output (``--out``, written atomically): responses.npy (N, V) float32, features.npy (N, D),
stimulus_ids.csv, test_index.csv (row indices of the shared images), rois.csv, vertices.csv
(fsaverage vertex index, left then right), noise_ceiling.csv, categories.csv (when given),
stimuli_info.csv (stimulus, nsd73k (1-based), n_trials, shared, cocoId) and prepare.json (what
was done, with these assumptions and the ``jne run`` command).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ._atomic import check_out, replace_dir
from .validation import InputError

__all__ = ["DEFAULT_ROI_SETS", "NSDPaths", "nsd_paths", "read_expdesign", "trial_images", "find_sessions",
           "parse_sessions", "prepare_nsd", "ASSUMPTIONS"]

DEFAULT_ROI_SETS = ("prf-visualrois", "floc-faces", "floc-places", "floc-bodies", "floc-words")
ASSUMPTIONS = [
    "betas: {hemi}.betas_sessionNN.mgh surface overlays (n_vertices, 1, 1, n_trials), trials in presentation order",
    "all sessions have the same number of trials; trial j of session s is experiment trial (s-1)*trials_per_session + j",
    "nsd_expdesign.mat: masterordering (1-based index into subjectim's columns per trial), subjectim (subjects x 10000, "
    "1-based 73k ids), sharedix (1-based 73k ids of the shared images)",
    "stimulus ids are 0-based 73k ids (nsdId)",
    "betas z-scored per vertex within each session before averaging the trials of an image",
    "test set = the shared images (sharedix) among the images shown in the given sessions",
    "ROI maps: integer surface maps on the betas' mesh named by <set>.mgz.ctab; values <= 0 or 'Unknown' = no ROI; "
    "earlier sets win where sets overlap",
    "noise ceiling: NC = 100 ncsnr^2 / (ncsnr^2 + mean(1/n_trials) over test images)",
]


@dataclass
class NSDPaths:
    """Where nsd-prepare looks for each part (see the module docstring for the defaults)."""

    root: Path | None
    subject: int
    betas_dir: Path
    betas_pattern: str = "{hemi}.betas_session{session:02d}.mgh"
    expdesign: Path | None = None
    stim_info: Path | None = None
    label_dir: Path | None = None
    roi_pattern: str = "{hemi}.{name}.mgz"
    ctab_pattern: str = "{name}.mgz.ctab"
    roi_sets: tuple = DEFAULT_ROI_SETS
    extra: dict = field(default_factory=dict)

    def betas(self, hemi: str, session: int) -> Path:
        return self.betas_dir / self.betas_pattern.format(hemi=hemi, session=session, subj=self.subj)

    def roi(self, hemi: str, name: str) -> Path:
        return self.label_dir / self.roi_pattern.format(hemi=hemi, name=name, subj=self.subj)

    def ctab(self, name: str) -> Path:
        return self.label_dir / self.ctab_pattern.format(name=name, subj=self.subj)

    @property
    def subj(self) -> str:
        return f"subj{self.subject:02d}"


def parse_subject(subject) -> int:
    m = re.fullmatch(r"(?:subj)?0*(\d+)", str(subject).strip(), flags=re.I)
    if not m or not 1 <= int(m.group(1)) <= 99:
        raise InputError("--subject", f"expected a subject number such as 1 or subj01, got {subject!r}")
    return int(m.group(1))


def nsd_paths(root=None, subject=1, *, betas_dir=None, betas_pattern=None, expdesign=None, stim_info=None,
              label_dir=None, roi_pattern=None, ctab_pattern=None, roi_sets=None) -> NSDPaths:
    """The paths nsd-prepare uses, from ``root`` and the subject, each overridable."""
    subject = parse_subject(subject)
    subj = f"subj{subject:02d}"
    root = Path(root) if root else None

    def under(*parts):
        return root.joinpath(*parts) if root is not None else None

    paths = NSDPaths(
        root=root, subject=subject,
        betas_dir=Path(betas_dir) if betas_dir else under("nsddata_betas", "ppdata", subj, "fsaverage",
                                                          "betas_fithrf_GLMdenoise_RR"),
        expdesign=Path(expdesign) if expdesign else under("nsddata", "experiments", "nsd", "nsd_expdesign.mat"),
        stim_info=Path(stim_info) if stim_info else under("nsddata", "experiments", "nsd", "nsd_stim_info_merged.csv"),
        label_dir=Path(label_dir) if label_dir else under("nsddata", "freesurfer", subj, "label"),
    )
    if betas_pattern:
        paths.betas_pattern = betas_pattern
    if roi_pattern:
        paths.roi_pattern = roi_pattern
    if ctab_pattern:
        paths.ctab_pattern = ctab_pattern
    if roi_sets:
        paths.roi_sets = tuple(roi_sets)
    for name, value, opt in (("betas_dir", paths.betas_dir, "--betas-dir"), ("expdesign", paths.expdesign, "--expdesign")):
        if value is None:
            raise InputError(opt, "is required without --nsd-root")
    if paths.label_dir is None and paths.roi_sets:
        raise InputError("--label-dir", "is required without --nsd-root (or pass --roi-sets none)")
    return paths


def _mat_field(data: dict, name: str, path):
    if name not in data:
        raise InputError(path, f"has no variable {name!r} (it has {', '.join(sorted(k for k in data if not k.startswith('__')))})")
    a = np.asarray(data[name])
    if a.dtype.kind not in "biuf":
        raise InputError(path, f"variable {name!r} is not numeric ({a.dtype})")
    return a


def read_expdesign(path) -> dict:
    """masterordering (n_trials,), subjectim (n_subjects, n_images) and sharedix (n_shared,), all
    1-based int64 as stored, from ``nsd_expdesign.mat`` (MATLAB v5 via scipy; v7.3 via h5py)."""
    from .io._readers import check_file, sniff

    path = check_file(path, what="MATLAB file")
    kind = sniff(path)
    if kind == "hdf5":  # MATLAB v7.3: datasets are stored transposed
        import h5py

        try:
            with h5py.File(path, "r") as fh:
                data = {k: np.asarray(fh[k][()]).T for k in ("masterordering", "subjectim", "sharedix") if k in fh}
        except OSError as exc:
            raise InputError(path, f"not a readable MATLAB v7.3 file ({exc})") from None
    else:
        from scipy.io import loadmat

        with open(path, "rb") as fh:
            head = fh.read(128)
        if not head.startswith(b"MATLAB 5.0 MAT-file") and b"MATLAB" not in head[:20]:
            raise InputError(path, "is not a MATLAB .mat file (no MATLAB 5.0 header)")
        try:
            data = loadmat(str(path), variable_names=("masterordering", "subjectim", "sharedix"))
        except Exception as exc:  # scipy raises ValueError, TypeError, MatReadError...
            raise InputError(path, f"not a readable MATLAB file, truncated or damaged ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    out = {}
    for name in ("masterordering", "subjectim", "sharedix"):
        a = _mat_field(data, name, path)
        if name == "subjectim":
            a = np.atleast_2d(a)
        else:
            a = a.ravel()
        if not np.all(np.isfinite(a)) or np.any(a != np.round(a)) or (a.size and a.min() < 1):
            raise InputError(path, f"variable {name!r} must hold positive integers (1-based indices)")
        out[name] = a.astype(np.int64)
    if out["masterordering"].max() > out["subjectim"].shape[1]:
        raise InputError(path, f"masterordering points past subjectim's {out['subjectim'].shape[1]} columns")
    return out


def trial_images(design: dict, subject: int, path="nsd_expdesign.mat") -> np.ndarray:
    """The 0-based 73k id shown on each trial of the experiment for ``subject`` (1-based)."""
    subjectim = design["subjectim"]
    if not 1 <= subject <= subjectim.shape[0]:
        raise InputError("--subject", f"{subject} is not in {path} (it has {subjectim.shape[0]} subjects)")
    return subjectim[subject - 1, design["masterordering"] - 1] - 1


def parse_sessions(spec) -> list:
    """``"1-3,5"`` -> [1, 2, 3, 5]."""
    if spec is None:
        return None
    out = []
    for part in str(spec).replace(" ", "").split(","):
        if not part:
            continue
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise InputError("--sessions", f"expected numbers and ranges such as 1-3,5, got {spec!r}")
        a, b = int(m.group(1)), int(m.group(2) or m.group(1))
        if a < 1 or b < a:
            raise InputError("--sessions", f"bad range {part!r}")
        out.extend(range(a, b + 1))
    if not out:
        raise InputError("--sessions", "names no session")
    return sorted(dict.fromkeys(out))


def find_sessions(paths: NSDPaths) -> list:
    """Session numbers whose left-hemisphere betas file exists (the right one is checked later)."""
    if not paths.betas_dir.is_dir():
        raise InputError(paths.betas_dir, "no such directory (the betas folder: set --betas-dir or --nsd-root)")
    found = []
    for s in range(1, 100):
        if paths.betas("lh", s).is_file():
            found.append(s)
    if not found:
        raise InputError(paths.betas_dir, f"holds no betas files named like {paths.betas_pattern.format(hemi='lh', session=1, subj=paths.subj)}")
    return found


def _read_session(path, n_expected, trials_expected):
    from .io._neuro import read_mgh_data

    if not Path(path).is_file():
        raise InputError(path, "no such file (a betas file of a requested session)")
    what, data = read_mgh_data(path)
    if what != "surface":
        raise InputError(path, f"is a volume of shape {data.shape}: expected a surface overlay (n_vertices, 1, 1, n_trials)")
    if n_expected is not None and data.shape[1] != n_expected:
        raise InputError(path, f"has {data.shape[1]} vertices but the other betas files have {n_expected}")
    if trials_expected is not None and data.shape[0] != trials_expected:
        raise InputError(path, f"has {data.shape[0]} trials but sessions are assumed to have {trials_expected} "
                               "(--trials-per-session)")
    return data


def _zscore_session(Z):
    """Z-score (T, V) columns in place; returns the number of constant columns."""
    Z -= Z.mean(0, keepdims=True)
    sd = Z.std(0, keepdims=True)
    const = (sd == 0) | ~np.isfinite(sd)
    sd[const] = 1.0
    Z /= sd
    Z[:, const[0]] = 0.0
    Z[~np.isfinite(Z)] = 0.0
    return int(const.sum())


def _roi_maps(paths: NSDPaths, n: int, warnings: list) -> tuple:
    """Merged ROI names over both hemispheres (2n,) object (None = no ROI), and per-set counts."""
    from .io._inputs import _name
    from .io._neuro import read_label_image, read_lookup

    full = np.full(2 * n, None, dtype=object)
    counts = {}
    for name in paths.roi_sets:
        ctab = paths.ctab(name)
        table = read_lookup(ctab) if ctab.is_file() else None
        for hemi, off in (("lh", 0), ("rh", n)):
            f = paths.roi(hemi, name)
            if not f.is_file():
                raise InputError(f, f"no such file (ROI set {name!r}: set --label-dir / --roi-pattern, or --roi-sets)")
            kind = "nifti" if str(f).lower().endswith((".nii", ".nii.gz")) else "mgh"
            values, _ = read_label_image(f, kind)
            if values.ndim != 1:
                raise InputError(f, f"is a volume of shape {values.shape}, not a surface label map")
            if len(values) != n:
                raise InputError(f, f"has {len(values)} vertices but the betas have {n} per hemisphere: it is on "
                                    "another surface (NSD's subject ROIs are on the native surface); give fsaverage "
                                    "versions (e.g. mapped with nsd_mapdata) via --label-dir / --roi-pattern")
            names = _name(values, table, f, warnings)
            block = full[off:off + n]
            has = names != None  # noqa: E711
            clash = has & (block != None)  # noqa: E711
            if clash.any():
                warnings.append(f"{f.name}: {int(clash.sum())} vertices already have an ROI from an earlier set; kept")
            put = has & (block == None)  # noqa: E711
            block[put] = names[put]
            counts[f"{hemi}.{name}"] = int(has.sum())
    return full, counts


def _read_stim_info(path) -> pd.DataFrame | None:
    if path is None or not Path(path).is_file():
        return None
    from .io._readers import read_table

    df = read_table(path)
    cols = {str(c).lower(): c for c in df.columns}
    if "nsdid" not in cols:
        raise InputError(path, "has no nsdId column")
    out = pd.DataFrame({"nsdId": pd.to_numeric(df[cols["nsdid"]], errors="coerce")})
    if out["nsdId"].isna().any():
        raise InputError(path, "column nsdId must hold integers")
    out["nsdId"] = out["nsdId"].astype(np.int64)
    if "cocoid" in cols:
        out["cocoId"] = df[cols["cocoid"]].astype(str).str.strip()
    if "shared1000" in cols:
        out["shared1000"] = df[cols["shared1000"]].astype(str).str.strip().str.lower().isin(("true", "1", "1.0"))
    return out


def _align_features(spec, ids_spec, image_ids, what="features"):
    """(n_images, D) features for ``image_ids`` (0-based 73k ids)."""
    from .io._neuro import file_kind
    from .io._readers import read_array, read_labels, read_table_matrix, split_key
    from .validation import check_matrix

    keys = None
    if file_kind(spec) == "table" and split_key(spec)[1] is None:
        mat, keys = read_table_matrix(spec, key_columns=("nsdId", "nsd_id", "stimulus", "stimulus_id", "73k_id"))
    else:
        mat = read_array(spec)
    mat = check_matrix(mat, spec, name="features", min_rows=1)
    if ids_spec:
        if keys is not None:
            raise InputError(ids_spec, f"{spec} already has an id column: leave out --feature-ids")
        keys = read_labels(ids_spec, n=len(mat))
        if len(keys) != len(mat):
            raise InputError(ids_spec, f"has {len(keys)} ids but {spec} has {len(mat)} feature rows")
    if keys is None:
        if len(mat) != 73000:
            raise InputError(spec, f"has {len(mat)} rows: give 73000 rows in 73k order, a table with an nsdId column, "
                                   "or --feature-ids (the 0-based 73k id of each row)")
        return mat[image_ids]
    try:
        k = np.asarray([int(float(x)) for x in keys], dtype=np.int64)
    except ValueError:
        raise InputError(ids_spec or spec, "feature ids must be integer 73k ids (0-based nsdId)") from None
    if len(np.unique(k)) != len(k):
        raise InputError(ids_spec or spec, "repeats a 73k id")
    pos = pd.Series(np.arange(len(k)), index=k)
    missing = ~np.isin(image_ids, k)
    if missing.any():
        raise InputError(spec, f"has no {what} for {int(missing.sum())} of the subject's {len(image_ids)} images "
                               f"(e.g. nsdId {int(image_ids[missing][0])})")
    return mat[pos.loc[image_ids].to_numpy()]


def _align_categories(spec, image_ids, stim_info) -> np.ndarray:
    from .io._inputs import _norm_key
    from .io._readers import read_labels, read_table

    df = read_table(spec)
    if df.shape[1] == 1:
        labels = read_labels(spec, n=73000)
        if len(labels) != 73000:
            raise InputError(spec, f"has {len(labels)} categories: one column must give 73000 (73k order); "
                                   "otherwise give nsdId (or cocoId) and category columns")
        return labels[image_ids].astype(str)
    cols = {str(c).lower(): c for c in df.columns}
    cat = next((cols[c] for c in ("category", "supercategory", "label") if c in cols), None)
    if cat is None:
        raise InputError(spec, f"needs a category column (it has {', '.join(map(str, df.columns[:5]))})")
    values = df[cat].astype(str).str.strip().to_numpy()
    key = next((cols[c] for c in ("nsdid", "nsd_id", "stimulus", "stimulus_id") if c in cols), None)
    if key is not None:
        lut = dict(zip((_norm_key(x) for x in df[key]), values))
        wanted = [str(int(i)) for i in image_ids]
    elif "cocoid" in cols or "coco_id" in cols:
        if stim_info is None or "cocoId" not in stim_info:
            raise InputError(spec, "is keyed by cocoId: the stimulus info csv (--stim-info, with nsdId and cocoId) is needed")
        lut = dict(zip((_norm_key(x) for x in df[cols.get("cocoid", cols.get("coco_id"))]), values))
        coco = dict(zip(stim_info["nsdId"].to_numpy(), stim_info["cocoId"].map(_norm_key)))
        wanted = [coco.get(int(i), "") for i in image_ids]
    else:
        raise InputError(spec, "needs an nsdId (or stimulus, or cocoId) column and a category column")
    missing = [w for w in wanted if w not in lut]
    if missing:
        raise InputError(spec, f"has no category for {len(missing)} of the subject's {len(image_ids)} images "
                               f"(e.g. id {missing[0]!r})")
    return np.asarray([lut[w] for w in wanted], dtype=str)


def prepare_nsd(out, *, root=None, subject=1, sessions=None, features=None, feature_ids=None, categories=None,
                keep="rois", trials_per_session=None, overwrite=False, progress=True, **path_options) -> tuple:
    """Assemble one NSD subject for ``jne run`` (see the module docstring); return (out, summary).

    Parameters
    ----------
    out : directory to create (refused when it exists and is not empty, unless ``overwrite``)
    root : NSD root folder; subject : 1..8 or "subj01"
    sessions : list of session numbers, or None for every session found
    features : path of features (see the module docstring); feature_ids : path, optional
    categories : path, optional
    keep : "rois" (vertices with an ROI) or "all"
    trials_per_session : int, optional (default: the first session file's trial count)
    path_options : betas_dir, betas_pattern, expdesign, stim_info, label_dir, roi_pattern,
        ctab_pattern, roi_sets (see :func:`nsd_paths`)
    """
    from scipy import sparse

    from .io._inputs import MESH_SIZES, UNLABELLED
    from .progress import progress_bar

    out = Path(out)
    check_out(out, overwrite)
    if keep not in ("rois", "all"):
        raise InputError("--keep", f"unknown value {keep!r}: use one of rois, all")
    paths = nsd_paths(root, subject, **path_options)
    if keep == "rois" and not paths.roi_sets:
        raise InputError("--keep", "'rois' needs ROI sets: give --roi-sets or --keep all")
    warnings = []
    design = read_expdesign(paths.expdesign)
    images_of_trial = trial_images(design, paths.subject, paths.expdesign)
    shared = np.unique(design["sharedix"] - 1)
    stim_info = _read_stim_info(paths.stim_info)
    if stim_info is not None and "shared1000" in stim_info:
        from_csv = np.sort(stim_info.loc[stim_info["shared1000"], "nsdId"].to_numpy())
        if len(from_csv) and not np.array_equal(from_csv, shared):
            warnings.append(f"{paths.stim_info.name}: its shared1000 images differ from sharedix in "
                            f"{paths.expdesign.name}; sharedix is used")
    available = find_sessions(paths)
    sessions = list(sessions) if sessions else available
    missing = [s for s in sessions if s not in available]
    if missing:
        raise InputError(paths.betas("lh", missing[0]), "no such file (a betas file of a requested session)")

    # first session: mesh size and trials per session
    first = _read_session(paths.betas("lh", sessions[0]), None, trials_per_session)
    T = int(trials_per_session or first.shape[0])
    n = first.shape[1]
    space = {v: k for k, v in MESH_SIZES.items()}.get(n, "none")
    if space == "none":
        warnings.append(f"the betas have {n} vertices per hemisphere, not a known mesh: space 'none'")
    last_trial = max(sessions) * T
    if last_trial > len(images_of_trial):
        raise InputError(paths.expdesign, f"masterordering has {len(images_of_trial)} trials but session "
                                          f"{max(sessions)} of {T} trials needs {last_trial}")

    if paths.roi_sets:
        roi_full, roi_counts = _roi_maps(paths, n, warnings)
    else:
        roi_full, roi_counts = np.full(2 * n, None, dtype=object), {}
    if keep == "rois":
        keep_idx = np.flatnonzero(roi_full != None)  # noqa: E711
        if not len(keep_idx):
            raise InputError(paths.label_dir, "the ROI maps label no vertex: nothing to keep (use --keep all?)")
    else:
        keep_idx = np.arange(2 * n)
    lh_idx = keep_idx[keep_idx < n]
    rh_idx = keep_idx[keep_idx >= n] - n

    trials = np.concatenate([(s - 1) * T + np.arange(T) for s in sessions])
    image_ids = np.unique(images_of_trial[trials])
    row_of = {int(i): r for r, i in enumerate(image_ids)}
    n_img, V = len(image_ids), len(keep_idx)
    total = np.zeros((n_img, V), dtype=np.float32)
    total_sq = np.zeros((n_img, V), dtype=np.float32)
    n_trials = np.zeros(n_img, dtype=np.int64)
    const_cols = 0
    bar = progress_bar(sessions, desc="NSD sessions", enabled=progress, unit="session")
    for s in bar:
        lh = first if s == sessions[0] else _read_session(paths.betas("lh", s), n, T)
        rh = _read_session(paths.betas("rh", s), n, T)
        Z = np.concatenate([lh[:, lh_idx], rh[:, rh_idx]], axis=1).astype(np.float32)
        del lh, rh
        const_cols += _zscore_session(Z)
        rows = np.asarray([row_of[int(i)] for i in images_of_trial[(s - 1) * T + np.arange(T)]])
        A = sparse.csr_matrix((np.ones(T, dtype=np.float32), (rows, np.arange(T))), shape=(n_img, T))
        total += A @ Z
        total_sq += A @ (Z * Z)
        n_trials += np.bincount(rows, minlength=n_img)
    first = None
    if const_cols:
        warnings.append(f"{const_cols} vertex-sessions were constant within a session (set to 0 after z-scoring)")
    mean = total / n_trials[:, None].astype(np.float32)

    test_rows = np.flatnonzero(np.isin(image_ids, shared))
    if len(test_rows) < len(shared):
        warnings.append(f"{len(test_rows)} of the {len(shared)} shared images were shown in the given sessions")
    nc = None
    rep = n_trials >= 2
    if rep.any() and len(test_rows):
        with np.errstate(invalid="ignore", divide="ignore"):
            var = (total_sq[rep] - total[rep] ** 2 / n_trials[rep, None]) / (n_trials[rep, None] - 1)
            s2 = np.clip(var, 0, None).mean(0).astype(np.float64)
            ncsnr2 = np.maximum(1.0 - s2, 0.0) / s2
            inv_n = float(np.mean(1.0 / n_trials[test_rows]))
            nc = np.where(np.isposinf(ncsnr2), 100.0, 100.0 * ncsnr2 / (ncsnr2 + inv_n))
    else:
        warnings.append("no image has two or more trials in the given sessions: no noise ceiling")
    del total, total_sq

    feats = _align_features(features, feature_ids, image_ids) if features else None
    cats = _align_categories(categories, image_ids, stim_info) if categories else None
    roi = np.asarray([UNLABELLED if r is None else r for r in roi_full[keep_idx]], dtype=str)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        files = {"responses": "responses.npy", "stimulus_ids": "stimulus_ids.csv", "test_index": "test_index.csv",
                 "rois": "rois.csv", "vertices": "vertices.csv"}
        np.save(tmp / "responses.npy", np.ascontiguousarray(mean, dtype=np.float32), allow_pickle=False)
        pd.DataFrame({"stimulus": image_ids}).to_csv(tmp / "stimulus_ids.csv", index=False)
        pd.DataFrame({"test_index": test_rows}).to_csv(tmp / "test_index.csv", index=False)
        pd.DataFrame({"roi": roi}).to_csv(tmp / "rois.csv", index=False)
        pd.DataFrame({"vertex": keep_idx.astype(np.int64)}).to_csv(tmp / "vertices.csv", index=False)
        if nc is not None:
            pd.DataFrame({"noise_ceiling": nc}).to_csv(tmp / "noise_ceiling.csv", index=False)
            files["noise_ceiling"] = "noise_ceiling.csv"
        if feats is not None:
            np.save(tmp / "features.npy", np.ascontiguousarray(feats, dtype=np.float32), allow_pickle=False)
            files["features"] = "features.npy"
        if cats is not None:
            pd.DataFrame({"category": cats}).to_csv(tmp / "categories.csv", index=False)
            files["categories"] = "categories.csv"
        info = pd.DataFrame({"stimulus": image_ids, "nsd73k": image_ids + 1, "n_trials": n_trials,
                             "shared": np.isin(image_ids, shared)})
        if stim_info is not None and "cocoId" in stim_info:
            info["cocoId"] = info["stimulus"].map(dict(zip(stim_info["nsdId"], stim_info["cocoId"])))
        info.to_csv(tmp / "stimuli_info.csv", index=False)
        summary = {
            "format": "jnecore.nsd-prepare", "subject": paths.subj, "space": space, "files": files,
            "sessions": sessions, "trials_per_session": T, "keep": keep, "roi_sets": list(paths.roi_sets),
            "counts": {"images": n_img, "test": int(len(test_rows)), "vertices": V, "trials": int(n_trials.sum()),
                       "roi_vertices": roi_counts},
            "sources": {k: str(v) for k, v in (("root", paths.root), ("betas_dir", paths.betas_dir),
                                                ("betas_pattern", paths.betas_pattern), ("expdesign", paths.expdesign),
                                                ("stim_info", paths.stim_info), ("label_dir", paths.label_dir),
                                                ("roi_pattern", paths.roi_pattern), ("ctab_pattern", paths.ctab_pattern),
                                                ("features", features), ("feature_ids", feature_ids),
                                                ("categories", categories)) if v is not None},
            "assumptions": ASSUMPTIONS, "warnings": warnings,
            "jne_run": f"jne run --prepared {out} --out BUNDLE" + ("" if feats is not None else " --features FEATURES"),
        }
        (tmp / "prepare.json").write_text(json.dumps(summary, indent=2))
        replace_dir(tmp, out, overwrite=overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out, summary
