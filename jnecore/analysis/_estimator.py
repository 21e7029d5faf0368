"""``JNEAnalysis``: the paper's whole analysis as one scikit-learn-style estimator.

Parameters live in ``__init__`` and nothing else happens there; ``fit`` validates them and the
data, then runs the stages of :mod:`jnecore.analysis._split` and :mod:`jnecore.analysis._stages`.
Fitted attributes end in ``_``. The CLI (``jne run``), ``jne demo`` and the bundle writer are
adapters around it: a notebook needs none of them.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

import numpy as np
from sklearn.base import BaseEstimator

from ..backend import resolve_device
from ..cancel import check_stop
from ..encoders import ACTIVATIONS
from ..grouping import GROUPINGS
from ..jacobian import NORMS
from ..validation import InputError, check_choice
from ._split import split_order, split_stimuli, standardize
from ._stages import (TRUNKS, compute_maps, fit_encoders, group_stimuli, score_encoders, take_columns,
                      trunk_partitions)

__all__ = ["JNEAnalysis", "PARAMETER_RULES", "FIT_PARAMETERS"]

#: the range of every numeric parameter and the choices of every named one: (kind, low, high)
#: with the bounds inclusive (None: unbounded), or ("choice", options)
PARAMETER_RULES = {
    "hidden": ("int", 1, None), "n_blocks": ("int", 0, None), "max_epochs": ("int", 1, None),
    "patience": ("int", 1, None), "n_boot": ("int", 1, None), "seed": ("int", 0, 2**32 - 1),
    "n_clusters": ("int", 1, None), "k_max": ("int", 2, None), "fit_batch_size": ("int", 1, None),
    "jne_batch_size": ("int", 1, None), "alpha": ("open", 0.0, 1.0), "test_fraction": ("open", 0.0, 1.0),
    "val_fraction": ("open", 0.0, 1.0), "lr": ("open", 0.0, None), "weight_decay": ("float", 0.0, None),
    "activation": ("choice", tuple(ACTIVATIONS)), "norm": ("choice", NORMS), "grouping": ("choice", GROUPINGS),
    "trunk": ("choice", TRUNKS), "baseline": ("choice", (None, "ridge")),
}

#: parameters that change the fitted encoders (and so a checkpoint's key)
FIT_PARAMETERS = ("hidden", "n_blocks", "activation", "max_epochs", "patience", "lr", "weight_decay", "seed",
                  "test_fraction", "val_fraction", "fit_batch_size", "trunk")


def _check_param(name, value, rule):
    kind = rule[0]
    if kind == "choice":
        check_choice(value, rule[1], name)
        return
    if value is None and name in ("n_clusters", "fit_batch_size", "jne_batch_size"):
        return
    integer = kind == "int"
    ok_type = isinstance(value, (int, np.integer)) if integer else isinstance(value, (int, float, np.number))
    if isinstance(value, bool) or not ok_type:
        raise InputError(name, f"must be {'an integer' if integer else 'a number'}, got {value!r}")
    lo, hi = rule[1], rule[2]
    if kind == "open":
        bad = not (value > lo and (hi is None or value < hi))
        span = f"in ({lo:g}, {hi:g})" if hi is not None else f"> {lo:g}"
    else:
        bad = (lo is not None and value < lo) or (hi is not None and value > hi)
        span = (f"{'an integer ' if integer else ''}>= {lo}" if hi is None
                else f"{'an integer ' if integer else ''}in [{lo}, {hi}]")
    if bad or (not integer and not np.isfinite(value)):
        raise InputError(name, f"must be {span}, got {value!r}")


#: the largest magnitude whose square is finite in float32 (z-scoring squares every value)
_HUGE = float(np.sqrt(np.finfo(np.float32).max))


def _count_huge(a, rows: int = 2048) -> int:
    """How many finite entries of ``a`` (N, ...) exceed :data:`_HUGE` in magnitude, read in row chunks."""
    n = 0
    for i in range(0, len(a), rows):
        c = np.asarray(a[i:i + rows])
        if c.dtype.kind == "f":
            with np.errstate(invalid="ignore"):
                n += int(np.count_nonzero(np.isfinite(c) & (np.abs(c) > _HUGE)))  # inf: handled elsewhere
        elif c.dtype.kind in "iu":
            n += int(np.count_nonzero(np.abs(c.astype(np.float64)) > _HUGE))
    return n


class _Timer(dict):
    """Seconds per stage; the stop hook is honoured between stages too."""

    def __init__(self, stop):
        super().__init__()
        self._stop = stop

    @contextmanager
    def step(self, name):
        self._stop()
        t0 = time.perf_counter()
        yield
        self[name] = round(time.perf_counter() - t0, 3)
        self._stop()


class JNEAnalysis(BaseEstimator):
    """Fit linear and nonlinear encoders, select voxels, and compute JNE / JNE-SS.

    Parameters
    ----------
    hidden, n_blocks : int
        Width and residual blocks of the paper's encoder (eq. 7): 1024 and 2.
    activation : {"relu", "leaky_relu", "gelu", "silu", "tanh"}
        The nonlinear encoder's activation (the linear encoder has none).
    norm : {"l1", "l2", "zl1", "zl2"}
        Norm of a Jacobian row's deviation: "l1" is the paper's; the others are this project's
        variants (see :func:`jnecore.compute_jne`).
    n_boot, alpha : int, float
        Bootstrap resamples of the test rows and the FDR level of the voxel selection.
    device : str
        "auto" (a CUDA GPU when there is one), "cpu", "cuda" or "cuda:N".
    seed : int in [0, 2**32)
        Seeds the split, the initialisation, the batches, the bootstrap and the clustering.
    max_epochs, patience, lr, weight_decay, fit_batch_size :
        Training (AdamW on MSE, early stopping; ``fit_batch_size=None`` is full batch, the paper's).
    test_fraction, val_fraction : float
        Random split when ``fit`` gets no ``split``: test share, then validation share of the rest.
    jne_batch_size : int, optional
        Stimuli per Jacobian chunk (default: from free memory).
    grouping : {"auto", "categories", "clusters", "both", "none"}
        Stimulus groups for JNE-SS; "auto" uses the categories when given, else clusters.
    n_clusters, k_max : int
        A fixed number of clusters, or the largest k tried by the silhouette choice.
    trunk : {"shared", "level", "roi"}
        "shared" (the paper): one encoder for all voxels. "level" / "roi": one encoder pair per
        hierarchy level / ROI, fitted on its own voxels, so one region's learned nonlinearity does
        not leak into another's readout.
    baseline : {None, "ridge"}
        Also fit a per-voxel-alpha ridge regression, the field's standard linear encoder.

    Attributes
    ----------
    split_ : ndarray of str (N,)
    usable_ : ndarray of bool (V,)
        Columns that are finite and vary over the training rows (the others are not modelled).
    linear_, nonlinear_ : ResidualMLP, or {partition: ResidualMLP} when ``trunk`` is not "shared"
    partitions_ : {name: ndarray of int}
        The columns (indices into V) each encoder pair was fitted on.
    r2_linear_, r2_nonlinear_, p_, q_ : ndarray (V,), NaN for unusable columns
    significant_ : ndarray of bool (V,)
    jne_ : ndarray (V,), NaN where not computed
    jne_ss_ : ndarray of float32 (n_test, V), NaN where not computed
    groups_ : DataFrame (n_test rows): ``category`` and, when clustered, ``cluster``
    r2_ridge_, ridge_alphas_ : ndarray (V,), with ``baseline="ridge"``
    fit_history_, jne_info_, grouping_info_, timings_ : dict
    device_ : torch.device
    warnings_ : list of str
    """

    def __init__(self, hidden: int = 1024, n_blocks: int = 2, activation: str = "relu", norm: str = "l1",
                 n_boot: int = 200, alpha: float = 0.05, device: str = "auto", seed: int = 0,
                 max_epochs: int = 512, patience: int = 8, lr: float = 1e-3, weight_decay: float = 0.01,
                 fit_batch_size: int | None = None, test_fraction: float = 0.1, val_fraction: float = 0.1111,
                 jne_batch_size: int | None = None, grouping: str = "auto", n_clusters: int | None = None,
                 k_max: int = 60, trunk: str = "shared", baseline: str | None = None):
        self.hidden = hidden
        self.n_blocks = n_blocks
        self.activation = activation
        self.norm = norm
        self.n_boot = n_boot
        self.alpha = alpha
        self.device = device
        self.seed = seed
        self.max_epochs = max_epochs
        self.patience = patience
        self.lr = lr
        self.weight_decay = weight_decay
        self.fit_batch_size = fit_batch_size
        self.test_fraction = test_fraction
        self.val_fraction = val_fraction
        self.jne_batch_size = jne_batch_size
        self.grouping = grouping
        self.n_clusters = n_clusters
        self.k_max = k_max
        self.trunk = trunk
        self.baseline = baseline

    # ---------------------------------------------------------------------------------------
    def check_params(self):
        """Check every parameter against :data:`PARAMETER_RULES` (InputError naming it); returns
        the resolved device."""
        params = self.get_params()
        for name, rule in PARAMETER_RULES.items():
            _check_param(name, params[name], rule)
        if self.baseline == "ridge":
            import importlib.util

            if importlib.util.find_spec("himalaya") is None:
                raise InputError("baseline", "'ridge' needs himalaya: pip install 'jnecore[baseline]'")
        try:
            return resolve_device(self.device)
        except (ValueError, RuntimeError) as exc:
            raise InputError("device", str(exc)) from None

    def _check_data(self, X, Y, split, groups, rois, levels):
        from ..validation import check_matrix

        X = check_matrix(X, "X", name="features", min_rows=6)
        if not hasattr(Y, "shape") or len(Y.shape) != 2:
            Y = check_matrix(Y, "Y", name="responses", finite=False, min_rows=6)
        if np.dtype(Y.dtype).kind not in "biuf":
            raise InputError("Y", f"responses must be numeric, got dtype {Y.dtype}")
        N, V = Y.shape
        for name, a, what in (("X", X, "features"), ("Y", Y, "responses")):
            n = _count_huge(a)
            if n:
                raise InputError(name, f"{n} {what} value(s) above {_HUGE:.3g} in magnitude, whose squares "
                                       "overflow float32: rescale them before fitting")
        if len(X) != N:
            raise InputError("Y", f"has {N} rows but X has {len(X)}: one row per stimulus in both")
        for name, a, n in (("split", split, N), ("groups", groups, N), ("rois", rois, V), ("levels", levels, V)):
            if a is not None and len(a) != n:
                raise InputError(name, f"has {len(a)} entries but there are {n} {'stimuli' if n == N else 'columns'}")
        if split is not None:
            bad = set(np.asarray(split).astype(str)) - {"train", "val", "test"}
            if bad:
                raise InputError("split", f"holds {sorted(bad)[:3]}: use train, val and test")
        if self.trunk != "shared" and (rois if self.trunk == "roi" else levels) is None:
            raise InputError("trunk", f"trunk={self.trunk!r} needs `{'rois' if self.trunk == 'roi' else 'levels'}`")
        return X, Y

    # ---------------------------------------------------------------------------------------
    def fit(self, X, Y, *, split=None, groups=None, rois=None, levels=None, test_index=None,
            checkpoint=None, progress: bool = False, stop=check_stop) -> "JNEAnalysis":
        """Run the analysis on features ``X`` and responses ``Y``.

        Parameters
        ----------
        X : array (N, D), finite
            Stimulus features (ANN activations).
        Y : array (N, V)
            Responses (voxels or vertices); may be a read-only memory map. Columns that hold
            NaN / inf or are constant over the training rows are left out (``usable_``).
        split : array of str (N,), optional
            "train" / "val" / "test" per stimulus; default from ``test_index`` or a seeded random
            split (``test_fraction``, ``val_fraction``).
        groups : array (N,), optional
            Stimulus categories for the JNE-SS summaries.
        rois, levels : array of str (V,), optional
            ROI and hierarchy level of each column (needed by ``trunk="roi"`` / ``"level"``).
        test_index : array of int, optional
            Row indices of the test set, when ``split`` is not given.
        checkpoint : :class:`EncoderCheckpoint`, optional
            Saves each encoder once fitted and reuses those it holds.
        progress : bool
            Progress bars on stderr.
        stop : callable
            Called between stages, batches and Jacobian chunks; raises to cancel.

        Returns
        -------
        self
        """
        device = self.check_params()
        X, Y = self._check_data(X, Y, split, groups, rois, levels)
        self.device_, self.warnings_, self.timings_ = device, [], _Timer(stop)
        with self.timings_.step("split"):
            self._split_and_standardize(X, Y, split, test_index)
        te = self.split_ == "test"
        if self.n_clusters is not None and self.grouping in ("auto", "clusters", "both") and self.n_clusters > te.sum():
            raise InputError("n_clusters", f"must be at most the number of test stimuli ({int(te.sum())}), "
                                           f"got {self.n_clusters}")
        with self.timings_.step("grouping"):
            cats = np.asarray(groups).astype(str)[te] if groups is not None else None
            self.groups_, self.grouping_info_, w = group_stimuli(
                self._Xz[self._rows["test"]], cats, grouping=self.grouping, n_clusters=self.n_clusters, k_max=self.k_max,
                seed=self.seed)
            self.warnings_ += w
        self._fit_encoders(rois, levels, checkpoint, progress, stop)
        with self.timings_.step("scoring"):
            self._score()
        with self.timings_.step("jne"):
            self._maps(progress, stop)
        if self.baseline == "ridge":
            with self.timings_.step("baseline"):
                self._fit_ridge()
        self.timings_ = dict(self.timings_)
        del self._Xz, self._Yz  # the z-scored working copies (N x V float32) are not kept
        return self

    def _split_and_standardize(self, X, Y, split, test_index):
        N, V = Y.shape
        self.split_ = (np.asarray(split).astype(str) if split is not None else
                       split_stimuli(N, test_index=test_index, test_fraction=self.test_fraction,
                                     val_fraction=self.val_fraction, seed=self.seed))
        train = self.split_ == "train"
        order, self._rows = split_order(self.split_)  # train, val, test rows contiguous: stages take views
        self._Xz = standardize(X, train, order=order).data
        self._Yz, self.usable_ = standardize(Y, train, order=order)
        n_bad = int((~self.usable_).sum())
        if n_bad == V:
            raise InputError("Y", "every column is constant or non-finite: nothing to model")
        if n_bad:
            self.warnings_.append(f"{n_bad} of {V} response columns are constant or non-finite; they are excluded")
        self.n_features_in_, self.n_outputs_ = X.shape[1], V

    def _fit_encoders(self, rois, levels, checkpoint, progress, stop):
        cols = np.flatnonzero(self.usable_)
        parts = trunk_partitions(self.trunk, cols, rois, levels)
        fit_kw = dict(lr=self.lr, weight_decay=self.weight_decay, max_epochs=self.max_epochs,
                      patience=self.patience, batch_size=self.fit_batch_size)
        with self.timings_.step("fit"):
            encoders, self.fit_history_ = fit_encoders(
                self._Xz, self._Yz, self._rows, parts, cols=cols, hidden=self.hidden, n_blocks=self.n_blocks,
                activation=self.activation, seed=self.seed, fit_kw=fit_kw, device=self.device_,
                checkpoint=checkpoint, progress=progress, stop=stop)
        for kind in ("linear", "nonlinear"):  # seconds spent fitting each kind, over the partitions
            self.timings_[f"fit_{kind}"] = round(sum(h.get("seconds", 0.0) for n, h in self.fit_history_.items()
                                                     if n.split(".")[0] == kind and not h.get("resumed")), 3)
        self._parts, self._cols, self.encoders_ = parts, cols, encoders
        self.partitions_ = {str(name): cols[pos] for name, pos in parts.items()}
        if self.trunk == "shared":
            self.linear_, self.nonlinear_ = encoders["linear"], encoders["nonlinear"]
        else:
            self.linear_ = {str(p): encoders[f"linear.{p}"] for p in parts}
            self.nonlinear_ = {str(p): encoders[f"nonlinear.{p}"] for p in parts}

    def _full(self, values, fill=np.nan, dtype=float):
        out = np.full(self.n_outputs_, fill, dtype=dtype)
        out[self._cols] = values
        return out

    def _score(self):
        te = self._rows["test"]
        y_test = take_columns(self._Yz[te], self._cols)
        r2_lin, sig = score_encoders(self._Xz[te], y_test, self.encoders_, self._parts, n_boot=self.n_boot,
                                     alpha=self.alpha, seed=self.seed, device=self.device_)
        self._sig_usable = sig.significant
        self.r2_linear_, self.r2_nonlinear_ = self._full(r2_lin), self._full(sig.r2)
        self.p_, self.q_ = self._full(sig.p), self._full(sig.q)
        self.significant_ = self._full(sig.significant, False, bool)

    def _maps(self, progress, stop):
        te = self._rows["test"]
        if not self._sig_usable.any():
            self.warnings_.append("no column passed the significance test: JNE was not computed")
        self.jne_, self.jne_ss_, self.jne_info_ = compute_maps(
            self._Xz[te], self.encoders_, self._parts, self._sig_usable, cols=self._cols,
            n_columns=self.n_outputs_, norm=self.norm, device=self.device_, batch_size=self.jne_batch_size,
            progress=progress, warnings=self.warnings_, stop=stop)

    def _fit_ridge(self):
        from ..encoders import fit_ridge
        from ..scoring import r2_score

        fit, te = slice(0, self._rows["test"].start), self._rows["test"]  # train + val rows, then test
        res = fit_ridge(self._Xz[fit], take_columns(self._Yz[fit], self._cols), self._Xz[te], device=self.device_,
                        seed=self.seed)
        self.r2_ridge_ = self._full(r2_score(take_columns(self._Yz[te], self._cols), res.predictions))
        self.ridge_alphas_ = self._full(res.best_alphas)

    def memory_estimate(self, n_stimuli: int, n_outputs: int, n_features: int, *, n_test: int | None = None,
                        largest_partition: int | None = None, responses_itemsize: int = 4):
        """The estimated peak memory of ``fit`` on data of this size (:func:`estimate_memory`).

        Parameters
        ----------
        n_stimuli, n_outputs, n_features : int
            N, V and D.
        n_test : int, optional
            Test stimuli (default ``round(N * test_fraction)``).
        largest_partition : int, optional
            Columns of the largest encoder with ``trunk`` "roi" / "level" (default V).
        responses_itemsize : int
            Bytes per response value as given.

        Returns
        -------
        MemoryEstimate
        """
        from ._memory import estimate_memory

        device = self.check_params()
        n_test = int(round(n_stimuli * self.test_fraction)) if n_test is None else int(n_test)
        n_train = int(round((n_stimuli - n_test) * (1 - self.val_fraction)))
        return estimate_memory(n_stimuli, n_outputs, n_features, hidden=self.hidden, n_blocks=self.n_blocks,
                               n_test=n_test, n_train=n_train, fit_batch_size=self.fit_batch_size,
                               largest_partition=largest_partition, responses_itemsize=responses_itemsize,
                               device=device.type)

    # ---------------------------------------------------------------------------------------
    @property
    def n_test_(self) -> int:
        """Number of test stimuli (rows of ``jne_ss_``)."""
        return int((self.split_ == "test").sum())
