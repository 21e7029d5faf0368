"""The ``jne run`` pipeline: features + responses in, result bundle out.

Steps (each timed in the manifest):

1. z-score features and responses with the training rows' mean and std
2. split stimuli into train / val / test (a given test index, or a seeded random fraction;
   validation is ``val_fraction`` of the remaining rows)
3. fit the linear and the nonlinear encoder (same ResidualMLP, with and without activation)
4. test R^2 of both, bootstrap significance of the nonlinear encoder's R^2 with BH-FDR
5. JNE and JNE-SS of the nonlinear encoder on the test stimuli, for the significant vertices
   (a CUDA out-of-memory error halves the sample chunk and retries)
6. stimulus groups: categories, and/or t-SNE + k-means clusters of the test features
   (:mod:`jnecore.grouping`) when there are no categories (``groups="auto"``)
7. ROI, hierarchy-level and ROI x group / ROI x cluster summaries

Failing safely: the bundle is written atomically (nothing appears at ``out`` unless the run
finishes). Each fitted encoder is saved at once into a checkpoint directory beside ``out``
(``<out>.partial/``: safetensors weights, the fit history and a hash of the inputs and fit
settings); ``resume=True`` reuses the encoders found there when the hash matches, so an
interrupted run does not refit. The checkpoint directory is removed when the bundle is written.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import json
import os
import platform
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from . import summaries
from .backend import resolve_device
from .bundle import SPACES, write_bundle
from .cancel import check_stop
from .encoders import ResidualMLP, fit_encoder, load_encoder, save_encoder
from .grouping import GROUPINGS, cluster_stimuli
from .jacobian import NORMS, compute_jne
from .scoring import bootstrap_significance, r2_score
from .validation import InputError, check_choice

__all__ = ["RunConfig", "run_pipeline", "split_indices", "subset_outputs", "checkpoint_dir_for", "FIT_FIELDS"]

# RunConfig fields that change the fitted encoders (and so the checkpoint hash)
FIT_FIELDS = ("hidden", "n_blocks", "activation", "max_epochs", "patience", "lr", "weight_decay", "seed",
              "test_fraction", "val_fraction", "fit_batch_size")


@dataclass
class RunConfig:
    """Every setting of a run; stored, resolved, in the bundle's manifest."""

    space: str = "none"
    device: str = "auto"
    hidden: int = 1024
    n_blocks: int = 2
    activation: str = "relu"
    max_epochs: int = 512
    patience: int = 8
    lr: float = 1e-3
    weight_decay: float = 0.01
    n_boot: int = 200
    alpha: float = 0.05
    norm: str = "l1"
    seed: int = 0
    test_fraction: float = 0.1
    val_fraction: float = 0.1111
    jne_batch_size: int | None = None
    fit_batch_size: int | None = None  # None: full batch, as in the paper
    groups: str = "auto"
    n_clusters: int | None = None
    k_max: int = 60
    extra: dict = field(default_factory=dict)

    def validate(self):
        check_choice(self.space, SPACES, "--space")
        check_choice(self.groups, GROUPINGS, "--groups")
        if self.n_clusters is not None and int(self.n_clusters) < 1:
            raise InputError("--n-clusters", f"must be an integer >= 1, got {self.n_clusters}")
        if int(self.k_max) < 2:
            raise InputError("--k-max", f"must be an integer >= 2, got {self.k_max}")
        if self.fit_batch_size is not None and int(self.fit_batch_size) < 1:
            raise InputError("--fit-batch-size", f"must be an integer >= 1, got {self.fit_batch_size}")
        if self.jne_batch_size is not None and int(self.jne_batch_size) < 1:
            raise InputError("--jne-batch-size", f"must be an integer >= 1, got {self.jne_batch_size}")
        check_choice(self.norm, NORMS, "--norm")
        check_choice(self.activation, ("relu", "leaky_relu", "gelu", "silu", "tanh"), "--activation")
        for opt, val, lo in (("--hidden", self.hidden, 1), ("--n-blocks", self.n_blocks, 0),
                             ("--max-epochs", self.max_epochs, 1), ("--patience", self.patience, 1),
                             ("--n-boot", self.n_boot, 1)):
            if int(val) < lo:
                raise InputError(opt, f"must be an integer >= {lo}, got {val}")
        if not 0 < self.alpha < 1:
            raise InputError("--alpha", f"must be in (0, 1), got {self.alpha}")
        if not 0 < self.test_fraction < 1:
            raise InputError("--test-fraction", f"must be in (0, 1), got {self.test_fraction}")
        try:
            resolve_device(self.device)
        except ValueError as exc:
            raise InputError("--device", str(exc)) from None
        return self


def split_indices(n: int, *, test_index=None, test_fraction=0.1, val_fraction=0.1111, seed=0) -> np.ndarray:
    """Split labels (n,) with values "train", "val", "test".

    ``test_index`` (integer row indices) fixes the test set, as NSD's 1000 shared images do;
    otherwise a seeded random ``test_fraction`` of rows. Validation is a seeded random
    ``val_fraction`` of the rest (8000 / 1000 / 1000 in the paper).
    """
    rng = np.random.default_rng(seed)
    split = np.full(n, "train", dtype=object)
    if test_index is not None:
        idx = np.asarray(test_index)
        if idx.dtype.kind not in "iu" or idx.ndim != 1:
            raise InputError("--test-index", "must be a one-column list of integer row indices")
        if len(idx) and (idx.min() < 0 or idx.max() >= n):
            raise InputError("--test-index", f"indices must lie in [0, {n - 1}]")
        if len(np.unique(idx)) != len(idx):
            raise InputError("--test-index", "repeats a row index")
        split[idx] = "test"
    else:
        n_test = int(round(n * test_fraction))
        split[rng.permutation(n)[:n_test]] = "test"
    rest = np.flatnonzero(split == "train")
    n_val = int(round(len(rest) * val_fraction))
    split[rng.permutation(rest)[:n_val]] = "val"
    counts = {s: int((split == s).sum()) for s in ("train", "val", "test")}
    if counts["train"] < 2 or counts["val"] < 1 or counts["test"] < 3:
        raise InputError("responses", f"too few stimuli to split ({n} rows gave {counts}): "
                                      "need at least 2 train, 1 val and 3 test rows")
    return split.astype(str)


def subset_outputs(model: ResidualMLP, columns) -> ResidualMLP:
    """A copy of ``model`` whose readout keeps only the output ``columns``."""
    cfg = dict(model.config, n_outputs=len(columns))
    sub = ResidualMLP(**cfg)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    idx = torch.as_tensor(np.asarray(columns), dtype=torch.long)
    state["readout.weight"] = state["readout.weight"][idx]
    if "readout.bias" in state:
        state["readout.bias"] = state["readout.bias"][idx]
    sub.load_state_dict(state)
    return sub.eval()


def _zscore(a: np.ndarray, train: np.ndarray):
    mean = a[train].mean(0)
    std = a[train].std(0)
    ok = std > 0
    out = np.zeros_like(a, dtype=np.float32)
    out[:, ok] = (a[:, ok] - mean[ok]) / std[ok]
    return out, ok


def _predict(model: nn.Module, X: np.ndarray, device) -> np.ndarray:
    with torch.no_grad():
        return model.to(device)(torch.as_tensor(X, device=device)).cpu().numpy()


class _Timer(dict):
    @contextmanager
    def step(self, name):
        check_stop()  # a Ctrl-C / kill asked for a stop: honour it between steps too
        t0 = time.perf_counter()
        yield
        self[name] = round(time.perf_counter() - t0, 3)
        check_stop()


def checkpoint_dir_for(out) -> Path:
    """Where the fitted encoders of a run writing ``out`` are checkpointed: ``<out>.partial``."""
    out = Path(out)
    return out.parent / f"{out.name}.partial"


def _hash_inputs(X, Y, split, cols, cfg: RunConfig) -> str:
    """sha256 of the features, responses, split, modelled columns and the fit settings."""
    h = hashlib.sha256()
    for name, a in (("X", X), ("Y", Y), ("split", np.asarray(split).astype("U5")), ("cols", np.asarray(cols))):
        a = np.ascontiguousarray(a)
        h.update(f"{name}:{a.dtype.str}:{a.shape};".encode())
        h.update(memoryview(a).cast("B"))
    fit = {k: getattr(cfg, k) for k in FIT_FIELDS}
    h.update(json.dumps(fit, sort_keys=True).encode())
    return h.hexdigest()


class _Checkpoint:
    """Fitted encoders saved as soon as they are fitted, for ``resume``."""

    MARKER = "checkpoint.json"

    def __init__(self, path: Path, key: str, fit_config: dict):
        self.path = Path(path)
        self.key = key
        self.fit_config = fit_config
        self.fits = {}

    def _write_meta(self):
        meta = {"format": "jnecore.checkpoint", "key": self.key, "fit_config": self.fit_config, "fits": self.fits,
                "encoders": sorted(self.fits)}
        tmp = self.path / f".{self.MARKER}.tmp"
        tmp.write_text(json.dumps(meta, indent=2, default=float))
        os.replace(tmp, self.path / self.MARKER)

    def _is_ours(self) -> bool:
        return (self.path / self.MARKER).is_file()

    def start(self, resume: bool, warnings: list) -> dict:
        """Open the checkpoint; return the encoders that can be reused ({name: (model, history)})."""
        found = {}
        if self.path.exists():
            if not self.path.is_dir() or (any(self.path.iterdir()) and not self._is_ours()):
                raise InputError(self.path, "exists and is not a jne checkpoint: move it away")
            if resume and self._is_ours():
                try:
                    meta = json.loads((self.path / self.MARKER).read_text())
                except (OSError, ValueError):
                    meta = {}
                if meta.get("key") != self.key:
                    raise InputError("--resume", f"{self.path} was made with other inputs or fit settings: "
                                                 "run without --resume to start again")
                for name, hist in (meta.get("fits") or {}).items():
                    f = self.path / f"{name}.safetensors"
                    if f.is_file():
                        try:
                            found[name] = (load_encoder(f), hist)
                        except ValueError:
                            continue
                self.fits = {k: v for k, v in (meta.get("fits") or {}).items() if k in found}
            else:
                shutil.rmtree(self.path)
        elif resume:
            warnings.append(f"--resume: no checkpoint at {self.path}; fitting from the start")
        self.path.mkdir(parents=True, exist_ok=True)
        self._write_meta()
        return found

    def save(self, name, model, hist: dict):
        save_encoder(model, self.path / f"{name}.safetensors")
        self.fits[name] = hist
        self._write_meta()

    def remove(self):
        if self.path.is_dir() and self._is_ours():
            shutil.rmtree(self.path, ignore_errors=True)


def _oom_types():
    types = []
    for mod in (torch.cuda, torch):
        t = getattr(mod, "OutOfMemoryError", None)
        if isinstance(t, type) and t not in types:
            types.append(t)
    return tuple(types) or (RuntimeError,)


def _jne_with_retry(model, X, *, norm, device, batch_size, progress, warnings):
    """compute_jne; a CUDA out-of-memory error halves the sample chunk and retries."""
    bs = batch_size
    retries = []
    while True:
        try:
            res = compute_jne(model, X, norm=norm, device=device, batch_size=bs, progress=progress)
            return res, retries
        except _oom_types():
            if bs == 1:
                raise InputError("--device", "out of GPU memory computing JNE even one stimulus at a time: "
                                             "free the GPU or use --device cpu") from None
            new = max(1, (int(bs) if bs else len(X)) // 2)
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            warnings.append(f"out of GPU memory computing JNE with batch size {bs or 'auto'}: retried with {new}")
            retries.append({"batch_size": bs, "retry_with": new})
            bs = new


def run_pipeline(features, responses, out, *, config: RunConfig | None = None, rois=None, levels=None,
                 categories=None, stimulus_ids=None, test_index=None, vertex_index=None, hemi=None,
                 extra_vertex_columns: dict | None = None, manifest_extra: dict | None = None,
                 sources: dict | None = None, simulations=None, overwrite=False, progress=True,
                 resume: bool = False, checkpoint: bool = True, checkpoint_dir=None):
    """Fit encoders, select vertices, compute JNE / JNE-SS and write a bundle to ``out``.

    Parameters
    ----------
    features : ndarray (N, D), finite
    responses : ndarray (N, V); columns that are constant or hold non-finite values are excluded
        (marked ``excluded`` in vertices.parquet) with a warning, not an error
    rois : (V,) ROI labels, optional; levels : (V,) hierarchy levels, optional (looked up from the
        ROI names with :func:`jnecore.atlas.roi_level` when omitted)
    categories : (N,) stimulus category labels, optional
    stimulus_ids : (N,) ids, optional (default row numbers)
    test_index : integer row indices of the test set, optional
    vertex_index, hemi : (V,) mesh vertex index and hemisphere, optional (``hemi`` follows from
        the vertex index on a mesh space when omitted)
    extra_vertex_columns : {name: (V,) array} added to vertices.parquet (e.g. true_nonlinearity,
        noise_ceiling)
    resume : reuse the encoders checkpointed by an interrupted run with the same inputs and fit
        settings (an error when the checkpoint was made with others)
    checkpoint : save each fitted encoder into ``checkpoint_dir`` (default ``<out>.partial``)
        as soon as it is fitted; the directory is removed once the bundle is written

    Returns (bundle path, warnings).
    """
    cfg = (config or RunConfig()).validate()
    X = np.asarray(features)
    Y = np.asarray(responses)
    N, V = Y.shape
    timer = _Timer()
    dev = resolve_device(cfg.device)
    warnings = []
    if cfg.groups == "categories" and categories is None:
        raise InputError("--groups", "'categories' needs --categories")
    if categories is not None and len(categories) != N:
        raise InputError("categories", f"has {len(categories)} labels but there are {N} stimuli")
    if vertex_index is not None and hemi is None and cfg.space in ("fsLR32k", "fsaverage5", "fsaverage"):
        from .atlas import space_size

        n = space_size(cfg.space)
        vi = np.asarray(vertex_index, dtype=np.int64)
        if len(vi) and (vi.min() < 0 or vi.max() >= 2 * n):
            raise InputError("vertices", f"indices must lie in [0, {2 * n}) for {cfg.space}")
        hemi = np.where(vi < n, "left", "right")

    with timer.step("split"):
        split = split_indices(N, test_index=test_index, test_fraction=cfg.test_fraction,
                              val_fraction=cfg.val_fraction, seed=cfg.seed)
        tr, va, te = (split == s for s in ("train", "val", "test"))
        finite_cols = np.isfinite(Y).all(0)
        Yf = np.where(np.isfinite(Y), Y, 0.0)
        Xz, _ = _zscore(X.astype(np.float64), tr)
        Yz, varying = _zscore(Yf.astype(np.float64), tr)
        usable = finite_cols & varying
        n_bad = int((~usable).sum())
        if n_bad == V:
            raise InputError("responses", "every column is constant or non-finite: nothing to model")
        if n_bad:
            warnings.append(f"{n_bad} of {V} response columns are constant or non-finite; they are excluded")
        cols = np.flatnonzero(usable)
    n_test = int(te.sum())

    use_clusters = cfg.groups in ("clusters", "both") or (cfg.groups == "auto" and categories is None)
    clusters = None
    grouping_info = {}
    if use_clusters:
        with timer.step("grouping"):
            if n_test < 4:
                warnings.append(f"only {n_test} test stimuli: too few to cluster")
            else:
                k_range = range(2, max(2, min(cfg.k_max, n_test // 3)) + 1)
                cl = cluster_stimuli(Xz[te], k_range=k_range, n_clusters=cfg.n_clusters, seed=cfg.seed)
                clusters = cl.names
                grouping_info = cl.summary()

    def make(activation):
        torch.manual_seed(cfg.seed)
        return ResidualMLP(X.shape[1], len(cols), hidden=cfg.hidden, n_blocks=cfg.n_blocks, activation=activation)

    ckpt = None
    reused = {}
    if checkpoint or resume:
        key = _hash_inputs(X, Y, split, cols, cfg)
        ckpt = _Checkpoint(Path(checkpoint_dir) if checkpoint_dir else checkpoint_dir_for(out), key,
                           {k: getattr(cfg, k) for k in FIT_FIELDS})
        reused = ckpt.start(resume, warnings)

    try:
        fits = {}
        encoders = {}
        for name, act in (("linear", None), ("nonlinear", cfg.activation)):
            with timer.step(f"fit_{name}"):
                if name in reused:
                    model, hist = reused[name]
                    expect = make(act)
                    if model.config != expect.config:
                        raise InputError("--resume", f"{ckpt.path}: the saved {name} encoder does not match this run")
                    fits[name] = dict(hist, resumed=True)
                    encoders[name] = model.cpu()
                    continue
                model = make(act)
                hist = fit_encoder(model, Xz[tr], Yz[tr][:, cols], Xz[va], Yz[va][:, cols], lr=cfg.lr,
                                   weight_decay=cfg.weight_decay, max_epochs=cfg.max_epochs, patience=cfg.patience,
                                   batch_size=cfg.fit_batch_size, device=dev, seed=cfg.seed, progress=progress)
                fits[name] = hist.to_dict()
                encoders[name] = model.cpu()
                if ckpt is not None:
                    ckpt.save(name, encoders[name], fits[name])
    except BaseException:
        if ckpt is not None and not ckpt.fits:
            ckpt.remove()  # nothing worth keeping: leave no directory behind
        raise

    with timer.step("scoring"):
        y_test = Yz[te][:, cols]
        pred = {k: _predict(m, Xz[te], dev) for k, m in encoders.items()}
        r2_lin = r2_score(y_test, pred["linear"])
        sig = bootstrap_significance(y_test, pred["nonlinear"], n_boot=cfg.n_boot, alpha=cfg.alpha, seed=cfg.seed)

    jne = np.full(V, np.nan)
    ss = np.full((n_test, V), np.nan, dtype=np.float32)
    sel = cols[sig.significant]
    jne_info = {}
    with timer.step("jne"):
        if len(sel):
            sub = subset_outputs(encoders["nonlinear"], np.flatnonzero(sig.significant))
            res, retries = _jne_with_retry(sub, Xz[te], norm=cfg.norm, device=dev, batch_size=cfg.jne_batch_size,
                                           progress=progress, warnings=warnings)
            jne[sel] = res.jne
            ss[:, sel] = res.ss
            jne_info = dict(method=res.method, seconds=res.seconds, batch_size=res.batch_size,
                            voxel_batch_size=res.voxel_batch_size, oom_retries=retries)
        else:
            warnings.append("no vertex passed the significance test: JNE was not computed")

    with timer.step("summaries"):
        def full(values, fill=np.nan):
            a = np.full(V, fill, dtype=float)
            a[cols] = values
            return a

        roi = np.asarray(rois).astype(str) if rois is not None else np.full(V, "all")
        if levels is None:
            from .atlas import roi_level

            levels = roi_level(roi)
        vertices = pd.DataFrame({
            "vertex": np.asarray(vertex_index, dtype=np.int64) if vertex_index is not None else np.arange(V),
            "hemi": np.asarray(hemi).astype(str) if hemi is not None else np.full(V, "none"),
            "roi": roi,
            "level": np.asarray(levels).astype(str),
            "r2_linear": full(r2_lin),
            "r2_nonlinear": full(sig.r2),
            "p": full(sig.p),
            "p_fdr": full(sig.q),
            "significant": full(sig.significant, 0).astype(bool),
            "jne": jne,
            "excluded": ~usable,
        })
        for name, values in (extra_vertex_columns or {}).items():
            vertices[name] = np.asarray(values)
        ids = np.asarray(stimulus_ids).astype(str) if stimulus_ids is not None else np.arange(N).astype(str)
        cats = np.asarray(categories).astype(str) if categories is not None else np.full(N, "all")
        stimuli = pd.DataFrame({"stimulus": ids, "split": split, "category": cats})
        if clusters is not None:
            col = np.full(N, None, dtype=object)
            col[te] = clusters
            stimuli["cluster"] = col
        stimuli = pd.concat([stimuli[te], stimuli[~te]]).reset_index(drop=True)  # test rows first, in order
        tables = _summary_tables(vertices, ss, cats[te], clusters=clusters)

    manifest = {
        "space": cfg.space,
        "config": dataclasses.asdict(cfg),
        "sources": sources or {},
        "device": {"type": dev.type, "name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or platform.machine(),
                   "torch": torch.__version__},
        "timings": dict(timer),
        "fits": fits,
        "jne": jne_info,
        "counts": {"stimuli": N, "train": int(tr.sum()), "val": int(va.sum()), "test": n_test, "vertices": V,
                   "excluded": n_bad, "significant": int(len(sel))},
        "warnings": warnings,
    }
    if grouping_info:
        manifest["grouping"] = grouping_info
    if reused:
        manifest["resumed"] = sorted(reused)
    manifest.update(manifest_extra or {})
    path = write_bundle(out, vertices=vertices, jne_ss=ss, stimuli=stimuli, manifest=manifest,
                        tables=tables, encoders=encoders, simulations=simulations, overwrite=overwrite)
    if ckpt is not None:
        ckpt.remove()
    return path, warnings


def _summary_tables(vertices: pd.DataFrame, ss: np.ndarray, test_groups, clusters=None) -> dict:
    tables = {
        "roi_summary": summaries.roi_summary(vertices, "jne"),
        "level_summary": summaries.level_summary(vertices, "jne"),
        "level_tests": summaries.pairwise_tests(vertices, "level", "jne"),
    }
    mask = vertices["significant"].to_numpy() & np.isfinite(vertices["jne"].to_numpy())
    if mask.any():
        tables["roi_group"] = summaries.roi_group_table(ss, test_groups, vertices["roi"].to_numpy(), vertex_mask=mask)
        if clusters is not None:
            tables["roi_cluster"] = summaries.roi_group_table(ss, clusters, vertices["roi"].to_numpy(), vertex_mask=mask)
    return tables
