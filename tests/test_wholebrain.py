"""Whole-brain fsaverage bundles (V = 327,684 vertices, NSD's surface space) in the dashboard.

:func:`write_wholebrain_bundle` builds a synthetic one in seconds (also used by
benchmarks/bench_wholebrain_dashboard.py): every fsaverage vertex modelled, 180 parcels per
hemisphere (the most posterior ones named after the visual hierarchy), a small JNE-SS.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

N7, N5 = 163842, 10242
V = 2 * N7
MAX_JSON = 5_000_000
VISUAL = ["V1", "V2", "V3", "V4", "FFC", "PHA1", "LO1", "LO2", "VVC", "PIT", "V3A", "V3B", "MT", "PH", "TPOJ1"]


def _parcels(n_per_hemi: int, rng) -> tuple:
    """(roi name per fsaverage vertex (V,), level per vertex (V,)): Voronoi parcels of random
    fsaverage5 seeds on the sphere, carried to fsaverage by the fsaverage5 cells."""
    from jnecore import atlas
    from jnecore.atlas._meshes import fsaverage_cells

    by_vertex = fsaverage_cells().tocsc()
    cell_of = by_vertex.indices[by_vertex.indptr[:-1]]  # (163842,) a cell holding each fsaverage vertex
    names, hemi_parcel = [], []
    for hemi, tag in (("left", "L"), ("right", "R")):
        sphere = atlas.load_mesh("fsaverage5", "sphere", hemi).coords.astype(float)
        pial_y = atlas.load_mesh("fsaverage5", "pial", hemi).coords[:, 1]
        seeds = rng.choice(N5, n_per_hemi, replace=False)
        seeds = seeds[np.argsort(pial_y[seeds])]  # most posterior first
        parcel5 = np.argmax(sphere @ sphere[seeds].T, axis=1)  # nearest seed on the sphere
        label = np.array(VISUAL + [f"{tag}{i:03d}" for i in range(len(VISUAL), n_per_hemi)], dtype=object)
        names.append(label)
        hemi_parcel.append(label[parcel5[cell_of]])
    roi = np.concatenate(hemi_parcel).astype(str)
    return roi, atlas.roi_level(roi)


def write_wholebrain_bundle(out, *, n_test: int = 20, seed: int = 0, parcels: int = 180) -> Path:
    """Write a synthetic whole-brain fsaverage bundle to ``out`` and return its path.

    Every one of the 327,684 fsaverage vertices is a row (left then right); about 40% are
    significant and carry JNE (higher for higher levels) and JNE-SS (``n_test`` stimuli in four
    categories); the rest are NaN. Stored summary tables are included, as ``jne run`` writes them.
    """
    from jnecore.bundle import summary_tables, write_bundle

    rng = np.random.default_rng(seed)
    roi, level = _parcels(parcels, rng)
    r2_lin = rng.uniform(-0.02, 0.2, V)
    r2_non = r2_lin + rng.uniform(0, 0.1, V)
    significant = rng.random(V) < 0.4
    base = pd.Series(level).map({"primary": 0.1, "intermediate": 0.2, "higher": 0.35, "other": 0.15}).to_numpy()
    jne = np.where(significant, base * rng.lognormal(0, 0.2, V), np.nan)
    v = pd.DataFrame({"vertex": np.arange(V, dtype=np.int64), "hemi": np.repeat(["left", "right"], N7), "roi": roi,
                      "level": level, "r2_linear": r2_lin, "r2_nonlinear": r2_non, "p": np.where(significant, 0.001, 0.5),
                      "p_fdr": np.where(significant, 0.01, 0.6), "significant": significant, "jne": jne,
                      "noise_ceiling": rng.uniform(10, 60, V)})
    categories = np.array(["person", "animal", "vehicle", "outdoor"])[np.arange(n_test) % 4]
    ss = (rng.gamma(2.0, 0.01, (n_test, V)) * (1 + np.arange(n_test)[:, None] % 4)).astype(np.float32)
    ss[:, ~significant] = np.nan
    stimuli = pd.DataFrame({"stimulus": [f"img{i:05d}" for i in range(n_test + 80)],
                            "split": ["test"] * n_test + ["train"] * 80,
                            "category": np.r_[categories, np.array(["person"] * 80)]})
    tables = summary_tables(v, ss, pd.DataFrame({"category": categories}))
    manifest = {"space": "fsaverage", "config": {"synthetic": "whole-brain fsaverage test bundle", "seed": seed},
                "name": "whole-brain fsaverage (synthetic)", "simulated": True,
                "label": "Synthetic whole-brain fsaverage bundle (random values) for tests and benchmarks."}
    return write_bundle(out, vertices=v, jne_ss=ss, stimuli=stimuli, manifest=manifest, tables=tables,
                        overwrite=True)


@pytest.fixture(scope="module")
def wholebrain(tmp_path_factory):
    return write_wholebrain_bundle(tmp_path_factory.mktemp("wholebrain") / "fsaverage_wb")


def test_wholebrain_bundle_reads_only_the_columns_asked(wholebrain):
    from jnecore.bundle import load_bundle

    b = load_bundle(wholebrain)
    assert b.space == "fsaverage" and len(b.vertices) == V and b.jne_ss.shape == (20, V)
    cols = b.vertex_columns(["vertex", "jne"])
    assert list(cols.columns) == ["vertex", "jne"] and len(cols) == V
    pd.testing.assert_frame_equal(cols, b.vertices[["vertex", "jne"]])
    with pytest.raises(KeyError, match="no_such_column"):
        b.vertex_columns(["vertex", "no_such_column"])


@pytest.fixture()
def maps_page(wholebrain, monkeypatch):
    pytest.importorskip("streamlit.testing.v1")
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("JNE_BUNDLE_ROOTS", str(wholebrain))
    page = Path(__file__).resolve().parents[1] / "dashboard" / "pages" / "1_Cortical_maps.py"
    at = AppTest.from_file(str(page), default_timeout=180)
    at.run()
    return at


def _surface(at):
    """(message size, layout meta, [vertex, value] (n_shown, 2)) of the page's surface map (its viewer)."""
    from _viewer import viewer_figure

    size, fig, custom = viewer_figure(at)
    return size, fig["layout"]["meta"], custom


def test_maps_page_draws_the_cell_means(maps_page, wholebrain):
    from jnecore import atlas
    from jnecore.bundle import load_bundle

    at = maps_page
    assert not at.exception and not at.error, [e.value for e in list(at.exception) + list(at.error)]
    size, meta, custom = _surface(at)
    assert size <= MAX_JSON and meta["space"] == "fsaverage5"
    # the map is the mean over each fsaverage5 vertex's cell of the significant vertices' JNE
    b = load_bundle(wholebrain)
    full = np.full(V, np.nan)
    sig = b.vertices["significant"].to_numpy()
    full[b.vertices["vertex"].to_numpy()[sig]] = b.vertices["jne"].to_numpy()[sig]
    expect = atlas.fsaverage_to_fsaverage5(full)
    got = np.full(2 * N5, np.nan)
    got[custom[:, 0].astype(int)] = custom[:, 1]
    np.testing.assert_allclose(got, expect.astype(np.float32), rtol=1e-6, equal_nan=True)
    assert not np.allclose(got[:N5], full[:N5], equal_nan=True)  # not the nested pick
    assert any("averaged" in c.value and "fsaverage5" in c.value for c in at.caption)


def test_maps_page_jne_ss_group_on_the_whole_brain(maps_page, wholebrain):
    from jnecore import atlas
    from jnecore.bundle import load_bundle

    at = maps_page
    at.selectbox(key="map_metric").select("JNE-SS: mean over a stimulus group").run()
    at.selectbox(key="map_group").select("vehicle").run()
    assert not at.exception and not at.error, [e.value for e in list(at.exception) + list(at.error)]
    size, meta, custom = _surface(at)
    b = load_bundle(wholebrain)
    rows = np.flatnonzero(b.test_stimuli["category"].to_numpy() == "vehicle")
    per_vertex = np.asarray(b.jne_ss, dtype=np.float64)[rows].mean(axis=0)
    per_vertex[~b.vertices["significant"].to_numpy()] = np.nan
    expect = atlas.fsaverage_to_fsaverage5(per_vertex)
    got = np.full(2 * N5, np.nan)
    got[custom[:, 0].astype(int)] = custom[:, 1]
    assert size <= MAX_JSON and meta["value_name"] == "JNE-SS (vehicle)"
    np.testing.assert_allclose(got, expect.astype(np.float32), rtol=1e-5, equal_nan=True)


if __name__ == "__main__":  # write one for a manual look: python tests/test_wholebrain.py DIR
    import sys

    print(write_wholebrain_bundle(sys.argv[1] if len(sys.argv) > 1 else os.path.join("/tmp", "fsaverage_wb")))
