"""Volume results on the fsaverage5 surface: MNI volumes are projected, native ones stay tables.

(a) the projection puts a left-occipital MNI pattern on left-occipital fsaverage5 vertices and
leaves vertices with no modelled voxel NaN; (b) the decision helper; (c) ``jne run
--volume-space`` records the space in the manifest, and the maps page draws the MNI bundle on
fsaverage5.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from jnecore.atlas import load_mesh, surface_view_available, volume_space, volume_to_fsaverage5
from jnecore.cli import main

N5 = 10242
# MNI152 2 mm grid
SHAPE_2MM = (91, 109, 91)
AFFINE_2MM = np.array([[-2.0, 0, 0, 90], [0, 2, 0, -126], [0, 0, 2, -72], [0, 0, 0, 1]])
# a coarse 8 mm grid over the same MNI box (small files for the CLI run)
SHAPE_8MM = (23, 28, 23)
AFFINE_8MM = np.array([[-8.0, 0, 0, 90], [0, 8, 0, -126], [0, 0, 8, -72], [0, 0, 0, 1]])


def _pial(hemi):
    return np.asarray(load_mesh("fsaverage5", "pial", hemi).coords, dtype=float)


def _cortex_voxels(affine, hemis=("left", "right")):
    """Voxels (n, 3) holding at least one fsaverage5 pial vertex: a cortex-ish mask, C order."""
    inv = np.linalg.inv(affine)
    coords = np.concatenate([_pial(h) for h in hemis])
    ijk = np.rint(coords @ inv[:3, :3].T + inv[:3, 3]).astype(np.int64)
    return np.unique(ijk, axis=0)


def _xyz(ijk, affine):
    return ijk @ affine[:3, :3].T + affine[:3, 3]


# ------------------------------------------------------------------------------- (a) projection


def test_left_occipital_pattern_lands_on_left_occipital_vertices():
    ijk = _cortex_voxels(AFFINE_2MM)
    xyz = _xyz(ijk, AFFINE_2MM)
    values = ((xyz[:, 0] < 0) & (xyz[:, 1] < -70)).astype(float)  # left occipital cortex = 1, else 0
    proj = volume_to_fsaverage5(values, ijk, AFFINE_2MM, SHAPE_2MM)
    assert proj.shape == (2 * N5,)
    left, right = proj[:N5], proj[N5:]
    occ = _pial("left")[:, 1] < -85
    assert occ.sum() > 50
    assert np.isfinite(left[occ]).all() and np.mean(left[occ]) > 0.9
    frontal = _pial("right")[:, 1] > 30
    fr = right[frontal]
    assert np.all(np.isnan(fr) | (np.abs(fr) < 1e-6))
    # everything in the right hemisphere is 0 (modelled, value 0) or NaN: never the occipital value
    assert np.nanmax(np.abs(right)) < 1e-6


def test_vertices_without_a_modelled_voxel_are_nan():
    ijk = _cortex_voxels(AFFINE_8MM, hemis=("left",))
    xyz = _xyz(ijk, AFFINE_8MM)
    ijk = ijk[(xyz[:, 1] < -60) & (xyz[:, 0] < -20)]  # lateral left occipital voxels only
    values = np.linspace(1.0, 2.0, len(ijk))
    values[0] = np.nan  # a NaN voxel counts as not modelled, never as 0
    proj = volume_to_fsaverage5(values, ijk, AFFINE_8MM, SHAPE_8MM, kind="ball", radius=3.0)
    assert np.isnan(proj[N5:]).all()  # right hemisphere: nothing modelled
    left = proj[:N5]
    front = _pial("left")[:, 1] > 0
    assert np.isnan(left[front]).all()
    finite = left[np.isfinite(left)]
    assert finite.size > 20 and finite.min() >= 1.0 - 1e-9 and finite.max() <= 2.0 + 1e-9
    with pytest.raises(ValueError, match="ijk must be"):
        volume_to_fsaverage5(values[:3], ijk, AFFINE_8MM, SHAPE_8MM)


# ------------------------------------------------------------------------- (b) decision helper


def test_surface_view_available_decision():
    vol = {"affine": AFFINE_2MM.tolist(), "shape": list(SHAPE_2MM)}
    assert surface_view_available({"space": "volume", "volume": dict(vol, space="mni")})
    assert not surface_view_available({"space": "volume", "volume": dict(vol, space="native")})
    assert not surface_view_available({"space": "volume", "volume": vol})  # older bundles: native
    assert not surface_view_available({"space": "volume", "volume": {"space": "mni"}})  # no affine
    assert not surface_view_available({"space": "none"})
    assert not surface_view_available({})
    for space in ("fsLR32k", "fsaverage5", "fsaverage"):
        assert surface_view_available({"space": space})
    assert volume_space({"space": "volume", "volume": dict(vol, space="MNI")}) == "mni"
    assert volume_space({"space": "volume", "volume": vol}) == "native"
    assert volume_space({"space": "fsLR32k"}) is None


# ------------------------------------------------------------------------- (c) CLI and the page


FAST = ["--hidden", "8", "--max-epochs", "5", "--n-boot", "20", "--quiet", "--device", "cpu", "--groups", "none"]


def _volume_inputs(tmp_path, n=40):
    """A coarse 4-D MNI volume (8 mm) with signal in left-occipital and right-frontal cortex voxels."""
    rng = np.random.default_rng(0)
    ijk = _cortex_voxels(AFFINE_8MM)
    xyz = _xyz(ijk, AFFINE_8MM)
    keep = ((xyz[:, 0] < 0) & (xyz[:, 1] < -70)) | ((xyz[:, 0] > 0) & (xyz[:, 1] > 40))
    ijk = ijk[keep]
    X = rng.standard_normal((n, 5)).astype(np.float32)
    Y = X @ rng.standard_normal((5, len(ijk))) + 0.5 * rng.standard_normal((n, len(ijk)))
    vol = np.zeros(SHAPE_8MM + (n,), np.float32)
    mask = np.zeros(SHAPE_8MM, np.uint8)
    vol[ijk[:, 0], ijk[:, 1], ijk[:, 2]] = Y.T
    mask[ijk[:, 0], ijk[:, 1], ijk[:, 2]] = 1
    np.save(tmp_path / "X.npy", X)
    nib.save(nib.Nifti1Image(vol, AFFINE_8MM), str(tmp_path / "bold.nii.gz"))
    nib.save(nib.Nifti1Image(mask, AFFINE_8MM), str(tmp_path / "mask.nii.gz"))
    return ijk


def _run(tmp_path, out, *extra):
    return main(["run", "--features", str(tmp_path / "X.npy"), "--responses", str(tmp_path / "bold.nii.gz"),
                 "--mask", str(tmp_path / "mask.nii.gz"), "--out", str(out), *FAST, *extra])


def test_cli_records_volume_space_and_maps_page_projects(tmp_path, monkeypatch, capsys):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    ijk = _volume_inputs(tmp_path)
    out = tmp_path / "mni"
    assert _run(tmp_path, out, "--volume-space", "mni") == 0
    man = json.loads((out / "manifest.json").read_text())
    assert man["space"] == "volume" and man["volume"]["space"] == "mni"
    assert np.allclose(man["volume"]["affine"], AFFINE_8MM) and man["volume"]["shape"] == list(SHAPE_8MM)
    assert surface_view_available(man)

    native = tmp_path / "native"
    assert _run(tmp_path, native) == 0  # default: native
    man_n = json.loads((native / "manifest.json").read_text())
    assert man_n["volume"]["space"] == "native" and not surface_view_available(man_n)

    capsys.readouterr()
    assert _run(tmp_path, tmp_path / "bad", "--volume-space", "talairach") == 2
    assert "error: --volume-space: unknown value 'talairach': use one of native, mni" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
    np.save(tmp_path / "Y.npy", np.random.default_rng(1).standard_normal((40, 6)).astype(np.float32))
    assert main(["run", "--features", str(tmp_path / "X.npy"), "--responses", str(tmp_path / "Y.npy"),
                 "--out", str(tmp_path / "bad"), "--volume-space", "mni", *FAST]) == 2
    assert "error: --volume-space: applies to NIfTI volume responses only" in capsys.readouterr().err

    # the projection of the bundle's own voxel columns covers left occipital vertices only on the left
    import pandas as pd

    v = pd.read_parquet(out / "vertices.parquet")
    got = v[["voxel_i", "voxel_j", "voxel_k"]].to_numpy()
    np.testing.assert_array_equal(got, ijk)
    proj = volume_to_fsaverage5(v["r2_linear"].to_numpy(float), got, man["volume"]["affine"], man["volume"]["shape"])
    assert np.isfinite(proj[:N5][_pial("left")[:, 1] < -85]).mean() > 0.8
    lp = _pial("left")
    assert np.isnan(proj[:N5][(lp[:, 1] > 20) & (lp[:, 0] < -20)]).all()  # lateral left frontal: no voxel

    # the maps page (one AppTest run): the MNI bundle is drawn on fsaverage5 with a projection caption
    pytest.importorskip("streamlit.testing.v1")
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("JNE_BUNDLE_ROOTS", str(out))
    page = Path(__file__).resolve().parents[1] / "dashboard" / "pages" / "1_Cortical_maps.py"
    at = AppTest.from_file(str(page), default_timeout=120)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert any("Projection" in c.value and "not a registration" in c.value for c in at.caption)
    from _viewer import viewer_figure

    assert viewer_figure(at)[1]["layout"]["meta"].get("space") == "fsaverage5"
    assert not any("not in MNI space" in i.value for i in at.info)
