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
  averaged trials). Sums are kept in float32 (the variances are formed from them in float64).
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
           "parse_sessions", "prepare_nsd", "ASSUMPTIONS", "resolve_paths", "NSDDesign", "read_design",
           "SessionLayout", "plan_sessions", "session_images", "read_rois", "choose_vertices", "roi_labels",
           "RepeatSums", "read_betas", "shared_rows", "repeat_noise_ceiling", "prepared_contents", "write_prepared"]

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
        raise InputError("subject", f"expected a subject number such as 1 or subj01, got {subject!r}")
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
    if roi_sets is not None:  # () = no ROI sets
        paths.roi_sets = tuple(roi_sets)
    for name in ("betas_dir", "expdesign"):
        if getattr(paths, name) is None:
            raise InputError(name, "is required without `root`")
    if paths.label_dir is None and paths.roi_sets:
        raise InputError("label_dir", "is required without `root` (or pass `roi_sets` none)")
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
        raise InputError("subject", f"{subject} is not in {path} (it has {subjectim.shape[0]} subjects)")
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
            raise InputError("sessions", f"expected numbers and ranges such as 1-3,5, got {spec!r}")
        a, b = int(m.group(1)), int(m.group(2) or m.group(1))
        if a < 1 or b < a:
            raise InputError("sessions", f"bad range {part!r}")
        out.extend(range(a, b + 1))
    if not out:
        raise InputError("sessions", "names no session")
    return sorted(dict.fromkeys(out))


def find_sessions(paths: NSDPaths) -> list:
    """Session numbers whose left-hemisphere betas file exists (the right one is checked later)."""
    if not paths.betas_dir.is_dir():
        raise InputError(paths.betas_dir, "no such directory (the betas folder: set `betas_dir` or `root`)")
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
                               "(`trials_per_session`)")
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


def read_rois(paths: NSDPaths, n: int, warnings: list) -> tuple:
    """The ROI maps of ``paths.roi_sets``, merged over sets (earlier sets win) and hemispheres.

    Parameters
    ----------
    paths : where the maps and their ctab files are
    n : vertices per hemisphere of the betas' mesh (every map must have n values)
    warnings : list that receives a line per overlap between sets

    Returns
    -------
    roi : (2n,) object array, left then right hemisphere: the ROI name of each vertex, None = no ROI
    counts : dict ``"<hemi>.<set>"`` -> number of vertices that set labels
    """
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
                raise InputError(f, f"no such file (ROI set {name!r}: set `label_dir` / `roi_pattern`, or `roi_sets`)")
            kind = "nifti" if str(f).lower().endswith((".nii", ".nii.gz")) else "mgh"
            values, _ = read_label_image(f, kind)
            if values.ndim != 1:
                raise InputError(f, f"is a volume of shape {values.shape}, not a surface label map")
            if len(values) != n:
                raise InputError(f, f"has {len(values)} vertices but the betas have {n} per hemisphere: it is on "
                                    "another surface (NSD's subject ROIs are on the native surface); give fsaverage "
                                    "versions (e.g. mapped with nsd_mapdata) via `label_dir` / `roi_pattern`")
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
            raise InputError(ids_spec, f"{spec} already has an id column: leave out `feature_ids`")
        keys = read_labels(ids_spec, n=len(mat))
        if len(keys) != len(mat):
            raise InputError(ids_spec, f"has {len(keys)} ids but {spec} has {len(mat)} feature rows")
    if keys is None:
        if len(mat) != 73000:
            raise InputError(spec, f"has {len(mat)} rows: give 73000 rows in 73k order, a table with an nsdId column, "
                                   "or `feature_ids` (the 0-based 73k id of each row)")
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
            raise InputError(spec, "is keyed by cocoId: the stimulus info csv (`stim_info`, with nsdId and cocoId) is needed")
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


def resolve_paths(root=None, subject=1, *, keep: str = "rois", trials_per_session: int | None = None,
                  **path_options) -> NSDPaths:
    """Check the options of :func:`prepare_nsd` and resolve its input paths (:func:`nsd_paths`).

    Raises :class:`InputError` naming the parameter (``keep``, ``trials_per_session``,
    ``subject``, ``betas_dir``...) before any file is read.
    """
    if keep not in ("rois", "all"):
        raise InputError("keep", f"unknown value {keep!r}: use one of rois, all")
    if trials_per_session is not None and trials_per_session < 1:
        raise InputError("trials_per_session", f"must be >= 1, got {trials_per_session}")
    paths = nsd_paths(root, subject, **path_options)
    if keep == "rois" and not paths.roi_sets:
        raise InputError("keep", "'rois' needs ROI sets: give `roi_sets` or `keep` all")
    return paths


@dataclass
class NSDDesign:
    """One subject's experimental design.

    images_of_trial : (n_experiment_trials,) int64, the 0-based 73k id shown on each trial
    shared : (n_shared,) int64, sorted 0-based 73k ids of the shared images (sharedix)
    stim_info : the stimulus info table (nsdId, cocoId, shared1000 when present), or None
    """

    images_of_trial: np.ndarray
    shared: np.ndarray
    stim_info: pd.DataFrame | None = None


def read_design(paths: NSDPaths, warnings: list) -> NSDDesign:
    """Read ``paths.expdesign`` (and ``paths.stim_info`` when it exists) into an :class:`NSDDesign`;
    a shared1000 column that disagrees with sharedix adds a line to ``warnings``."""
    design = read_expdesign(paths.expdesign)
    images_of_trial = trial_images(design, paths.subject, paths.expdesign)
    shared = np.unique(design["sharedix"] - 1)
    stim_info = _read_stim_info(paths.stim_info)
    if stim_info is not None and "shared1000" in stim_info:
        from_csv = np.sort(stim_info.loc[stim_info["shared1000"], "nsdId"].to_numpy())
        if len(from_csv) and not np.array_equal(from_csv, shared):
            warnings.append(f"{paths.stim_info.name}: its shared1000 images differ from sharedix in "
                            f"{paths.expdesign.name}; sharedix is used")
    return NSDDesign(images_of_trial=images_of_trial, shared=shared, stim_info=stim_info)


@dataclass
class SessionLayout:
    """The sessions to read and the shape of their betas.

    sessions : session numbers (1-based), in reading order
    trials_per_session : trials in every session's betas file
    n_vertices : vertices per hemisphere of the betas' mesh
    space : the mesh's name (e.g. "fsaverage"), or "none" for an unknown vertex count
    first_lh : (trials_per_session, n_vertices) betas of the first session's left hemisphere, read
        to learn the shapes and handed to :func:`read_betas` (which drops it) so it is read once
    """

    sessions: list
    trials_per_session: int
    n_vertices: int
    space: str
    first_lh: np.ndarray | None = field(default=None, repr=False)

    def trials(self, session: int | None = None) -> np.ndarray:
        """0-based experiment trial indices of ``session`` (default: of every session, in order)."""
        if session is None:
            return np.concatenate([self.trials(s) for s in self.sessions])
        return (session - 1) * self.trials_per_session + np.arange(self.trials_per_session)


def plan_sessions(paths: NSDPaths, n_experiment_trials: int, sessions=None, trials_per_session: int | None = None,
                  warnings: list | None = None) -> SessionLayout:
    """Check the requested sessions against the betas folder and the design; learn the mesh size and
    the trials per session from the first session's left-hemisphere file.

    Parameters
    ----------
    paths : where the betas files are
    n_experiment_trials : length of the design's masterordering
    sessions : session numbers, or None for every session found
    trials_per_session : expected trials per session (default: the first file's count)
    warnings : list that receives a line when the mesh size is not a known space
    """
    from .io._inputs import MESH_SIZES

    available = find_sessions(paths)
    sessions = list(sessions) if sessions else available
    missing = [s for s in sessions if s not in available]
    if missing:
        raise InputError(paths.betas("lh", missing[0]), "no such file (a betas file of a requested session)")
    first = _read_session(paths.betas("lh", sessions[0]), None, trials_per_session)
    T, n = int(trials_per_session or first.shape[0]), first.shape[1]
    space = {v: k for k, v in MESH_SIZES.items()}.get(n, "none")
    if space == "none" and warnings is not None:
        warnings.append(f"the betas have {n} vertices per hemisphere, not a known mesh: space 'none'")
    last_trial = max(sessions) * T
    if last_trial > n_experiment_trials:
        raise InputError(paths.expdesign, f"masterordering has {n_experiment_trials} trials but session "
                                          f"{max(sessions)} of {T} trials needs {last_trial}")
    return SessionLayout(sessions=sessions, trials_per_session=T, n_vertices=n, space=space, first_lh=first)


def session_images(images_of_trial: np.ndarray, layout: SessionLayout) -> np.ndarray:
    """(n_images,) sorted 0-based 73k ids of the images shown in ``layout``'s sessions: the rows of
    the prepared responses."""
    return np.unique(images_of_trial[layout.trials()])


def choose_vertices(roi: np.ndarray, keep: str, source=None) -> np.ndarray:
    """(V,) int64 indices into ``roi`` (2n,), left then right: the labelled vertices (``keep="rois"``)
    or all of them (``"all"``). ``source`` (the label folder) is named when none is labelled."""
    if keep == "all":
        return np.arange(len(roi))
    if keep != "rois":
        raise InputError("keep", f"unknown value {keep!r}: use one of rois, all")
    idx = np.flatnonzero(roi != None)  # noqa: E711
    if not len(idx):
        raise InputError(source or "roi_sets", "the ROI maps label no vertex: nothing to keep (use `keep` all?)")
    return idx


def roi_labels(roi: np.ndarray, keep_idx: np.ndarray) -> np.ndarray:
    """(V,) str ROI names of the kept vertices, "unlabelled" where none."""
    from .io._inputs import UNLABELLED

    return np.asarray([UNLABELLED if r is None else r for r in roi[keep_idx]], dtype=str)


@dataclass
class RepeatSums:
    """Per-image sums of the z-scored trials over the kept vertices (float32, as accumulated).

    image_ids : (N,) int64 sorted 0-based 73k ids (the rows)
    total, total_sq : (N, V) float32 sums of the trials and of their squares
    n_trials : (N,) int64 trials per image
    constant : vertex-sessions that were constant within their session (set to 0)
    """

    image_ids: np.ndarray
    total: np.ndarray
    total_sq: np.ndarray
    n_trials: np.ndarray
    constant: int = 0

    def mean(self) -> np.ndarray:
        """(N, V) float32: each image's mean z-scored response."""
        return self.total / self.n_trials[:, None].astype(np.float32)


def _session_betas(paths: NSDPaths, layout: SessionLayout, session: int, keep_idx: np.ndarray) -> tuple:
    """(T, V) float32 z-scored betas of one session at ``keep_idx`` (both hemispheres), and the
    number of vertices constant within the session."""
    n, T = layout.n_vertices, layout.trials_per_session
    if session == layout.sessions[0] and layout.first_lh is not None:
        lh, layout.first_lh = layout.first_lh, None
    else:
        lh = _read_session(paths.betas("lh", session), n, T)
    rh = _read_session(paths.betas("rh", session), n, T)
    left = keep_idx < n
    Z = np.empty((T, len(keep_idx)), dtype=np.float32, order="F")  # one column per vertex, contiguous
    Z[:, left] = lh[:, keep_idx[left]]
    Z[:, ~left] = rh[:, keep_idx[~left] - n]
    return Z, _zscore_session(Z)


def read_betas(paths: NSDPaths, layout: SessionLayout, images_of_trial: np.ndarray, keep_idx: np.ndarray, *,
               progress: bool = True, warnings: list | None = None) -> RepeatSums:
    """Read the betas of ``layout``'s sessions at ``keep_idx``, z-score each session per vertex
    and sum the trials of each image.

    Parameters
    ----------
    paths, layout : from :func:`nsd_paths` / :func:`plan_sessions`
    images_of_trial : (n_experiment_trials,) 0-based 73k id per experiment trial
    keep_idx : (V,) vertex indices, left hemisphere 0..n-1 then right n..2n-1
    progress : show a progress bar over the sessions (stderr)
    warnings : list that receives a line when some vertex-sessions were constant

    A stop requested with :func:`jnecore.cancel.request_stop` (Ctrl-C in the CLI) is honoured
    before each session.
    """
    from scipy import sparse

    from .cancel import check_stop
    from .progress import progress_bar

    image_ids = session_images(images_of_trial, layout)
    N, V, T = len(image_ids), len(keep_idx), layout.trials_per_session
    sums = RepeatSums(image_ids, np.zeros((N, V), np.float32), np.zeros((N, V), np.float32), np.zeros(N, np.int64))
    for s in progress_bar(layout.sessions, desc="NSD sessions", enabled=progress, unit="session"):
        check_stop()
        Z, constant = _session_betas(paths, layout, s, keep_idx)
        sums.constant += constant
        rows = np.searchsorted(image_ids, images_of_trial[layout.trials(s)])
        A = sparse.csr_matrix((np.ones(T, dtype=np.float32), (rows, np.arange(T))), shape=(N, T))
        sums.total += A @ Z
        sums.total_sq += A @ (Z * Z)
        sums.n_trials += np.bincount(rows, minlength=N)
    layout.first_lh = None
    if sums.constant and warnings is not None:
        warnings.append(f"{sums.constant} vertex-sessions were constant within a session (set to 0 after z-scoring)")
    return sums


def shared_rows(image_ids: np.ndarray, shared: np.ndarray, warnings: list) -> np.ndarray:
    """(n_test,) row indices of the shared images among ``image_ids`` (the test set)."""
    rows = np.flatnonzero(np.isin(image_ids, shared))
    if len(rows) < len(shared):
        warnings.append(f"{len(rows)} of the {len(shared)} shared images were shown in the given sessions")
    return rows


def repeat_noise_ceiling(sums: RepeatSums, test_rows: np.ndarray, warnings: list) -> np.ndarray | None:
    """(V,) noise ceiling (percent) of the test images' averaged responses, from the repeats
    (:func:`jnecore.scoring.noise_ceiling` with each test image's trial count), or None (with a
    warning) when no image has two trials or there is no test image."""
    from .scoring import ncsnr_from_sums, noise_ceiling

    if not (sums.n_trials >= 2).any():
        warnings.append("no image has two or more trials in the given sessions: no noise ceiling")
        return None
    if not len(test_rows):
        warnings.append("no shared image was shown in the given sessions: no noise ceiling")
        return None
    snr = ncsnr_from_sums(sums.total, sums.total_sq, sums.n_trials)
    return noise_ceiling(ncsnr=snr, n=sums.n_trials[test_rows])


def prepared_contents(sums: RepeatSums, test_rows, keep_idx, roi, shared, *, noise_ceiling=None, features=None,
                      categories=None, stim_info=None) -> dict:
    """What the prepared folder holds: {key: (file name, content)}, content an array for .npy
    files and a DataFrame for .csv files; every key but ``stimuli_info`` goes in prepare.json's
    ``files`` (what ``jne run --prepared`` reads).

    sums : :class:`RepeatSums`; test_rows : (n_test,); keep_idx, roi : (V,); shared : (n_shared,)
    noise_ceiling : (V,); features : (N, D); categories : (N,) str; all optional
    """
    ids = sums.image_ids
    out = {"responses": ("responses.npy", sums.mean()),
           "stimulus_ids": ("stimulus_ids.csv", pd.DataFrame({"stimulus": ids})),
           "test_index": ("test_index.csv", pd.DataFrame({"test_index": test_rows})),
           "rois": ("rois.csv", pd.DataFrame({"roi": roi})),
           "vertices": ("vertices.csv", pd.DataFrame({"vertex": keep_idx.astype(np.int64)}))}
    if noise_ceiling is not None:
        out["noise_ceiling"] = ("noise_ceiling.csv", pd.DataFrame({"noise_ceiling": noise_ceiling}))
    if features is not None:
        out["features"] = ("features.npy", features)
    if categories is not None:
        out["categories"] = ("categories.csv", pd.DataFrame({"category": categories}))
    info = pd.DataFrame({"stimulus": ids, "nsd73k": ids + 1, "n_trials": sums.n_trials, "shared": np.isin(ids, shared)})
    if stim_info is not None and "cocoId" in stim_info:
        info["cocoId"] = info["stimulus"].map(dict(zip(stim_info["nsdId"], stim_info["cocoId"])))
    out["stimuli_info"] = ("stimuli_info.csv", info)
    return out


def write_prepared(out, contents: dict, summary: dict, *, overwrite: bool = False) -> Path:
    """Write ``contents`` (see :func:`prepared_contents`; arrays as float32 .npy, tables as .csv)
    and ``summary`` (prepare.json) into a temporary sibling of ``out``, then rename it into place:
    on any failure nothing is left behind and an existing ``out`` is untouched."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        for name, value in contents.values():
            if name.endswith(".npy"):
                np.save(tmp / name, np.ascontiguousarray(value, dtype=np.float32), allow_pickle=False)
            else:
                value.to_csv(tmp / name, index=False)
        (tmp / "prepare.json").write_text(json.dumps(summary, indent=2))
        replace_dir(tmp, out, overwrite=overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _summary(out, paths: NSDPaths, layout: SessionLayout, keep: str, sums: RepeatSums, n_test: int, files: dict,
             roi_counts: dict, inputs: dict, warnings: list) -> dict:
    """prepare.json: what was done, from what, and the ``jne run`` command."""
    sources = {"root": paths.root, "betas_dir": paths.betas_dir, "betas_pattern": paths.betas_pattern,
               "expdesign": paths.expdesign, "stim_info": paths.stim_info, "label_dir": paths.label_dir,
               "roi_pattern": paths.roi_pattern, "ctab_pattern": paths.ctab_pattern, **inputs}
    return {
        "format": "jnecore.nsd-prepare", "subject": paths.subj, "space": layout.space, "files": files,
        "sessions": layout.sessions, "trials_per_session": layout.trials_per_session, "keep": keep,
        "roi_sets": list(paths.roi_sets),
        "counts": {"images": len(sums.image_ids), "test": int(n_test), "vertices": sums.total.shape[1],
                   "trials": int(sums.n_trials.sum()), "roi_vertices": roi_counts},
        "sources": {k: str(v) for k, v in sources.items() if v is not None},
        "assumptions": ASSUMPTIONS, "warnings": warnings,
        "jne_run": f"jne run --prepared {out} --out BUNDLE" + ("" if "features" in files else " --features FEATURES"),
    }


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
    progress : show a progress bar over the sessions
    path_options : betas_dir, betas_pattern, expdesign, stim_info, label_dir, roi_pattern,
        ctab_pattern, roi_sets (see :func:`nsd_paths`)

    Every input is checked (features and categories included) before the betas are read; a stop
    requested with :func:`jnecore.cancel.request_stop` is honoured between sessions.
    """
    from .cancel import check_stop

    out = Path(out)
    check_out(out, overwrite)
    paths = resolve_paths(root, subject, keep=keep, trials_per_session=trials_per_session, **path_options)
    warnings = []
    design = read_design(paths, warnings)
    layout = plan_sessions(paths, len(design.images_of_trial), sessions, trials_per_session, warnings)
    image_ids = session_images(design.images_of_trial, layout)
    feats = _align_features(features, feature_ids, image_ids) if features else None
    cats = _align_categories(categories, image_ids, design.stim_info) if categories else None
    roi, roi_counts = read_rois(paths, layout.n_vertices, warnings)
    keep_idx = choose_vertices(roi, keep, paths.label_dir)
    sums = read_betas(paths, layout, design.images_of_trial, keep_idx, progress=progress, warnings=warnings)
    test_rows = shared_rows(sums.image_ids, design.shared, warnings)
    nc = repeat_noise_ceiling(sums, test_rows, warnings)
    contents = prepared_contents(sums, test_rows, keep_idx, roi_labels(roi, keep_idx), design.shared,
                                 noise_ceiling=nc, features=feats, categories=cats, stim_info=design.stim_info)
    files = {k: name for k, (name, _) in contents.items() if k != "stimuli_info"}
    inputs = {"features": features, "feature_ids": feature_ids, "categories": categories}
    summary = _summary(out, paths, layout, keep, sums, len(test_rows), files, roi_counts, inputs, warnings)
    check_stop()
    write_prepared(out, contents, summary, overwrite=overwrite)
    return out, summary
