"""Stimulus groups when there are no category labels: t-SNE of the features, then k-means.

The paper groups NSD's 1000 test images this way and picks the number of clusters by the
silhouette score (it found 43). Here:

1. the (z-scored) test features (N, D) are embedded in 2-D with t-SNE (scikit-learn, PCA
   initialisation, perplexity min(30, (N - 1) / 3), seeded);
2. k-means (seeded, ``n_init`` restarts) is run on the embedding for every k in ``k_range``
   (default 2 .. min(60, N // 3));
3. the k with the highest silhouette score on the embedding wins (ties: the smaller k).

Everything is deterministic for a seed on one machine. Cluster names are ``c00``, ``c01``, ...
ordered by cluster size (largest first), then by the embedding's first coordinate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["ClusterResult", "cluster_stimuli", "GROUPINGS", "cluster_names"]

GROUPINGS = ("auto", "categories", "clusters", "both", "none")


@dataclass
class ClusterResult:
    """What :func:`cluster_stimuli` returns.

    labels : ndarray (N,) int, cluster of each stimulus (0 = largest cluster)
    names : ndarray (N,) str, ``c00``-style names of ``labels``
    k : int, the number of clusters chosen
    silhouette : {k: score} for every k tried
    embedding : ndarray (N, 2), the t-SNE embedding
    """

    labels: np.ndarray
    names: np.ndarray
    k: int
    silhouette: dict = field(default_factory=dict)
    embedding: np.ndarray | None = None

    def summary(self) -> dict:
        return {"method": "t-SNE (2-D) + k-means, k by silhouette", "k": int(self.k),
                "silhouette": {str(k): round(float(v), 6) for k, v in self.silhouette.items()},
                "sizes": np.bincount(self.labels).tolist()}


def cluster_names(labels) -> np.ndarray:
    """``c00``, ``c01``, ... for integer cluster labels (width 2, or more above 100 clusters)."""
    labels = np.asarray(labels, dtype=int)
    width = max(2, len(str(int(labels.max()) if labels.size else 0)))
    return np.asarray([f"c{int(x):0{width}d}" for x in labels], dtype=str)


def _relabel(labels, emb):
    """Renumber clusters by size (largest first), ties by mean first embedding coordinate."""
    uniq = np.unique(labels)
    order = sorted(uniq, key=lambda c: (-(labels == c).sum(), float(emb[labels == c, 0].mean())))
    remap = {c: i for i, c in enumerate(order)}
    return np.asarray([remap[c] for c in labels], dtype=int)


def cluster_stimuli(features, *, k_range=None, n_clusters: int | None = None, seed: int = 0,
                    perplexity: float | None = None, n_init: int = 10) -> ClusterResult:
    """Cluster stimuli by t-SNE of their features plus k-means, k chosen by silhouette.

    Parameters
    ----------
    features : array (N, D), N >= 4
    k_range : iterable of int, candidate numbers of clusters (default 2 .. min(60, N // 3));
        values outside [2, N - 1] are dropped
    n_clusters : int, optional; use this k instead of choosing by silhouette
    seed : int; t-SNE and k-means random state
    perplexity : float, optional (default min(30, (N - 1) / 3))

    Returns
    -------
    ClusterResult
    """
    from sklearn.cluster import KMeans
    from sklearn.manifold import TSNE
    from sklearn.metrics import silhouette_score

    X = np.asarray(features, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"features must be (N, D), got shape {X.shape}")
    N = X.shape[0]
    if N < 4:
        raise ValueError(f"need at least 4 stimuli to cluster, got {N}")
    if not np.isfinite(X).all():
        raise ValueError("features contain NaN or inf")
    perp = perplexity if perplexity is not None else min(30.0, (N - 1) / 3.0)
    perp = float(min(max(perp, 1.0), N - 1.0 - 1e-6))
    # PCA initialisation needs two feature columns; one column starts from a random layout instead
    init = "pca" if X.ndim == 2 and X.shape[1] >= 2 else "random"
    tsne = TSNE(n_components=2, perplexity=perp, init=init, random_state=seed, learning_rate="auto")
    emb = tsne.fit_transform(X)
    if n_clusters is not None:
        ks = [int(n_clusters)]
        if not 1 <= ks[0] <= N:
            raise ValueError(f"n_clusters must lie in [1, {N}], got {n_clusters}")
    else:
        ks = sorted({int(k) for k in (k_range if k_range is not None else range(2, max(2, min(60, N // 3)) + 1))
                     if 2 <= int(k) <= N - 1})
        if not ks:
            ks = [2]
    scores = {}
    best = None
    for k in ks:
        km = KMeans(n_clusters=k, n_init=n_init, random_state=seed)
        lab = km.fit_predict(emb)
        if len(ks) == 1:
            score = silhouette_score(emb, lab) if 2 <= len(np.unique(lab)) <= N - 1 else float("nan")
        else:
            score = silhouette_score(emb, lab) if len(np.unique(lab)) > 1 else -1.0
        scores[k] = float(score)
        if best is None or (np.isfinite(score) and score > best[0] + 1e-12):
            best = (score, k, lab)
    _, k, lab = best
    labels = _relabel(lab, emb)
    return ClusterResult(labels=labels, names=cluster_names(labels), k=int(k), silhouette=scores, embedding=emb)
