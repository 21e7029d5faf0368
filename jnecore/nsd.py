"""Prepare one subject of the Natural Scenes Dataset (NSD) for ``jne run``: ``jne nsd-prepare``.

From NSD's published layout this assembles per-image averaged betas (on fsaverage, or as
func1pt8mm volume voxels), the train/test split (test = the shared images, NSD's
``shared1000``), ROI labels, stimulus ids and, when given, features and categories aligned to
those ids; it writes plain files that ``jne run`` reads (``jne run --prepared OUT --out BUNDLE``).

Layout (NSD as published; relative to ``root``, ``subjXX`` = ``subj`` + two-digit subject number)
----------------------------------------------------------------------------------------------
Every path is a parameter (CLI: the same name with dashes) that overrides the default.

- betas, ``space="fsaverage"`` (default):
  ``nsddata_betas/ppdata/subjXX/fsaverage/betas_fithrf_GLMdenoise_RR/{lh,rh}.betas_sessionNN.mgh``
  (``betas_dir``, ``betas_pattern`` with ``{hemi}`` and ``{session}``): FreeSurfer MGH surface
  overlays of shape (163842, 1, 1, n_trials), one column per trial in presentation order.
- betas, ``space="func1pt8mm"`` (the volume the paper models):
  ``nsddata_betas/ppdata/subjXX/func1pt8mm/betas_fithrf_GLMdenoise_RR/betas_sessionNN.nii.gz``,
  4-D NIfTI (X, Y, Z, n_trials) (NSD: int16, percent signal change x 300), read within
  ``nsddata/ppdata/subjXX/func1pt8mm/brainmask.nii.gz`` (``brainmask``).
- every session has the same number of trials (750 in NSD; taken from the first session file
  unless ``trials_per_session`` is given); by default every session found is used and a gap
  in the numbering is an error (``sessions`` picks a subset).
- design: ``nsddata/experiments/nsd/nsd_expdesign.mat`` (``expdesign``), MATLAB v5 (scipy) or
  v7.3 (h5py), holding ``masterordering`` (1 x 30000: for each trial of the experiment, a
  1-based index into the subject's 10000 images), ``subjectim`` (8 x 10000: the 1-based 73k id
  of each subject's images) and ``sharedix`` (1 x 1000: 1-based 73k ids of the shared images).
  Trial ``j`` (0-based) of session ``s`` (1-based) is experiment trial ``(s - 1) * T + j``.
- ROI sets (``roi_sets``; earlier sets win where sets overlap), integer maps named by
  ``<set>.mgz.ctab`` (lines ``<int> <name>``; 0 / "Unknown" and negative values = no ROI):

  - on fsaverage, the sets NSD ships there (:data:`FSAVERAGE_ROI_SETS`: streams, HCP_MMP1,
    Kastner2015, nsdgeneral): ``nsddata/freesurfer/fsaverage/label/{lh,rh}.<set>.mgz`` and
    ``<set>.mgz.ctab`` (``fsaverage_label_dir``, ``roi_pattern``, ``ctab_pattern``);
  - any other set (the subject ROIs, :data:`SUBJECT_ROI_SETS`: prf-visualrois, floc-faces,
    floc-places, floc-bodies, floc-words) from the subject's native surface,
    ``nsddata/freesurfer/subjXX/label/{lh,rh}.<set>.mgz`` and ``<set>.mgz.ctab``
    (``label_dir``), carried to fsaverage by nearest neighbour through NSD's
    ``nsddata/ppdata/subjXX/transforms/{lh,rh}.white-to-fsaverage.mgz`` (``transforms_dir``,
    ``transform_pattern``: per fsaverage vertex, the 1-based nearest native vertex). A map that
    already has one value per betas vertex is used as it is.
  - volumes (``space="func1pt8mm"``): ``nsddata/ppdata/subjXX/func1pt8mm/roi/<set>.nii.gz``
    (``roi_volume_dir``, ``roi_volume_pattern``) on the betas' grid, named by the first
    ``<set>.mgz.ctab`` found in that folder, ``label_dir`` or ``fsaverage_label_dir``.
- stimulus info: ``nsddata/experiments/nsd/nsd_stim_info_merged.csv`` (``stim_info``; optional
  unless given): columns ``nsdId`` (0-based 73k id), ``cocoId`` and ``shared1000``; used to
  map categories keyed by COCO id and to cross-check the shared images.

A missing file is one :class:`~jnecore.validation.InputError` naming the path expected and the
parameter that overrides it; so is a session missing, a trial count that disagrees and a
transform or map of the wrong length. Nothing is written then.

Processing
----------
- stimulus ids are 0-based 73k ids (NSD's ``nsdId``), the 1-based ids of the .mat file minus 1.
- each session's betas are z-scored per vertex (voxel) across that session's trials
  (population std; a vertex constant within a session gets 0), as NSD recommends; this also
  removes any fixed scaling of the stored values.
- the responses of an image are the mean of its z-scored trials in the given sessions; rows are
  the images shown in those sessions, sorted by 73k id. Test set: the images of ``sharedix``.
- noise ceiling (percent, per vertex): s2 = the across-repeat variance (ddof=1) of the z-scored
  trials averaged over images with >= 2 trials, ncsnr = sqrt(max(1 - s2, 0)) / sqrt(s2), and
  NC = 100 ncsnr^2 / (ncsnr^2 + mean over test images of 1 / n_trials).
- vertices (voxels) kept (``keep``): ``"visual"`` (default) those whose ROI has a visual
  hierarchy level (:func:`jnecore.atlas.roi_level`: the paper's HCP-MMP visual areas with the
  default ``HCP_MMP1`` set), ``"rois"`` those with any ROI, ``"all"`` every vertex of both
  hemispheres (every brain-mask voxel for volumes: the paper's whole-brain run).
- features (``features``): a table (.parquet / .csv) with an ``nsdId`` (or ``stimulus``) column;
  any array with ``feature_ids`` (one 0-based 73k id per row); or 73000 rows in 73k order.
- categories (``categories``): a table with ``nsdId`` / ``stimulus`` and ``category`` columns,
  or ``cocoId`` and ``category`` (through the stimulus info), or 73000 labels in 73k order.

Output (``out``, written atomically): responses.npy (N, V) float32, features.npy (N, D),
stimulus_ids.csv, test_index.csv, rois.csv, noise_ceiling.csv, categories.csv (when given),
stimuli_info.csv, prepare.json; on fsaverage vertices.csv (fsaverage vertex, left then right);
for volumes mask.nii.gz (the kept voxels; responses' columns are its voxels in C order) and a
``volume`` record in prepare.json (grid, affine, NSD transforms folder) from which ``jne run``
makes a volume bundle.
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

from ._atomic import check_out, replace_dir, tmp_prefix
from .validation import InputError

__all__ = ["DEFAULT_ROI_SETS", "FSAVERAGE_ROI_SETS", "SUBJECT_ROI_SETS", "NSD_SPACES", "KEEP_CHOICES", "NSDPaths",
           "nsd_paths", "read_expdesign", "trial_images", "find_sessions", "parse_sessions", "prepare_nsd",
           "ASSUMPTIONS", "resolve_paths", "NSDDesign", "read_design", "VolumeGrid", "read_brainmask",
           "SessionLayout", "plan_sessions", "session_images", "read_rois", "read_roi_volumes", "choose_vertices",
           "roi_labels", "RepeatSums", "read_betas", "shared_rows", "repeat_noise_ceiling", "prepared_contents",
           "write_prepared", "read_prepared_volume"]

#: ROI sets NSD ships on fsaverage (``nsddata/freesurfer/fsaverage/label``)
FSAVERAGE_ROI_SETS = ("streams", "HCP_MMP1", "Kastner2015", "nsdgeneral")
#: NSD's subject ROI sets (native surface, ``nsddata/freesurfer/subjXX/label``; volumes in func1pt8mm/roi)
SUBJECT_ROI_SETS = ("prf-visualrois", "floc-faces", "floc-places", "floc-bodies", "floc-words")
#: the paper defines its ROIs with HCP-MMP
DEFAULT_ROI_SETS = ("HCP_MMP1",)
#: NSD spaces nsd-prepare reads betas in
NSD_SPACES = ("fsaverage", "func1pt8mm")
KEEP_CHOICES = ("visual", "rois", "all")
ASSUMPTIONS = [
    "betas: {hemi}.betas_sessionNN.mgh surface overlays (n_vertices, 1, 1, n_trials) on fsaverage, or "
    "betas_sessionNN.nii.gz volumes (X, Y, Z, n_trials) in func1pt8mm; trials in presentation order",
    "all sessions have the same number of trials; trial j of session s is experiment trial (s-1)*trials_per_session + j",
    "nsd_expdesign.mat: masterordering (1-based index into subjectim's columns per trial), subjectim (subjects x 10000, "
    "1-based 73k ids), sharedix (1-based 73k ids of the shared images)",
    "stimulus ids are 0-based 73k ids (nsdId)",
    "betas z-scored per vertex within each session before averaging the trials of an image",
    "test set = the shared images (sharedix) among the images shown in the given sessions",
    "ROI maps: integer maps named by <set>.mgz.ctab; values <= 0 or 'Unknown' = no ROI; earlier sets win where sets "
    "overlap; native-surface maps carried to fsaverage through {hemi}.white-to-fsaverage.mgz (per fsaverage vertex, "
    "the 1-based nearest native vertex)",
    "noise ceiling: NC = 100 ncsnr^2 / (ncsnr^2 + mean(1/n_trials) over test images)",
]
_DIR_OPTIONS = ("betas_dir", "expdesign", "stim_info", "label_dir", "fsaverage_label_dir", "transforms_dir",
                "brainmask", "roi_volume_dir")
_PATTERN_OPTIONS = ("betas_pattern", "roi_pattern", "ctab_pattern", "transform_pattern", "roi_volume_pattern")


@dataclass
class NSDPaths:
    """Where nsd-prepare looks for each part (see the module docstring for the defaults)."""

    root: Path | None
    subject: int
    betas_dir: Path | None = None
    space: str = "fsaverage"
    betas_pattern: str = "{hemi}.betas_session{session:02d}.mgh"
    expdesign: Path | None = None
    stim_info: Path | None = None
    stim_info_given: bool = False
    label_dir: Path | None = None
    fsaverage_label_dir: Path | None = None
    transforms_dir: Path | None = None
    brainmask: Path | None = None
    roi_volume_dir: Path | None = None
    roi_pattern: str = "{hemi}.{name}.mgz"
    ctab_pattern: str = "{name}.mgz.ctab"
    transform_pattern: str = "{hemi}.white-to-fsaverage.mgz"
    roi_volume_pattern: str = "{name}.nii.gz"
    roi_sets: tuple = DEFAULT_ROI_SETS

    @property
    def subj(self) -> str:
        return f"subj{self.subject:02d}"

    @property
    def is_volume(self) -> bool:
        return self.space == "func1pt8mm"

    def betas(self, hemi: str, session: int) -> Path:
        return self.betas_dir / self.betas_pattern.format(hemi=hemi, session=session, subj=self.subj)

    def session_files(self, session: int) -> list:
        """The betas files of one session: [lh, rh] on a surface, [volume] in func1pt8mm."""
        return [self.betas("", session)] if self.is_volume else [self.betas(h, session) for h in ("lh", "rh")]

    def on_fsaverage(self, name: str) -> bool:
        """Whether ROI set ``name`` is read from the fsaverage label folder (else: the subject's)."""
        return name in FSAVERAGE_ROI_SETS

    def roi_option(self, name: str) -> str:
        """The parameter that sets the folder of ROI set ``name``."""
        return "fsaverage_label_dir" if self.on_fsaverage(name) else "label_dir"

    def roi(self, hemi: str, name: str) -> Path:
        folder = self.fsaverage_label_dir if self.on_fsaverage(name) else self.label_dir
        return folder / self.roi_pattern.format(hemi=hemi, name=name, subj=self.subj)

    def ctab(self, name: str) -> Path:
        folder = self.fsaverage_label_dir if self.on_fsaverage(name) else self.label_dir
        return folder / self.ctab_pattern.format(name=name, subj=self.subj)

    def transform(self, hemi: str) -> Path:
        return self.transforms_dir / self.transform_pattern.format(hemi=hemi, subj=self.subj)

    def roi_volume(self, name: str) -> Path:
        return self.roi_volume_dir / self.roi_volume_pattern.format(name=name, subj=self.subj)

    def volume_ctab(self, name: str) -> Path | None:
        """The first ``<set>.mgz.ctab`` in the ROI volume folder, the subject's or fsaverage's label
        folder; None when there is none."""
        name_ = self.ctab_pattern.format(name=name, subj=self.subj)
        for folder in (self.roi_volume_dir, self.label_dir, self.fsaverage_label_dir):
            if folder is not None and (Path(folder) / name_).is_file():
                return Path(folder) / name_
        return None


def parse_subject(subject) -> int:
    m = re.fullmatch(r"(?:subj)?0*(\d+)", str(subject).strip(), flags=re.I)
    if not m or not 1 <= int(m.group(1)) <= 99:
        raise InputError("subject", f"expected a subject number such as 1 or subj01, got {subject!r}")
    return int(m.group(1))


def _default_paths(root: Path | None, subj: str, space: str) -> dict:
    """NSD's published layout under ``root`` (empty without a root)."""
    if root is None:
        return {}
    nsddata, pp = root / "nsddata", root / "nsddata" / "ppdata" / subj
    return {"betas_dir": root / "nsddata_betas" / "ppdata" / subj / space / "betas_fithrf_GLMdenoise_RR",
            "expdesign": nsddata / "experiments" / "nsd" / "nsd_expdesign.mat",
            "stim_info": nsddata / "experiments" / "nsd" / "nsd_stim_info_merged.csv",
            "label_dir": nsddata / "freesurfer" / subj / "label",
            "fsaverage_label_dir": nsddata / "freesurfer" / "fsaverage" / "label",
            "transforms_dir": pp / "transforms",
            "brainmask": pp / "func1pt8mm" / "brainmask.nii.gz",
            "roi_volume_dir": pp / "func1pt8mm" / "roi"}


def _needed(paths: NSDPaths) -> list:
    """(parameter, why) of the paths this configuration cannot do without."""
    need = [("betas_dir", ""), ("expdesign", "")]
    if paths.is_volume:
        need.append(("brainmask", ""))
        if paths.roi_sets:
            need.append(("roi_volume_dir", " (for the ROI volumes, or `roi_sets` none)"))
        return need
    for name in paths.roi_sets:
        need.append((paths.roi_option(name), f" (for ROI set {name!r}, or `roi_sets` none)"))
    return need


def nsd_paths(root=None, subject=1, *, space: str = "fsaverage", roi_sets=None, **options) -> NSDPaths:
    """The paths nsd-prepare uses, from ``root``, the subject and the space, each overridable.

    Parameters
    ----------
    root : NSD root folder (holding nsddata/, nsddata_betas/), or None (then give the paths)
    subject : 1..8 or "subj01"
    space : "fsaverage" (surface betas) or "func1pt8mm" (volume betas)
    roi_sets : ROI set names, () for none, None for :data:`DEFAULT_ROI_SETS`
    options : any of betas_dir, expdesign, stim_info, label_dir, fsaverage_label_dir,
        transforms_dir, brainmask, roi_volume_dir (paths) and betas_pattern, roi_pattern,
        ctab_pattern, transform_pattern, roi_volume_pattern (format strings)
    """
    unknown = sorted(set(options) - set(_DIR_OPTIONS) - set(_PATTERN_OPTIONS))
    if unknown:
        raise TypeError(f"nsd_paths() got unexpected keyword argument(s) {', '.join(unknown)}")
    subject = parse_subject(subject)
    if space not in NSD_SPACES:
        raise InputError("space", f"unknown value {space!r}: use one of {', '.join(NSD_SPACES)}")
    root = Path(root) if root else None
    paths = NSDPaths(root=root, subject=subject, space=space)
    if paths.is_volume:
        paths.betas_pattern = "betas_session{session:02d}.nii.gz"
    defaults = _default_paths(root, paths.subj, space)
    for name in _DIR_OPTIONS:
        setattr(paths, name, Path(options[name]) if options.get(name) else defaults.get(name))
    for name in _PATTERN_OPTIONS:
        if options.get(name):
            setattr(paths, name, options[name])
    paths.stim_info_given = bool(options.get("stim_info"))
    if roi_sets is not None:  # () = no ROI sets
        paths.roi_sets = tuple(roi_sets)
    for name, why in _needed(paths):
        if getattr(paths, name) is None:
            raise InputError(name, f"is required without `root`{why}")
    return paths


def resolve_paths(root=None, subject=1, *, keep: str = "visual", trials_per_session: int | None = None,
                  **path_options) -> NSDPaths:
    """Check the options of :func:`prepare_nsd` and resolve its input paths (:func:`nsd_paths`).

    Raises :class:`InputError` naming the parameter (``keep``, ``trials_per_session``,
    ``subject``, ``space``, ``betas_dir``...) before any file is read.
    """
    if keep not in KEEP_CHOICES:
        raise InputError("keep", f"unknown value {keep!r}: use one of {', '.join(KEEP_CHOICES)}")
    if trials_per_session is not None and trials_per_session < 1:
        raise InputError("trials_per_session", f"must be >= 1, got {trials_per_session}")
    paths = nsd_paths(root, subject, **path_options)
    if keep != "all" and not paths.roi_sets:
        raise InputError("keep", f"{keep!r} needs ROI sets: give `roi_sets` or `keep` all")
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
    if not paths.expdesign.is_file():
        raise InputError(paths.expdesign, "no such file (the experimental design: set `expdesign` or `root`)")
    design = read_expdesign(paths.expdesign)
    images_of_trial = trial_images(design, paths.subject, paths.expdesign)
    shared = np.unique(design["sharedix"] - 1)
    if paths.stim_info_given and not paths.stim_info.is_file():
        raise InputError(paths.stim_info, "no such file (the stimulus info: set `stim_info`)")
    stim_info = _read_stim_info(paths.stim_info)
    if stim_info is not None and "shared1000" in stim_info:
        from_csv = np.sort(stim_info.loc[stim_info["shared1000"], "nsdId"].to_numpy())
        if len(from_csv) and not np.array_equal(from_csv, shared):
            warnings.append(f"{paths.stim_info.name}: its shared1000 images differ from sharedix in "
                            f"{paths.expdesign.name}; sharedix is used")
    return NSDDesign(images_of_trial=images_of_trial, shared=shared, stim_info=stim_info)


@dataclass
class VolumeGrid:
    """The func1pt8mm grid and the brain-mask voxels the volume betas are read at.

    shape : (3,) grid shape; affine : (4, 4) voxel-to-mm; ijk : (n_voxels, 3) int64 voxel indices
    of the mask, in C order; source : the brain-mask file
    """

    shape: tuple
    affine: np.ndarray
    ijk: np.ndarray
    source: Path

    @property
    def n(self) -> int:
        return len(self.ijk)

    def check(self, path, shape, affine, what="volume"):
        """Refuse a ``what`` whose grid (``shape`` (3,), ``affine``) is not this one."""
        if tuple(shape) != tuple(self.shape):
            raise InputError(path, f"has grid {tuple(shape)} but the brain mask {self.source.name} is "
                                   f"{tuple(self.shape)}")
        if not np.allclose(affine, self.affine, atol=1e-3):
            raise InputError(path, f"its affine differs from that of the brain mask {self.source.name}: "
                                   f"the {what} must be on the same func1pt8mm grid")


def read_brainmask(paths: NSDPaths) -> VolumeGrid:
    """The brain mask (``paths.brainmask``): a 3-D image, voxels != 0 kept."""
    from .io._neuro import _get_data, _load

    f = paths.brainmask
    if not f.is_file():
        raise InputError(f, "no such file (the brain mask of the volume betas: set `brainmask` or `root`)")
    img = _load(f, "nifti")
    data = _get_data(img, f)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise InputError(f, f"has shape {data.shape}: a brain mask is a 3-D volume")
    mask = np.isfinite(data) & (data != 0)
    if not mask.any():
        raise InputError(f, "selects no voxel (all zero)")
    return VolumeGrid(shape=tuple(int(s) for s in data.shape), affine=np.asarray(img.affine, dtype=float),
                      ijk=np.argwhere(mask).astype(np.int64), source=f)


@dataclass
class SessionLayout:
    """The sessions to read and the shape of their betas.

    sessions : session numbers (1-based), in reading order
    trials_per_session : trials in every session's betas file
    n_vertices : vertices per hemisphere of the betas' mesh, or brain-mask voxels for volumes
    space : the bundle space: the mesh's name (e.g. "fsaverage"), "none" for an unknown vertex
        count, or "volume"
    grid : the volume grid and brain mask (volumes only)
    """

    sessions: list
    trials_per_session: int
    n_vertices: int
    space: str
    grid: VolumeGrid | None = field(default=None, repr=False)

    def trials(self, session: int | None = None) -> np.ndarray:
        """0-based experiment trial indices of ``session`` (default: of every session, in order)."""
        if session is None:
            return np.concatenate([self.trials(s) for s in self.sessions])
        return (session - 1) * self.trials_per_session + np.arange(self.trials_per_session)


def _pick_sessions(paths: NSDPaths, sessions) -> list:
    """The requested sessions (default: every one found, without gaps), each with all its files."""
    available = find_sessions(paths)
    if sessions:
        sessions = list(sessions)
        missing = [s for s in sessions if s not in available]
        if missing:
            raise InputError(paths.session_files(missing[0])[0], "no such file (a betas file of a requested session)")
    else:
        sessions = available
        gaps = sorted(set(range(1, max(available) + 1)) - set(available))
        if gaps:
            raise InputError(paths.session_files(gaps[0])[0],
                             f"no such file: session {gaps[0]} is missing among the sessions found "
                             f"(1-{max(available)}; give `sessions` to use a subset)")
    for s in sessions:
        for f in paths.session_files(s):
            if not f.is_file():
                raise InputError(f, "no such file (a betas file of a requested session)")
    return sessions


def _betas_shape(path, kind: str) -> tuple:
    """(shape, affine) of a betas file from its header (the data are not read)."""
    from .io._neuro import _load

    img = _load(path, kind)
    return tuple(int(s) for s in img.shape), np.asarray(img.affine, dtype=float)


def _check_trials(path, got: int, expected: int):
    if got != expected:
        raise InputError(path, f"has {got} trials but sessions are assumed to have {expected} (the first session's "
                               "count, or `trials_per_session`)")


def _plan_volume(paths: NSDPaths, sessions: list, trials_per_session) -> tuple:
    """(trials per session, grid) of volume betas, every session's header checked against the mask."""
    grid = read_brainmask(paths)
    T = trials_per_session
    for s in sessions:
        f = paths.session_files(s)[0]
        shape, affine = _betas_shape(f, "nifti")
        if len(shape) != 4:
            raise InputError(f, f"has shape {shape}: volume betas are 4-D (X, Y, Z, n_trials)")
        grid.check(f, shape[:3], affine, "betas")
        T = T or shape[3]
        _check_trials(f, shape[3], T)
    return T, grid


def _check_surface_headers(paths: NSDPaths, sessions: list, n: int, T: int):
    """Every session's lh and rh header: (n, 1, 1, T)."""
    for s in sessions:
        for f in paths.session_files(s):
            shape, _ = _betas_shape(f, "mgh")
            if len(shape) < 3 or shape[1:3] != (1, 1):
                raise InputError(f, f"has shape {shape}: expected a surface overlay (n_vertices, 1, 1, n_trials)")
            if shape[0] != n:
                raise InputError(f, f"has {shape[0]} vertices but {paths.session_files(sessions[0])[0].name} has {n}")
            _check_trials(f, shape[3] if len(shape) > 3 else 1, T)


def plan_sessions(paths: NSDPaths, n_experiment_trials: int, sessions=None, trials_per_session: int | None = None,
                  warnings: list | None = None) -> SessionLayout:
    """Check the requested sessions against the betas folder and the design from the files'
    headers (no data is read): every file present, every header of the same shape; learn the
    mesh (or brain-mask) size and the trials per session from the first session.

    Parameters
    ----------
    paths : where the betas files are
    n_experiment_trials : length of the design's masterordering
    sessions : session numbers, or None for every session found (a gap is an error)
    trials_per_session : expected trials per session (default: the first file's count)
    warnings : list that receives a line when the mesh size is not a known space
    """
    from .io._inputs import MESH_SIZES

    sessions = _pick_sessions(paths, sessions)
    if paths.is_volume:
        T, grid = _plan_volume(paths, sessions, trials_per_session)
        layout = SessionLayout(sessions=sessions, trials_per_session=int(T), n_vertices=grid.n, space="volume",
                               grid=grid)
    else:
        shape, _ = _betas_shape(paths.betas("lh", sessions[0]), "mgh")
        n, T = shape[0], int(trials_per_session or (shape[3] if len(shape) > 3 else 1))
        _check_surface_headers(paths, sessions, n, T)
        space = {v: k for k, v in MESH_SIZES.items()}.get(n, "none")
        if space == "none" and warnings is not None:
            warnings.append(f"the betas have {n} vertices per hemisphere, not a known mesh: space 'none'")
        layout = SessionLayout(sessions=sessions, trials_per_session=T, n_vertices=n, space=space)
    last_trial = max(sessions) * layout.trials_per_session
    if last_trial > n_experiment_trials:
        raise InputError(paths.expdesign, f"masterordering has {n_experiment_trials} trials but session "
                                          f"{max(sessions)} of {layout.trials_per_session} trials needs {last_trial}")
    return layout


def session_images(images_of_trial: np.ndarray, layout: SessionLayout) -> np.ndarray:
    """(n_images,) sorted 0-based 73k ids of the images shown in ``layout``'s sessions: the rows of
    the prepared responses."""
    return np.unique(images_of_trial[layout.trials()])


def _read_session(path, n_expected, trials_expected):
    from .io._neuro import read_mgh_data

    if not Path(path).is_file():
        raise InputError(path, "no such file (a betas file of a requested session)")
    what, data = read_mgh_data(path)
    if what != "surface":
        raise InputError(path, f"is a volume of shape {data.shape}: expected a surface overlay (n_vertices, 1, 1, n_trials)")
    if n_expected is not None and data.shape[1] != n_expected:
        raise InputError(path, f"has {data.shape[1]} vertices but the other betas files have {n_expected}")
    if trials_expected is not None:
        _check_trials(path, data.shape[0], trials_expected)
    return data


def _read_volume_session(path, grid: VolumeGrid, ijk: np.ndarray, trials: int) -> np.ndarray:
    """(T, V) float32 betas of one volume session at the voxels ``ijk`` (V, 3); the stored
    integers are read unscaled and the header's slope / intercept applied to the kept voxels only."""
    from .io._neuro import _load

    img = _load(path, "nifti")
    shape = tuple(img.shape)
    if len(shape) != 4:
        raise InputError(path, f"has shape {shape}: volume betas are 4-D (X, Y, Z, n_trials)")
    grid.check(path, shape[:3], img.affine, "betas")
    _check_trials(path, shape[3], trials)
    proxy = img.dataobj
    try:
        raw = np.asanyarray(proxy.get_unscaled()) if hasattr(proxy, "get_unscaled") else np.asanyarray(proxy)
    except Exception as exc:
        raise InputError(path, f"is truncated or damaged: its data cannot be read ({type(exc).__name__})") from None
    Z = np.asarray(raw[ijk[:, 0], ijk[:, 1], ijk[:, 2], :], dtype=np.float32).T
    slope, inter = getattr(proxy, "slope", 1.0), getattr(proxy, "inter", 0.0)
    slope = 1.0 if slope is None or not np.isfinite(slope) or slope == 0 else float(slope)
    inter = 0.0 if inter is None or not np.isfinite(inter) else float(inter)
    return np.asfortranarray(Z * np.float32(slope) + np.float32(inter))


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


def _native_index(paths: NSDPaths, hemi: str, n: int, map_path: Path, n_native: int, cache: dict) -> np.ndarray:
    """(n,) 0-based native vertex of each betas vertex, from ``hemi``'s white-to-fsaverage transform
    (read once per hemisphere into ``cache``), checked against a native map of ``n_native`` values."""
    from .atlas._nsd_transforms import read_white_to_fsaverage

    if paths.transforms_dir is None:
        raise InputError("transforms_dir", f"is required to carry {map_path.name} ({n_native} native-surface "
                                           "vertices) to fsaverage (or give `root`)")
    f = paths.transform(hemi)
    if not f.is_file():
        raise InputError(f, f"no such file (the transform that carries {map_path.name} from the native surface to "
                            "fsaverage: set `transforms_dir` / `transform_pattern`)")
    if hemi not in cache:
        cache[hemi] = read_white_to_fsaverage(f, n_fsaverage=n)
    index = cache[hemi]
    if index.max() >= n_native:
        raise InputError(f, f"points at native vertex {int(index.max()) + 1} but {map_path.name} has {n_native} "
                            "vertices: they belong to different subjects or surfaces")
    return index


def _surface_roi(paths: NSDPaths, name: str, hemi: str, n: int, cache: dict, warnings: list) -> np.ndarray:
    """(n,) object array: the ROI names of one set and hemisphere on the betas' mesh (None = no ROI)."""
    from .io._inputs import _name
    from .io._neuro import read_label_image, read_lookup

    f = paths.roi(hemi, name)
    where = "on fsaverage" if paths.on_fsaverage(name) else "on the subject's native surface"
    if not f.is_file():
        raise InputError(f, f"no such file (ROI set {name!r} {where}: set `{paths.roi_option(name)}` / `roi_pattern`, "
                            "or `roi_sets`)")
    kind = "nifti" if str(f).lower().endswith((".nii", ".nii.gz")) else "mgh"
    values, _ = read_label_image(f, kind)
    if values.ndim != 1:
        raise InputError(f, f"is a volume of shape {values.shape}, not a surface label map")
    if len(values) != n:
        if paths.on_fsaverage(name):
            raise InputError(f, f"has {len(values)} vertices but the betas have {n} per hemisphere: "
                                "not a map on the betas' mesh")
        values = values[_native_index(paths, hemi, n, f, len(values), cache)]
    ctab = paths.ctab(name)
    return _name(values, read_lookup(ctab) if ctab.is_file() else None, f, warnings)


def read_rois(paths: NSDPaths, n: int, warnings: list) -> tuple:
    """The surface ROI maps of ``paths.roi_sets`` on the betas' mesh, merged over sets (earlier
    sets win) and hemispheres; subject sets are carried from the native surface to fsaverage
    through NSD's white-to-fsaverage transform.

    Parameters
    ----------
    paths : where the maps, their ctab files and the transforms are
    n : vertices per hemisphere of the betas' mesh
    warnings : list that receives a line per overlap between sets

    Returns
    -------
    roi : (2n,) object array, left then right hemisphere: the ROI name of each vertex, None = no ROI
    counts : dict ``"<hemi>.<set>"`` -> number of vertices that set labels
    """
    from .io._inputs import _merge

    full = np.full(2 * n, None, dtype=object)
    counts, cache = {}, {}
    for name in paths.roi_sets:
        for hemi, off in (("lh", 0), ("rh", n)):
            names = _surface_roi(paths, name, hemi, n, cache, warnings)
            block = np.full(2 * n, None, dtype=object)
            block[off:off + n] = names
            _merge(full, block, paths.roi(hemi, name), warnings)
            counts[f"{hemi}.{name}"] = int((names != None).sum())  # noqa: E711
    return full, counts


def read_roi_volumes(paths: NSDPaths, grid: VolumeGrid, warnings: list) -> tuple:
    """The ROI volumes of ``paths.roi_sets`` (``roi_volume_dir``) at the brain-mask voxels, merged
    over sets (earlier sets win).

    Returns
    -------
    roi : (n_voxels,) object array, the ROI name of each brain-mask voxel (C order), None = no ROI
    counts : dict set -> number of brain-mask voxels it labels
    """
    from .io._inputs import _merge, _name
    from .io._neuro import read_label_image, read_lookup

    full = np.full(grid.n, None, dtype=object)
    counts = {}
    for name in paths.roi_sets:
        f = paths.roi_volume(name)
        if not f.is_file():
            raise InputError(f, f"no such file (ROI volume of set {name!r}: set `roi_volume_dir` / "
                                "`roi_volume_pattern`, or `roi_sets`)")
        values, affine = read_label_image(f, "nifti")
        if values.ndim != 3:
            raise InputError(f, f"has shape {values.shape}: an ROI volume is 3-D")
        grid.check(f, values.shape, affine, "ROI volume")
        ctab = paths.volume_ctab(name)
        names = _name(values[tuple(grid.ijk.T)], read_lookup(ctab) if ctab else None, f, warnings)
        _merge(full, names, f, warnings)
        counts[name] = int((names != None).sum())  # noqa: E711
    return full, counts


def choose_vertices(roi: np.ndarray, keep: str, source=None) -> np.ndarray:
    """(V,) int64 indices into ``roi`` (2n,) or (n_voxels,): the vertices whose ROI has a visual
    hierarchy level (``keep="visual"``, :func:`jnecore.atlas.roi_level`), those with any ROI
    (``"rois"``) or all of them (``"all"``). ``source`` is named when none is kept."""
    if keep == "all":
        return np.arange(len(roi))
    if keep not in KEEP_CHOICES:
        raise InputError("keep", f"unknown value {keep!r}: use one of {', '.join(KEEP_CHOICES)}")
    has = roi != None  # noqa: E711
    if keep == "visual" and has.any():
        from .atlas._hierarchy import roi_level

        has[has] = roi_level(roi[has].astype(str)) != "other"
    idx = np.flatnonzero(has)
    if not len(idx):
        what = " of a visual area (an ROI with a hierarchy level)" if keep == "visual" else ""
        raise InputError(source or "roi_sets", f"the ROI maps label no vertex{what}: nothing to keep "
                                               "(use `keep` rois or all?)")
    return idx


def roi_labels(roi: np.ndarray, keep_idx: np.ndarray) -> np.ndarray:
    """(V,) str ROI names of the kept vertices, "unlabelled" where none."""
    from .io._inputs import UNLABELLED

    return np.asarray([UNLABELLED if r is None else r for r in roi[keep_idx]], dtype=str)


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
    """(T, V) float32 z-scored betas of one session at ``keep_idx`` (both hemispheres, or
    brain-mask voxels), and the number of vertices constant within the session."""
    n, T = layout.n_vertices, layout.trials_per_session
    if layout.grid is not None:
        Z = _read_volume_session(paths.session_files(session)[0], layout.grid, layout.grid.ijk[keep_idx], T)
        return Z, _zscore_session(Z)
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
    keep_idx : (V,) vertex indices, left hemisphere 0..n-1 then right n..2n-1; for volumes,
        positions among the brain-mask voxels (``layout.grid.ijk``)
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


def _kept_mask(grid: VolumeGrid, keep_idx: np.ndarray):
    """A uint8 NIfTI on the betas' grid: 1 at the kept voxels (their C order = the responses' columns)."""
    import nibabel as nib

    mask = np.zeros(grid.shape, dtype=np.uint8)
    ijk = grid.ijk[keep_idx]
    mask[ijk[:, 0], ijk[:, 1], ijk[:, 2]] = 1
    return nib.Nifti1Image(mask, grid.affine)


def prepared_contents(sums: RepeatSums, test_rows, keep_idx, roi, shared, *, noise_ceiling=None, features=None,
                      categories=None, stim_info=None, grid: VolumeGrid | None = None) -> dict:
    """What the prepared folder holds: {key: (file name, content)}, content an array for .npy
    files, a DataFrame for .csv files and a NIfTI image for .nii.gz files; every key but
    ``stimuli_info`` goes in prepare.json's ``files`` (what ``jne run --prepared`` reads).

    sums : :class:`RepeatSums`; test_rows : (n_test,); keep_idx, roi : (V,); shared : (n_shared,)
    noise_ceiling : (V,); features : (N, D); categories : (N,) str; all optional
    grid : for volumes: the brain mask ``keep_idx`` indexes; the kept voxels become mask.nii.gz
        instead of vertices.csv
    """
    ids = sums.image_ids
    out = {"responses": ("responses.npy", sums.mean()),
           "stimulus_ids": ("stimulus_ids.csv", pd.DataFrame({"stimulus": ids})),
           "test_index": ("test_index.csv", pd.DataFrame({"test_index": test_rows})),
           "rois": ("rois.csv", pd.DataFrame({"roi": roi}))}
    if grid is None:
        out["vertices"] = ("vertices.csv", pd.DataFrame({"vertex": keep_idx.astype(np.int64)}))
    else:
        out["mask"] = ("mask.nii.gz", _kept_mask(grid, keep_idx))
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
    """Write ``contents`` (see :func:`prepared_contents`; arrays as float32 .npy, tables as .csv,
    images as NIfTI) and ``summary`` (prepare.json) into a temporary sibling of ``out``, then
    rename it into place: on any failure nothing is left behind and an existing ``out`` is
    untouched."""
    import nibabel as nib

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=tmp_prefix(out)))
    try:
        for name, value in contents.values():
            if name.endswith(".npy"):
                np.save(tmp / name, np.ascontiguousarray(value, dtype=np.float32), allow_pickle=False)
            elif name.endswith((".nii", ".nii.gz")):
                nib.save(value, str(tmp / name))
            else:
                value.to_csv(tmp / name, index=False)
        (tmp / "prepare.json").write_text(json.dumps(summary, indent=2))
        replace_dir(tmp, out, overwrite=overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _volume_record(paths: NSDPaths, grid: VolumeGrid, n_kept: int) -> dict:
    """prepare.json's ``volume``: the grid, and where NSD's transforms to the surfaces are."""
    nsd = {"subject": paths.subj, "grid": "func1pt8mm"}
    if paths.transforms_dir is not None:
        nsd["transforms_dir"] = str(paths.transforms_dir)
    return {"shape": list(grid.shape), "affine": np.asarray(grid.affine).tolist(), "mask": "mask.nii.gz",
            "n_voxels": int(n_kept), "space": "native", "brainmask": str(grid.source), "nsd": nsd}


def _summary(out, paths: NSDPaths, layout: SessionLayout, keep: str, sums: RepeatSums, n_test: int, files: dict,
             roi_counts: dict, inputs: dict, warnings: list) -> dict:
    """prepare.json: what was done, from what, and the ``jne run`` command."""
    sources = {"root": paths.root, **{k: getattr(paths, k) for k in _DIR_OPTIONS + _PATTERN_OPTIONS}, **inputs}
    summary = {
        "format": "jnecore.nsd-prepare", "subject": paths.subj, "space": layout.space, "nsd_space": paths.space,
        "files": files, "sessions": layout.sessions, "trials_per_session": layout.trials_per_session, "keep": keep,
        "roi_sets": list(paths.roi_sets),
        "counts": {"images": len(sums.image_ids), "test": int(n_test), "vertices": sums.total.shape[1],
                   "trials": int(sums.n_trials.sum()), "roi_vertices": roi_counts},
        "sources": {k: str(v) for k, v in sources.items() if v is not None},
        "assumptions": ASSUMPTIONS, "warnings": warnings,
        "jne_run": f"jne run --prepared {out} --out BUNDLE" + ("" if "features" in files else " --features FEATURES"),
    }
    if layout.grid is not None:
        summary["volume"] = _volume_record(paths, layout.grid, sums.total.shape[1])
    return summary


def prepare_nsd(out, *, root=None, subject=1, sessions=None, features=None, feature_ids=None, categories=None,
                keep="visual", trials_per_session=None, overwrite=False, progress=True, **path_options) -> tuple:
    """Assemble one NSD subject for ``jne run`` (see the module docstring); return (out, summary).

    Parameters
    ----------
    out : directory to create (refused when it exists and is not empty, unless ``overwrite``)
    root : NSD root folder; subject : 1..8 or "subj01"
    sessions : list of session numbers, or None for every session found
    features : path of features (see the module docstring); feature_ids : path, optional
    categories : path, optional
    keep : "visual" (vertices in a visual area), "rois" (with any ROI) or "all"
    trials_per_session : int, optional (default: the first session file's trial count)
    progress : show a progress bar over the sessions
    path_options : space ("fsaverage" or "func1pt8mm"), roi_sets and the paths and patterns of
        :func:`nsd_paths`

    Every input is checked (features, categories, ROI maps and transforms included) before the
    betas are read; a stop requested with :func:`jnecore.cancel.request_stop` is honoured
    between sessions.
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
    if layout.grid is not None:
        roi, roi_counts = read_roi_volumes(paths, layout.grid, warnings)
        source = paths.roi_volume_dir
    else:
        roi, roi_counts = read_rois(paths, layout.n_vertices, warnings)
        source = paths.fsaverage_label_dir if all(map(paths.on_fsaverage, paths.roi_sets)) else paths.label_dir
    keep_idx = choose_vertices(roi, keep, source)
    sums = read_betas(paths, layout, design.images_of_trial, keep_idx, progress=progress, warnings=warnings)
    test_rows = shared_rows(sums.image_ids, design.shared, warnings)
    nc = repeat_noise_ceiling(sums, test_rows, warnings)
    contents = prepared_contents(sums, test_rows, keep_idx, roi_labels(roi, keep_idx), design.shared,
                                 noise_ceiling=nc, features=feats, categories=cats, stim_info=design.stim_info,
                                 grid=layout.grid)
    files = {k: name for k, (name, _) in contents.items() if k != "stimuli_info"}
    inputs = {"features": features, "feature_ids": feature_ids, "categories": categories}
    summary = _summary(out, paths, layout, keep, sums, len(test_rows), files, roi_counts, inputs, warnings)
    check_stop()
    write_prepared(out, contents, summary, overwrite=overwrite)
    return out, summary


def read_prepared_volume(folder, info: dict, responses=None):
    """The volume responses of a prepared folder (``space="func1pt8mm"``) as
    :class:`jnecore.io.Responses` in space ``volume``: what ``jne run --prepared`` models.

    Parameters
    ----------
    folder : the prepared folder; info : its prepare.json (with ``files`` and ``volume``)
    responses : the responses file (default: the folder's)

    Returns
    -------
    Responses with data (N, V) float32 (V = the voxels of mask.nii.gz, C order), vertex = the
    voxel's position in the mask, ``voxel_i/j/k`` and ``x/y/z`` (mm) columns, and ``volume``
    (affine, shape, mask, and the NSD record with the transforms folder) for the bundle manifest.
    """
    from .io import Responses, read_array
    from .io._neuro import _get_data, _load

    folder = Path(folder)
    files, vol = dict(info.get("files") or {}), dict(info.get("volume") or {})
    responses = Path(responses) if responses else folder / files.get("responses", "responses.npy")
    mask_path = folder / files.get("mask", vol.get("mask", "mask.nii.gz"))
    img = _load(mask_path, "nifti")
    m = _get_data(img, mask_path)
    m = m[..., 0] if m.ndim == 4 and m.shape[3] == 1 else m
    if m.ndim != 3:
        raise InputError(mask_path, f"has shape {m.shape}: the prepared mask is a 3-D volume")
    ijk = np.argwhere(np.isfinite(m) & (m != 0)).astype(np.int64)
    Y = read_array(responses)
    if Y.ndim != 2 or Y.shape[1] != len(ijk):
        raise InputError(responses, f"has shape {Y.shape} but {mask_path.name} holds {len(ijk)} voxels "
                                    "(one column each)")
    affine = np.asarray(img.affine, dtype=float)
    xyz = ijk @ affine[:3, :3].T + affine[:3, 3]
    volume = {"affine": affine.tolist(), "shape": list(m.shape), "mask": str(mask_path), "n_voxels": int(len(ijk)),
              "vertex": "position of the voxel among the mask's voxels (C order)"}
    volume.update({k: vol[k] for k in ("nsd", "brainmask") if k in vol})
    extra = {"voxel_i": ijk[:, 0], "voxel_j": ijk[:, 1], "voxel_k": ijk[:, 2],
             "x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2]}
    return Responses(data=np.asarray(Y, dtype=np.float32), space="volume", vertex=np.arange(len(ijk), dtype=np.int64),
                     kind="volume", source=str(responses), volume=volume, extra_columns=extra)
