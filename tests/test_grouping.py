"""Stimulus grouping without categories: t-SNE + k-means with k by silhouette (jnecore.grouping),
and ``jne run --groups``: clusters in stimuli.parquet and the roi_cluster table."""

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import adjusted_rand_score

from jnecore.bundle import load_bundle
from jnecore.cli import main
from jnecore.grouping import cluster_names, cluster_stimuli


pytestmark = pytest.mark.usefixtures("one_thread")


def _blobs(n_per=30, k=4, d=10, seed=0, spread=0.4):
    rng = np.random.default_rng(seed)
    centres = 5.0 * np.eye(k, d) + rng.normal(scale=0.5, size=(k, d))  # well separated, equidistant
    truth = np.repeat(np.arange(k), n_per)
    X = centres[truth] + spread * rng.normal(size=(len(truth), d))
    perm = rng.permutation(len(truth))
    return X[perm], truth[perm]


def test_planted_clusters_are_recovered():
    X, truth = _blobs()
    res = cluster_stimuli(X, seed=0)
    assert res.k == 4
    assert adjusted_rand_score(truth, res.labels) > 0.95
    assert set(res.silhouette) == set(range(2, 41)) and res.silhouette[4] == max(res.silhouette.values())
    assert res.embedding.shape == (120, 2)
    assert np.bincount(res.labels).tolist() == sorted(np.bincount(res.labels).tolist(), reverse=True)
    assert res.names[0].startswith("c") and len(res.names[0]) == 3


def test_deterministic_for_a_seed_and_fixed_k():
    X, truth = _blobs(n_per=15, k=3, seed=1)
    a = cluster_stimuli(X, seed=3, k_range=range(2, 8))
    b = cluster_stimuli(X, seed=3, k_range=range(2, 8))
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_allclose(a.embedding, b.embedding)
    fixed = cluster_stimuli(X, seed=0, n_clusters=5)
    assert fixed.k == 5 and len(np.unique(fixed.labels)) == 5
    with pytest.raises(ValueError, match="at least 4"):
        cluster_stimuli(X[:3])


def test_cluster_names_width():
    assert list(cluster_names([0, 3, 12])) == ["c00", "c03", "c12"]
    assert cluster_names([120])[0] == "c120"


FAST = ["--hidden", "16", "--max-epochs", "30", "--n-boot", "50", "--quiet", "--device", "cpu"]


def _run_data(tmp_path, n=200):
    X, groups = _blobs(n_per=n // 4, k=4, d=6, seed=2, spread=0.5)
    rng = np.random.default_rng(0)
    W = rng.normal(size=(6, 8))
    Y = X @ W + 2.0 * np.abs(X[:, :1]) + 0.2 * rng.normal(size=(len(X), 8))
    np.save(tmp_path / "X.npy", X.astype(np.float32))
    np.save(tmp_path / "Y.npy", Y.astype(np.float32))
    pd.DataFrame({"roi": ["V1"] * 4 + ["PPA"] * 4}).to_csv(tmp_path / "rois.csv", index=False)
    pd.DataFrame({"category": np.where(groups % 2 == 0, "even", "odd")}).to_csv(tmp_path / "cats.csv", index=False)
    return X, groups


def _run(tmp_path, out, *extra):
    return main(["run", "--features", str(tmp_path / "X.npy"), "--responses", str(tmp_path / "Y.npy"),
                 "--rois", str(tmp_path / "rois.csv"), "--out", str(tmp_path / out), *FAST, *extra])


def test_run_auto_groups_clusters_without_categories(tmp_path):
    X, groups = _run_data(tmp_path)
    assert _run(tmp_path, "auto") == 0
    b = load_bundle(tmp_path / "auto")
    test = b.test_stimuli
    assert "cluster" in test and test["cluster"].notna().all()
    assert b.stimuli.loc[b.stimuli["split"] != "test", "cluster"].isna().all()
    truth = groups[test["stimulus"].astype(int).to_numpy()]
    assert adjusted_rand_score(truth, test["cluster"]) > 0.9  # 20 test stimuli in 4 planted groups
    assert "roi_cluster" in b.table_names
    rc = b.table("roi_cluster")
    assert list(rc.columns) == list(b.table("roi_group").columns)
    assert set(rc["group"]) == set(test["cluster"]) and set(rc["roi"]) <= {"V1", "PPA"}
    assert b.manifest["grouping"]["k"] == test["cluster"].nunique()
    assert b.manifest["config"]["grouping"] == "auto"


def test_run_groups_options(tmp_path, capsys):
    _run_data(tmp_path)
    assert _run(tmp_path, "cats", "--categories", str(tmp_path / "cats.csv")) == 0  # auto + categories: no clusters
    b = load_bundle(tmp_path / "cats")
    assert "cluster" not in b.stimuli and "roi_cluster" not in b.table_names
    assert set(b.table("roi_group")["group"]) == {"even", "odd"}
    assert _run(tmp_path, "both", "--categories", str(tmp_path / "cats.csv"), "--groups", "both",
                "--n-clusters", "3") == 0
    b = load_bundle(tmp_path / "both")
    assert b.test_stimuli["cluster"].nunique() == 3 and "roi_cluster" in b.table_names
    assert _run(tmp_path, "none", "--groups", "none") == 0
    assert "cluster" not in load_bundle(tmp_path / "none").stimuli
    capsys.readouterr()
    assert _run(tmp_path, "bad", "--groups", "categories") == 2
    assert capsys.readouterr().err.strip() == "error: --groups: 'categories' needs --categories"
