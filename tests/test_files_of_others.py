"""Files written by others (issue 14, item 7): the test and atlas data nibabel and nilearn ship, read
through our readers (each gives a value or the one-line InputError), gzipped GIfTI, and GIfTI data
arrays oriented from their intent and the mesh, not from the shape alone."""

from __future__ import annotations

import gzip
import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

from jnecore.io import file_kind, read_array, read_responses, read_table
from jnecore.io._neuro import read_cifti_labels, read_gifti_oriented, read_surface_labels
from jnecore.validation import InputError

nib = pytest.importorskip("nibabel")


def _installed_data_files() -> list:
    """Files under the ``data`` folders of the installed nibabel and nilearn that our readers know."""
    found = []
    for pkg in ("nibabel", "nilearn"):
        spec = importlib.util.find_spec(pkg)
        if spec is None or not spec.submodule_search_locations:
            continue
        root = Path(list(spec.submodule_search_locations)[0])
        for dirpath, _, files in os.walk(root):
            if "data" not in Path(dirpath).relative_to(root).parts:
                continue
            found += [Path(dirpath) / f for f in sorted(files) if file_kind(f) and not f.endswith(".py")]
    return sorted(found)


FILES = _installed_data_files()


def _read(path: Path):
    """Our reader for ``path`` (by kind), returning a value."""
    kind = file_kind(path)
    if kind in ("gifti", "mgh", "cifti"):
        if path.name.endswith((".label.gii", ".label.gii.gz")) or "annot" in path.name:
            return read_surface_labels(path, "gifti-label")
        return read_responses([str(path)])
    if kind == "nifti":
        return read_responses([str(path)], mask=str(path))  # the image as its own mask: 3-D ones read
    if kind in ("annot", "label", "gifti-label"):
        return read_surface_labels(path, kind, n_vertices=163842)
    if kind == "cifti-label":
        return read_cifti_labels(path)
    if kind == "array":
        return read_array(str(path))
    return read_table(path)


@pytest.mark.skipif(not FILES, reason="neither nibabel nor nilearn ships data files here")
def test_installed_data_files_give_a_value_or_one_line(capsys):
    outcomes = {}
    for path in FILES:
        try:
            _read(path)
            outcomes[path.name] = "value"
        except InputError as exc:
            msg = str(exc)
            assert msg.startswith(str(path)) and "\n" not in msg, msg
            outcomes[path.name] = msg
        # anything else escapes and fails the test, naming the file in its traceback
    values = [n for n, o in outcomes.items() if o == "value"]
    with capsys.disabled():
        print(f"\n{len(FILES)} installed data files: {len(values)} read, {len(FILES) - len(values)} one-line errors")
    assert len(values) >= len(FILES) // 3  # most real files are read, not refused


def _installed(name):
    hits = [p for p in FILES if p.name == name]
    if not hits:
        pytest.skip(f"{name} is not installed")
    return hits[0]


def test_real_gzipped_and_single_map_gifti():
    r = read_responses([str(_installed("sulc_left.gii.gz"))])  # nilearn's fsaverage5 sulcal depth
    assert (r.data.shape, r.space, set(r.hemi)) == ((1, 10242), "fsaverage5", {"left"})
    want = np.asarray(nib.load(str(_installed("sulc_left.gii.gz"))).darrays[0].data, np.float32)
    np.testing.assert_array_equal(r.data[0], want)
    data, _, assumed = read_gifti_oriented(_installed("rh.shape.curv.gii"))  # nibabel's: one (V, 1) array
    assert data.shape == (1, 133764) and "read as 1 sample of 133764 vertices" in assumed
    with pytest.raises(InputError, match=r"holds a surface mesh \(pointset \(vertex coordinates\), triangle"):
        read_responses([str(_installed("ascii.gii"))])


# ------------------------------------------------------------------------------ synthetic GIfTI


def _gifti(path, arrays, intent="NIFTI_INTENT_NONE"):
    img = nib.gifti.GiftiImage(darrays=[nib.gifti.GiftiDataArray(np.asarray(a, np.float32), intent=intent)
                                        for a in arrays])
    nib.save(img, str(path))
    return path


@pytest.mark.parametrize("shape,samples,words", [
    ((10242, 1), 1, "read as 1 sample of 10242 vertices (10242 is a mesh size)"),
    ((10242, 7), 7, "read as 7 samples of 10242 vertices (10242 is a mesh size)"),
    ((7, 10242), 7, "read as 7 samples of 10242 vertices (10242 is a mesh size)"),
    ((500, 1), 1, "read as 1 sample of 500 vertices (GIfTI's first dimension indexes vertices)"),
    ((500, 30), 30, "read as 30 samples of 500 vertices (GIfTI's first dimension indexes vertices)"),
])
def test_gifti_orientation_from_the_mesh_then_the_convention(tmp_path, shape, samples, words):
    a = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    data, _, assumed = read_gifti_oriented(_gifti(tmp_path / "lh.x.func.gii", [a]), known_sizes=(10242, 32492))
    want = a if shape[1] == 10242 else a.T  # independent: vertices are the axis of mesh length, else Dim0
    np.testing.assert_array_equal(data, want)
    assert data.shape[0] == samples and words in assumed


def test_gifti_time_series_arrays_and_gz(tmp_path):
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(4, 642)).astype(np.float32)
    p = _gifti(tmp_path / "lh.t.func.gii", list(maps), intent="NIFTI_INTENT_TIME_SERIES")
    gz = tmp_path / "lh.t.func.gii.gz"
    gz.write_bytes(gzip.compress(p.read_bytes()))
    for f in (p, gz):
        r = read_responses([str(f)])
        np.testing.assert_array_equal(r.data, maps)
        assert r.space == "none" and "4 data arrays read as 4 samples of 642 vertices" in r.warnings[0]


def test_the_error_says_what_was_assumed(tmp_path):
    p = _gifti(tmp_path / "lh.m.func.gii", [np.zeros((500, 1))])
    with pytest.raises(InputError, match=r"has 500 vertices per hemisphere but `space` fsaverage5 has 10242 \(its one "
                                         r"\(500, 1\) array read as 1 sample of 500 vertices \(GIfTI's first dimension"):
        read_responses([str(p)], space="fsaverage5")
    mesh = nib.gifti.GiftiImage(darrays=[
        nib.gifti.GiftiDataArray(np.zeros((4, 3), np.float32), intent="NIFTI_INTENT_POINTSET"),
        nib.gifti.GiftiDataArray(np.array([[0, 1, 2]], np.int32), intent="NIFTI_INTENT_TRIANGLE")])
    nib.save(mesh, str(tmp_path / "lh.white.gii"))
    with pytest.raises(InputError, match="holds a surface mesh"):
        read_responses([str(tmp_path / "lh.white.gii")])
