"""Result bundle: round trip, schema validation, atomic writes."""

import json

import numpy as np
import pandas as pd
import pytest

from jnecore.bundle import (SCHEMA_VERSION, BundleError, find_bundles, load_bundle, validate_bundle,
                            write_bundle)
from jnecore.encoders import ResidualMLP
from jnecore.validation import InputError


def _parts(n_test=4, n_vert=6, seed=0):
    rng = np.random.default_rng(seed)
    vertices = pd.DataFrame({
        "vertex": np.arange(n_vert) * 3, "hemi": ["L"] * 3 + ["R"] * (n_vert - 3),
        "roi": ["V1", "V1", "FFC", "V1", "FFC", "V2"][:n_vert],
        "level": ["primary", "primary", "higher", "primary", "higher", "intermediate"][:n_vert],
        "r2_linear": rng.random(n_vert), "r2_nonlinear": rng.random(n_vert), "p_fdr": rng.random(n_vert),
        "significant": [True, False, True, True, True, False][:n_vert], "jne": rng.random(n_vert),
    })
    ss = rng.random((n_test, n_vert)).astype(np.float32)
    ss[:, 1] = np.nan
    stimuli = pd.DataFrame({"stimulus": [f"s{i}" for i in range(n_test + 3)],
                            "split": ["test"] * n_test + ["train", "train", "val"],
                            "category": ["face", "body"] * ((n_test + 3) // 2) + ["face"] * ((n_test + 3) % 2)})
    return vertices, ss, stimuli


def test_round_trip(tmp_path):
    vertices, ss, stimuli = _parts()
    model = ResidualMLP(5, 6, hidden=8)
    table = pd.DataFrame({"roi": ["V1"], "mean": [0.5]})
    out = write_bundle(tmp_path / "b", vertices=vertices, jne_ss=ss, stimuli=stimuli,
                       manifest={"space": "fsLR32k", "config": {"seed": 0}}, tables={"my_summary": table},
                       encoders={"nonlinear": model})
    b = load_bundle(out)
    pd.testing.assert_frame_equal(b.vertices, vertices)
    pd.testing.assert_frame_equal(b.stimuli, stimuli)
    np.testing.assert_array_equal(np.asarray(b.jne_ss), ss)
    assert b.jne_ss.dtype == np.float32
    assert len(b.test_stimuli) == 4 and list(b.test_stimuli["stimulus"]) == ["s0", "s1", "s2", "s3"]
    pd.testing.assert_frame_equal(b.table("my_summary"), table)  # not a contract table: any columns
    assert b.manifest["schema_version"] == SCHEMA_VERSION and b.space == "fsLR32k"
    assert b.manifest["config"] == {"seed": 0} and "created" in b.manifest
    loaded = b.encoder("nonlinear")
    for (k, v), (k2, v2) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and (v == v2).all()
    assert validate_bundle(out) == []
    assert find_bundles(tmp_path) == [out.resolve()]
    # no temporary directory is left beside the bundle
    assert [p.name for p in tmp_path.iterdir()] == ["b"]


@pytest.mark.parametrize("mutate, message", [
    (lambda v, s, st, m: v.drop(columns="jne"), "lacks columns jne"),
    (lambda v, s, st, m: v.assign(level=["primary", "bogus"] + ["higher"] * 4), "unknown hierarchy levels"),
    (lambda v, s, st, m: v.assign(vertex=[0, 0, 1, 2, 3, 4]), "repeats a vertex"),
])
def test_write_refuses_bad_vertices(tmp_path, mutate, message):
    vertices, ss, stimuli = _parts()
    with pytest.raises(BundleError, match=message):
        write_bundle(tmp_path / "b", vertices=mutate(vertices, ss, stimuli, None), jne_ss=ss, stimuli=stimuli,
                     manifest={"space": "none", "config": {}})
    assert not (tmp_path / "b").exists()


def test_write_refuses_bad_shape_and_space(tmp_path):
    vertices, ss, stimuli = _parts()
    with pytest.raises(BundleError, match="jne_ss has shape"):
        write_bundle(tmp_path / "b", vertices=vertices, jne_ss=ss[:3], stimuli=stimuli, manifest={"space": "none"})
    with pytest.raises(BundleError, match="space"):
        write_bundle(tmp_path / "b", vertices=vertices, jne_ss=ss, stimuli=stimuli, manifest={"space": "mni"})
    assert list(tmp_path.iterdir()) == []


def test_existing_out_is_refused_and_untouched(tmp_path):
    vertices, ss, stimuli = _parts()
    out = tmp_path / "b"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="exists and is not empty"):
        write_bundle(out, vertices=vertices, jne_ss=ss, stimuli=stimuli, manifest={"space": "none"})
    assert (out / "keep.txt").read_text() == "mine"
    write_bundle(out, vertices=vertices, jne_ss=ss, stimuli=stimuli, manifest={"space": "none"}, overwrite=True)
    assert not (out / "keep.txt").exists() and load_bundle(out).space == "none"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_load_reports_broken_bundles(tmp_path):
    vertices, ss, stimuli = _parts()
    out = write_bundle(tmp_path / "b", vertices=vertices, jne_ss=ss, stimuli=stimuli, manifest={"space": "none"})
    man = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text(json.dumps(dict(man, schema_version="9.0")))
    with pytest.raises(BundleError, match="schema version 9.0"):
        load_bundle(out)
    (out / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        load_bundle(out)
    (out / "manifest.json").write_text(json.dumps(man))
    np.save(out / "jne_ss.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    b = load_bundle(out)  # opens without its JNE-SS (all NaN, never unpickled), the problem kept
    assert [p.part for p in b.problems] == ["jne_ss"] and "pickled" in b.problems[0].message
    assert b.jne_ss.shape == (4, 6) and np.isnan(b.jne_ss).all()
    assert validate_bundle(tmp_path) and "no manifest.json" in validate_bundle(tmp_path)[0]
