"""split_figure / join_figure: what the maps page's browser viewer is sent, and what it draws from it."""

import numpy as np
import pytest

from jnecore import atlas
from jnecore.plotting import decode_payload, join_figure, plot_surface_map, plot_surface_views, split_figure

N5 = 10242


def trace(fig, name):
    return next(t for t in fig.data if t.name == name)


@pytest.fixture(scope="module")
def maps():
    """Two fsaverage5 maps of the left hemisphere: the same mesh, different values and thresholds."""
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 1, N5)
    a[:2000] = np.nan
    b = rng.uniform(0, 1, N5)
    fa = plot_surface_map(a, space="fsaverage5", hemi="left", threshold=0.2, vmin=0, vmax=1, outline_rois=False)
    fb = plot_surface_map(b, space="fsaverage5", hemi="left", threshold=0.5, vmin=0, vmax=1, outline_rois=False)
    return fa, fb


def test_the_viewer_draws_the_figure(maps):
    fa, _ = maps
    spec, index, payload, ids = split_figure(fa)
    assert set(index) == ids  # nothing held yet: every array travels
    fig = join_figure(spec, decode_payload(index, payload))
    s, d = fig["data"][0], fig["data"][1]
    so, do = trace(fa, "surface"), trace(fa, "data")
    # the surface layer: the same geometry, codes and text; customdata = [vertex]
    for k in ("x", "y", "z", "i", "j", "k", "intensity"):
        np.testing.assert_array_equal(np.asarray(s[k]), np.asarray(getattr(so, k)))
    np.testing.assert_array_equal(np.asarray(s["text"]).astype(str), np.asarray(so.text))
    np.testing.assert_array_equal(s["customdata"][:, 0], np.asarray(so.customdata)[:, 0])
    # the data layer: the figure's own, rebuilt from the surface's mesh and one value per vertex
    for k in ("x", "y", "z", "intensity", "customdata", "i", "j", "k"):
        np.testing.assert_allclose(np.asarray(d[k], dtype=float), np.asarray(getattr(do, k), dtype=float), atol=1e-5)
    np.testing.assert_array_equal(np.asarray(d["text"]).astype(str), np.asarray(do.text))
    shown = np.isin(s["customdata"][:, 0], d["customdata"][:, 0])
    # below the threshold or NaN: not shown (hidden vertices show only the background)
    vals = np.asarray(so.customdata)[:, 1]
    assert not (shown & ~(np.nan_to_num(vals, nan=-1) >= 0.2)).any()
    assert spec["presets"]["lateral"]["scene"]["eye"]["x"] < 0  # left hemisphere: lateral from -x
    assert "medial" in spec["presets"]


def test_a_change_of_values_sends_only_the_values(maps):
    fa, fb = maps
    spec_a, index_a, payload_a, ids_a = split_figure(fa)
    spec_b, index_b, payload_b, ids_b = split_figure(fb, sent=ids_a)
    assert spec_a["mesh"] == spec_b["mesh"] and spec_a["key"] != spec_b["key"]  # same mesh: the camera stays
    # only the data layer's values are new: one float32 per drawn vertex (the colour bar travels inline)
    assert [(e["t"], e["s"]) for e in index_b.values()] == [("float32", [N5])]
    assert len(payload_b) == 4 * N5 and len(payload_a) > 5 * len(payload_b)
    blobs = decode_payload(index_a, payload_a)
    blobs.update(decode_payload(index_b, payload_b))
    d = join_figure(spec_b, blobs)["data"][1]
    np.testing.assert_allclose(d["customdata"], trace(fb, "data").customdata)
    # the viewer without the mesh cannot draw: it must ask again
    with pytest.raises(KeyError):
        join_figure(spec_b, decode_payload(index_b, payload_b))
    # a new mesh (another surface) is a new mesh id
    fc = plot_surface_map(np.ones(N5), space="fsaverage5", hemi="left", surf_mesh="pial", outline_rois=False)
    assert split_figure(fc)[0]["mesh"] != spec_a["mesh"]


def test_panels_flat_and_string_arrays():
    v = atlas.visual_vertices()
    vals = np.linspace(0, 1, len(v))
    fig = plot_surface_views(vals, vertices=v["vertex"].to_numpy(), layout="2x2", highlight_roi="V1")
    spec, index, payload, _ = split_figure(fig)
    assert spec["presets"] == {}  # four fixed cameras
    joined = join_figure(spec, decode_payload(index, payload))
    data = [t for t in joined["data"] if t.get("name") == "data"]
    assert len(data) == 4 and len({t.get("scene") for t in data}) == 4
    # each panel's data layer has exactly the figure's values
    for t, o in zip(data, [t for t in fig.data if t.name == "data"]):
        np.testing.assert_array_equal(t["customdata"], np.asarray(o.customdata))
    # outlines: NaN breaks survive the binary encoding
    hl = next(t for t in joined["data"] if t.get("name") == "outline")  # many paths
    assert np.isnan(np.asarray(hl["x"], dtype=float)).any()
    flat = plot_surface_map(vals, vertices=v["vertex"].to_numpy(), surf_mesh="flat", hemi="left", outline_rois=False)
    spec, index, payload, _ = split_figure(flat)
    assert spec["presets"] == {}
    d = join_figure(spec, decode_payload(index, payload))["data"][1]
    assert np.allclose(np.asarray(d["z"]), 0.05)  # flat: the data layer just above the plane


def test_compact_forms_of_text_ids_and_the_data_layer(maps):
    """Per-vertex text travels as codes + labels, a run of vertex ids as a range, and the data layer
    as a lift of the surface's coordinates, and they decode to the figure's own arrays."""
    from jnecore.plotting._surface_stream import _Blobs, _resolve

    fa, _ = maps
    spec, index, payload, _ = split_figure(fa)
    s, d = spec["data"][0], spec["data"][1]
    assert set(s["text"]) == {"$cat", "labels"} and set(d["text"]) == {"$cat", "labels"}
    assert index[s["text"]["$cat"]["$ref"]]["t"] == "uint16"
    assert spec["roles"][0]["ids"] == {"$range": [0, N5]}  # left hemisphere: vertices 0 .. N5 - 1
    assert "x" not in d and d["lift"] == {"mm": 0.15, "flat": False}
    # the payload holds no float32 coordinate array for the data layer: x, y, z of the surface only
    assert sum(e["t"] == "float32" and e["s"] == [N5] for e in index.values()) == 4  # x, y, z, values
    # many distinct strings stay plain; ids that are not a run stay an array
    b = _Blobs()
    many = np.array([f"v{i}" for i in range(100)])
    assert "$ref" in b.strings(many)
    np.testing.assert_array_equal(_resolve(b.strings(many), b.arrays).astype(str), many)
    few = np.array(["a", "b"] * 50)
    np.testing.assert_array_equal(_resolve(b.strings(few), b.arrays).astype(str), few)
    assert "$ref" in b.ids(np.array([0, 2, 3]))
    np.testing.assert_array_equal(_resolve(b.ids(np.arange(5, 9)), b.arrays), np.arange(5, 9))
