"""Ridge-regression baseline encoder: the field's standard voxel-wise encoding model.

One linear map from features to every voxel, with a ridge penalty chosen per voxel by K-fold
cross-validation, fitted with himalaya's :class:`~himalaya.ridge.RidgeCV` on its torch backend
(``torch`` on the CPU, ``torch_cuda`` on a GPU). himalaya is optional
(``pip install 'jnecore[baseline]'``) and imported only when a ridge is fitted.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from ..backend import memory_budget, resolve_device
from ..cancel import check_stop

__all__ = ["DEFAULT_ALPHAS", "RidgeResult", "fit_ridge"]

#: 17 penalties, 1e-2 to 1e6, half a decade apart.
DEFAULT_ALPHAS = np.logspace(-2, 6, 17)

_MISSING = "the ridge baseline needs himalaya: pip install 'jnecore[baseline]'"


@dataclass(frozen=True)
class RidgeResult:
    """Output of :func:`fit_ridge`.

    Attributes
    ----------
    predictions : ndarray (n_test, V), float32
        ``X_test @ coef + intercept``.
    best_alphas : ndarray (V,), float64
        The penalty each voxel chose (one of ``alphas``).
    coef : ndarray (D, V), float32
        Weights refitted on the whole training set with each voxel's best alpha.
    intercept : ndarray (V,), float32
        Zeros unless ``fit_intercept=True``.
    cv_scores : ndarray (V,), float32
        Cross-validated score at the best alpha: minus the mean squared error, averaged over folds.
    """

    predictions: np.ndarray
    best_alphas: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    cv_scores: np.ndarray


def _import_himalaya():
    try:
        import himalaya.backend
        import himalaya.ridge
    except ImportError as exc:
        raise ImportError(_MISSING) from exc
    return himalaya


@contextmanager
def _himalaya_backend(himalaya, dev: torch.device):
    """Set himalaya's torch backend for ``dev`` and restore the previous backend afterwards."""
    previous = himalaya.backend.get_backend().name
    backend = himalaya.backend.set_backend("torch_cuda" if dev.type == "cuda" else "torch")
    try:
        if dev.type == "cuda":
            with torch.cuda.device(dev):
                yield backend
        else:
            yield backend
    finally:
        himalaya.backend.set_backend(previous)


def _f32(a, name: str, ndim: int = 2) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric, got dtype {a.dtype}")
    if a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {a.shape}")
    a = np.ascontiguousarray(a, dtype=np.float32)  # no copy when already float32 and C-ordered
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or inf")
    return a


def _check_inputs(X_train, Y_train, X_test, alphas):
    X, Y, Xt = _f32(X_train, "X_train"), _f32(Y_train, "Y_train"), _f32(X_test, "X_test")
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"X_train has {X.shape[0]} rows but Y_train has {Y.shape[0]}: one row per stimulus")
    if Xt.shape[1] != X.shape[1]:
        raise ValueError(f"X_test has {Xt.shape[1]} features but X_train has {X.shape[1]}")
    a = np.asarray(alphas, dtype=np.float64).ravel()
    if a.size == 0 or not (np.isfinite(a).all() and (a > 0).all()):
        raise ValueError("alphas must be a non-empty list of positive finite penalties")
    return X, Y, Xt, np.sort(a)


def _splitter(cv, n: int, seed: int):
    """``cv`` as a list of (train, test) index arrays; an int is a shuffled, seeded K-fold."""
    from sklearn.model_selection import KFold

    if isinstance(cv, (int, np.integer)):
        if not 2 <= cv <= n:
            raise ValueError(f"cv must be between 2 and the {n} training rows, got {cv}")
        cv = KFold(n_splits=int(cv), shuffle=True, random_state=seed)
    splits = list(cv.split(np.empty((n, 1)))) if hasattr(cv, "split") else list(cv)
    if not splits or any(len(tr) == 0 or len(te) == 0 for tr, te in splits):
        raise ValueError("cv must give at least one split with non-empty train and test rows")
    return [(np.asarray(tr), np.asarray(te)) for tr, te in splits]


def _batches(splits, n: int, D: int, V: int, n_alphas: int, budget: int) -> dict:
    """himalaya's batch sizes so that one batch of work stays within ``budget`` bytes.

    Cross-validation holds, per alpha, the (D, n_train) resolution matrix and its (n_val,
    n_train) product with the validation features, then (n_alphas_batch, n_val, n_targets_batch)
    predictions and squared errors; the refit holds (n_alphas_batch, D, n) and (n_alphas_batch,
    D, n_targets_batch_refit).
    """
    n_tr = max(len(tr) for tr, _ in splits)
    n_val = max(len(te) for _, te in splits)
    n_alphas_batch = int(np.clip(budget // (4 * (D + n_val) * n_tr), 1, n_alphas))
    n_targets_batch = int(np.clip(budget // (8 * n_alphas_batch * n_val), 1, V))
    refit = int(np.clip((budget - 4 * n_alphas_batch * D * n) // (4 * n_alphas_batch * D + 4 * n), 1, V))
    return dict(n_alphas_batch=n_alphas_batch, n_targets_batch=n_targets_batch, n_targets_batch_refit=refit)


def fit_ridge(X_train, Y_train, X_test, *, alphas=DEFAULT_ALPHAS, cv=5, fit_intercept: bool = False,
              device="auto", seed: int = 0) -> RidgeResult:
    """Fit a ridge regression per voxel with its own cross-validated penalty, then predict.

    For each voxel v, ``alpha_v`` maximises the K-fold mean of minus the validation mean squared
    error of ``argmin_b ||X b - y_v||^2 + alpha ||b||^2``; the weights are then refitted on all of
    ``X_train`` with ``alpha_v`` (himalaya's ``RidgeCV``, SVD solver, float32).

    Parameters
    ----------
    X_train : array (n_train, D)
        Training features, z-scored with training-set statistics by the caller.
    Y_train : array (n_train, V)
        Training responses, z-scored with training-set statistics. Used as float32 without a copy
        when it already is float32 and C-ordered.
    X_test : array (n_test, D)
        Test features, z-scored with the training-set statistics.
    alphas : array (n_alphas,)
        Candidate penalties (positive); default :data:`DEFAULT_ALPHAS` (1e-2 to 1e6).
    cv : int or splitter or list of (train, test) index arrays
        An int K is a shuffled K-fold seeded by ``seed``; a scikit-learn splitter or explicit
        splits are used as given.
    fit_intercept : bool
        Fit an unpenalised intercept per voxel (centring within each fold). Off by default, as
        z-scored inputs have zero training mean.
    device : "auto" | "cpu" | "cuda" | "cuda:N"
        Where himalaya computes (its ``torch`` or ``torch_cuda`` backend); the previously set
        himalaya backend is restored afterwards.
    seed : int
        Shuffles the K-fold when ``cv`` is an int.

    Returns
    -------
    RidgeResult
        ``predictions`` (n_test, V), ``best_alphas`` (V,), ``coef`` (D, V), ``intercept`` (V,),
        ``cv_scores`` (V,).

    Raises
    ------
    ImportError
        When himalaya is not installed.
    """
    himalaya = _import_himalaya()
    X, Y, Xt, alphas = _check_inputs(X_train, Y_train, X_test, alphas)
    dev = resolve_device(device)
    splits = _splitter(cv, X.shape[0], seed)
    n, D = X.shape
    params = _batches(splits, n, D, Y.shape[1], len(alphas), memory_budget(dev))
    y_in_cpu = dev.type == "cuda" and Y.nbytes > torch.cuda.mem_get_info(dev)[0] // 4
    check_stop()
    with _himalaya_backend(himalaya, dev) as backend:
        model = himalaya.ridge.RidgeCV(alphas=alphas, cv=splits, fit_intercept=fit_intercept, Y_in_cpu=y_in_cpu,
                                       solver_params=dict(params, warn=False))
        model.fit(X, Y)
        coef = np.ascontiguousarray(backend.to_numpy(model.coef_), dtype=np.float32)
        best = backend.to_numpy(model.best_alphas_).astype(np.float64)
        scores = backend.to_numpy(model.cv_scores_).astype(np.float32)
        icpt = backend.to_numpy(model.intercept_).astype(np.float32) if fit_intercept else np.zeros(Y.shape[1],
                                                                                                  np.float32)
        del model
    check_stop()
    # snap the float32 round trip (exp(-log(alpha))) back onto the grid
    best = alphas[np.abs(np.log(best)[:, None] - np.log(alphas)[None, :]).argmin(1)]
    pred = Xt @ coef
    pred += icpt
    return RidgeResult(predictions=pred, best_alphas=best, coef=coef, intercept=icpt, cv_scores=scores)
