"""The stages of an analysis after the split: fit encoders, score them, compute JNE, group stimuli.

Each stage is a pure function of arrays (plus the progress / stop hooks it is given), so it can be
tested alone; :class:`jnecore.analysis.JNEAnalysis` composes them in ``fit``.

Columns: ``cols`` (n_usable,) are the usable response columns (indices into V); a *partition*
maps a name to positions in ``cols`` (0 .. n_usable - 1). The paper's shared trunk is one
partition, ``{"all": every position}``; ``trunk="level"`` / ``"roi"`` fit one encoder pair per
hierarchy level / ROI, each on its own columns.
"""

from __future__ import annotations

import gc

import numpy as np
import pandas as pd
import torch

from ..cancel import check_stop
from ..encoders import ResidualMLP, fit_encoder
from ..grouping import cluster_stimuli
from ..jacobian import compute_jne
from ..scoring import bootstrap_significance, r2_score
from ..validation import InputError

__all__ = ["TRUNKS", "ENCODER_KINDS", "trunk_partitions", "encoder_name", "make_encoder", "fit_encoders",
           "predict", "score_encoders", "subset_outputs", "compute_maps", "group_stimuli", "take_columns"]

TRUNKS = ("shared", "level", "roi")
ENCODER_KINDS = ("linear", "nonlinear")


def trunk_partitions(trunk: str, cols, rois=None, levels=None) -> dict:
    """The columns each encoder pair is fitted on.

    Parameters
    ----------
    trunk : {"shared", "level", "roi"}
    cols : ndarray of int (n_usable,)
        Usable response columns (indices into V).
    rois, levels : array of str (V,), optional
        ROI and hierarchy level of every column; needed for ``"roi"`` / ``"level"``.

    Returns
    -------
    {name: ndarray of int}
        Positions into ``cols``; together they cover every position exactly once.
    """
    cols = np.asarray(cols)
    if trunk == "shared":
        return {"all": np.arange(len(cols))}
    labels = {"roi": rois, "level": levels}[trunk]
    if labels is None:
        raise InputError("trunk", f"trunk={trunk!r} needs the {trunk} of every column (`{trunk}s`)")
    lab = np.asarray(labels).astype(str)[cols]
    return {str(name): np.flatnonzero(lab == name) for name in pd.unique(lab)}


def encoder_name(kind: str, part: str, n_parts: int) -> str:
    """``"linear"`` / ``"nonlinear"`` for a shared trunk, else ``"<kind>.<part>"``."""
    return kind if n_parts == 1 and part == "all" else f"{kind}.{part}"


def make_encoder(n_features: int, n_outputs: int, *, hidden: int, n_blocks: int, activation, seed: int) -> ResidualMLP:
    """The paper's eq. 7 encoder, initialised from ``seed`` (``activation=None``: the linear one)."""
    torch.manual_seed(seed)
    return ResidualMLP(n_features, n_outputs, hidden=hidden, n_blocks=n_blocks, activation=activation)


def take_columns(A, pos):
    """``A[:, pos]``: ``A`` itself (no copy) when the sorted, unique ``pos`` is every column."""
    return A if len(pos) == A.shape[1] else A[:, pos]


def fit_encoders(Xz, Yz, rows: dict, partitions: dict, *, cols, hidden: int, n_blocks: int, activation: str,
                 seed: int, fit_kw: dict, device, checkpoint=None, progress=False, stop=check_stop):
    """Fit the linear and the nonlinear encoder of every partition.

    Parameters
    ----------
    Xz : ndarray (N, D); Yz : ndarray (N, V) float32
        z-scored features and responses.
    rows : {"train": slice, "val": slice, ...}
        Where each split lies in the rows of ``Xz`` / ``Yz`` (:func:`jnecore.analysis.split_order`).
    partitions : {name: positions into cols}, from :func:`trunk_partitions`
    cols : ndarray of int (n_usable,)
    fit_kw : dict
        lr, weight_decay, max_epochs, patience, batch_size for :func:`jnecore.fit_encoder`.
    checkpoint : object with ``load(name) -> (model, history) | None`` and ``save(name, model,
        history)``, optional (see :class:`jnecore.analysis.EncoderCheckpoint`)

    Returns
    -------
    encoders : {name: ResidualMLP} on the CPU
    histories : {name: dict}
    """
    tr, va = rows["train"], rows["val"]
    encoders, histories = {}, {}
    for part, pos in partitions.items():
        ycols = np.asarray(cols)[pos]
        data = None
        for kind in ENCODER_KINDS:
            name = encoder_name(kind, part, len(partitions))
            model = make_encoder(Xz.shape[1], len(ycols), hidden=hidden, n_blocks=n_blocks,
                                 activation=activation if kind == "nonlinear" else None, seed=seed)
            found = checkpoint.load(name, model.config) if checkpoint is not None else None
            if found is not None:
                encoders[name], hist = found
                histories[name] = dict(hist, resumed=True)
                continue
            if data is None:
                data = (Xz[tr], take_columns(Yz[tr], ycols), Xz[va], take_columns(Yz[va], ycols))
            hist = fit_encoder(model, *data, device=device, seed=seed, progress=progress, stop=stop, **fit_kw)
            encoders[name], histories[name] = model.cpu(), hist.to_dict()
            if checkpoint is not None:
                checkpoint.save(name, encoders[name], histories[name])
        del data
        gc.collect()
    return encoders, histories


def predict(model, X, device) -> np.ndarray:
    """``model(X)`` without gradients, as a float32 numpy array (n, n_outputs)."""
    with torch.no_grad():
        return model.to(device)(torch.as_tensor(np.asarray(X, dtype=np.float32), device=device)).cpu().numpy()


def score_encoders(X_test, Y_test, encoders: dict, partitions: dict, *, n_boot: int, alpha: float, seed: int,
                   device):
    """Test R^2 of both encoders, and the bootstrap significance of the nonlinear one.

    Parameters
    ----------
    X_test : ndarray (n_test, D); Y_test : ndarray (n_test, n_usable)
    encoders : {name: model}; partitions : {name: positions into the usable columns}

    Returns
    -------
    r2_linear : ndarray (n_usable,)
    significance : :class:`jnecore.scoring.Significance` of the nonlinear encoder, arrays (n_usable,)
    """
    r2_lin = np.empty(Y_test.shape[1])
    pred = np.empty(Y_test.shape, dtype=np.float32)  # the nonlinear encoder's, for the bootstrap
    for part, pos in partitions.items():
        name = encoder_name("linear", part, len(partitions))
        r2_lin[pos] = r2_score(take_columns(Y_test, pos), predict(encoders[name], X_test, device))
        pred[:, pos] = predict(encoders[encoder_name("nonlinear", part, len(partitions))], X_test, device)
    sig = bootstrap_significance(Y_test, pred, n_boot=n_boot, alpha=alpha, seed=seed)
    return r2_lin, sig


def subset_outputs(model: ResidualMLP, columns) -> ResidualMLP:
    """A copy of ``model`` whose readout keeps only the output ``columns`` (n_keep,)."""
    sub = ResidualMLP(**dict(model.config, n_outputs=len(columns)))
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    idx = torch.as_tensor(np.asarray(columns), dtype=torch.long)
    state["readout.weight"] = state["readout.weight"][idx]
    if "readout.bias" in state:
        state["readout.bias"] = state["readout.bias"][idx]
    sub.load_state_dict(state)
    return sub.eval()


def _oom_types() -> tuple:
    types = []
    for mod in (torch.cuda, torch):
        t = getattr(mod, "OutOfMemoryError", None)
        if isinstance(t, type) and t not in types:
            types.append(t)
    return tuple(types) or (RuntimeError,)


def _jne_with_retry(model, X, *, norm, device, batch_size, progress, warnings):
    """compute_jne; a CUDA out-of-memory error halves the sample chunk and retries."""
    bs, retries = batch_size, []
    while True:
        try:
            return compute_jne(model, X, norm=norm, device=device, batch_size=bs, progress=progress), retries
        except _oom_types():
            if bs == 1:
                raise InputError("device", "out of GPU memory computing JNE even one stimulus at a time: "
                                           "free the GPU or use the CPU") from None
            new = max(1, (int(bs) if bs else len(X)) // 2)
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            warnings.append(f"out of GPU memory computing JNE with batch size {bs or 'auto'}: retried with {new}")
            retries.append({"batch_size": bs, "retry_with": new})
            bs = new


def compute_maps(X_test, encoders: dict, partitions: dict, significant, *, cols, n_columns: int, norm: str,
                 device, batch_size=None, progress=False, warnings=None, stop=check_stop):
    """JNE and JNE-SS of the nonlinear encoders on the test stimuli, for the significant columns.

    Parameters
    ----------
    X_test : ndarray (n_test, D)
    significant : ndarray of bool (n_usable,)
    cols : ndarray of int (n_usable,); n_columns : int (V)

    Returns
    -------
    jne : ndarray of float64 (V,), NaN where not computed
    jne_ss : ndarray of float32 (n_test, V), NaN where not computed
    info : dict
        Method, seconds, chunk sizes and out-of-memory retries, per partition.
    """
    warnings = [] if warnings is None else warnings
    cols = np.asarray(cols)
    jne = np.full(n_columns, np.nan)
    ss = np.full((len(X_test), n_columns), np.nan, dtype=np.float32)
    info = {}
    for part, pos in partitions.items():
        stop()
        keep = pos[np.asarray(significant)[pos]]
        if not len(keep):
            continue
        model = encoders[encoder_name("nonlinear", part, len(partitions))]
        sub = subset_outputs(model, np.searchsorted(pos, keep))
        res, retries = _jne_with_retry(sub, X_test, norm=norm, device=device, batch_size=batch_size,
                                       progress=progress, warnings=warnings)
        jne[cols[keep]] = res.jne
        ss[:, cols[keep]] = res.ss
        info[part] = dict(method=res.method, seconds=res.seconds, batch_size=res.batch_size,
                          voxel_batch_size=res.voxel_batch_size, n_columns=int(len(keep)), oom_retries=retries)
    return jne, ss, info


def group_stimuli(X_test, categories=None, *, grouping: str = "auto", n_clusters=None, k_max: int = 60,
                  seed: int = 0):
    """Stimulus groups of the test stimuli for JNE-SS summaries.

    Parameters
    ----------
    X_test : ndarray (n_test, D), z-scored features
    categories : array of str (n_test,), optional
    grouping : {"auto", "categories", "clusters", "both", "none"}
        ``auto``: the categories when given, else t-SNE + k-means clusters (the paper's grouping).

    Returns
    -------
    groups : DataFrame (n_test rows)
        ``category`` (the labels, or "all") and, when clustered, ``cluster``.
    info : dict
        The clustering's summary (k, silhouette scores), empty when not clustered.
    warnings : list of str
    """
    n = len(X_test)
    if grouping == "categories" and categories is None:
        raise InputError("grouping", "'categories' needs the stimulus categories (groups)")
    cats = np.asarray(categories).astype(str) if categories is not None else np.full(n, "all")
    groups = pd.DataFrame({"category": cats})
    if not (grouping in ("clusters", "both") or (grouping == "auto" and categories is None)):
        return groups, {}, []
    if n < 4:
        return groups, {}, [f"only {n} test stimuli: too few to cluster"]
    k_range = range(2, max(2, min(k_max, n // 3)) + 1)
    cl = cluster_stimuli(X_test, k_range=k_range, n_clusters=n_clusters, seed=seed)
    groups["cluster"] = cl.names
    return groups, cl.summary(), []
