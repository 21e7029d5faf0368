"""jnecore.plotting.plot_surface_map: values, threshold, background, hemispheres, outlines, hover, size."""

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from jnecore import atlas
from jnecore.plotting import camera_for_view, colormaps, hover_label, plot_surface_map

N32 = 32492
N5 = 10242
MAX_JSON = 9_000_000  # background + data layers (the data layer repeats the shown vertices)


def trace(fig, name):
    found = [t for t in fig.data if t.name == name]
    return found[0] if found else None


def drawn(fig):
    """(vertex indices, values, uint8 colour codes) of the drawn vertices: the surface trace's
    background codes, and on the vertices of the "data" trace the data code of their value."""
    s = trace(fig, "surface")
    cd = np.asarray(s.customdata)
    code = np.asarray(s.intensity).astype(np.int64).copy()
    d = trace(fig, "data")
    if d is not None:
        pos = {int(v): i for i, v in enumerate(cd[:, 0])}
        at = np.array([pos[int(v)] for v in np.asarray(d.customdata)[:, 0]], dtype=np.int64)
        t = np.clip((np.asarray(d.intensity, float) - d.cmin) / (d.cmax - d.cmin), 0, 1)
        code[at] = 128 + np.rint(t * 127)
    return cd[:, 0].astype(np.int64), cd[:, 1], code


@pytest.fixture(scope="module")
def labels():
    return atlas.mmp_labels()[0]


@pytest.fixture(scope="module")
def visual():
    return atlas.visual_vertices()


@pytest.fixture(scope="module")
def full_fig(labels):
    """Both hemispheres, fsLR32k inflated, a value on every cortical vertex."""
    vals = np.where(labels != "", np.arange(2 * N32, dtype=float), np.nan)
    return vals, plot_surface_map(vals, threshold=None, title="full")


def test_values_land_on_their_vertices(full_fig):
    vals, fig = full_fig
    assert isinstance(fig, go.Figure)
    v, shown_vals, code = drawn(fig)
    np.testing.assert_array_equal(v, np.arange(2 * N32))  # closed surface: every vertex drawn
    np.testing.assert_allclose(shown_vals, vals.astype(np.float32), equal_nan=True)
    fin = np.isfinite(vals)
    assert (code[fin] >= 128).all() and (code[~fin] <= 126).all()
    # colour code increases with the value: vmin -> 128, vmax -> 255
    order = np.argsort(vals[fin])
    assert (np.diff(code[fin][order].astype(int)) >= 0).all()
    assert code[fin][order][0] == 128 and code[fin][order][-1] == 255
    meta = fig.layout.meta
    assert meta["vmin"] == np.nanmin(vals) and meta["vmax"] == np.nanmax(vals)
    cb = trace(fig, "colorbar")
    assert cb.marker.showscale and cb.marker.cmin == meta["vmin"] and cb.marker.cmax == meta["vmax"]
    assert fig.layout.title.text == "full"


def test_rows_with_vertices_and_nan_background(visual):
    rng = np.random.default_rng(0)
    vals = rng.uniform(1, 2, len(visual))
    vals[:50] = np.nan
    fig = plot_surface_map(vals, vertices=visual["vertex"].to_numpy(), hemi="both")
    v, shown_vals, code = drawn(fig)
    full = np.full(2 * N32, np.nan)
    full[visual["vertex"]] = vals
    np.testing.assert_allclose(shown_vals, full[v].astype(np.float32), equal_nan=True)
    nan_vertices = visual["vertex"].to_numpy()[:50]
    assert (code[np.isin(v, nan_vertices)] <= 126).all()  # NaN -> grey background
    not_visual = ~np.isin(v, visual["vertex"])
    assert (code[not_visual] <= 126).all() and np.isnan(shown_vals[not_visual]).all()
    assert fig.layout.meta["n_shown"] == np.isfinite(vals).sum()


def test_threshold_hides_small_values():
    vals = np.linspace(-1, 1, N32)
    fig = plot_surface_map(vals, hemi="left", threshold=0.5, outline_rois=False)
    v, shown_vals, code = drawn(fig)
    small = np.abs(vals[v]) < 0.5
    assert (code[small] <= 126).all() and (code[~small] >= 128).all()
    np.testing.assert_allclose(shown_vals, vals[v].astype(np.float32))  # hover keeps the raw value
    assert fig.layout.meta["vmin"] == pytest.approx(-1) and fig.layout.meta["vmax"] == pytest.approx(1)
    # vmin / vmax clip the colours, not the hover values
    fig = plot_surface_map(vals, hemi="left", vmin=0, vmax=0.5, outline_rois=False)
    _, _, code = drawn(fig)
    assert (code[vals > 0.5] == 255).all() and (code[vals <= 0] == 128).all()


def test_hemi_selection():
    vals = np.arange(2 * N32, dtype=float)
    for hemi, lo, hi in (("left", 0, N32), ("right", N32, 2 * N32)):
        fig = plot_surface_map(vals, hemi=hemi, outline_rois=False)
        v, shown_vals, _ = drawn(fig)
        assert len(trace(fig, "surface").x) == N32
        np.testing.assert_array_equal(v, np.arange(lo, hi))
        np.testing.assert_array_equal(shown_vals, vals[lo:hi])
    # per-row values of both hemispheres, one hemisphere drawn
    fig = plot_surface_map([1.0, 2.0], vertices=[5, N32 + 7], hemi="right", outline_rois=False)
    v, shown_vals, _ = drawn(fig)
    assert np.isfinite(shown_vals).sum() == 1 and shown_vals[v == N32 + 7][0] == 2.0
    fig = plot_surface_map(np.ones(2 * N32), surf_mesh="flat", hemi="both", outline_rois=False)
    assert len(trace(fig, "surface").x) == atlas.load_mesh("fsLR32k", "flat", "both").in_patch.sum()
    fig = plot_surface_map(np.ones(N5), space="fsaverage5", hemi="left")
    assert len(trace(fig, "surface").x) == N5 and trace(fig, "outline") is None
    with pytest.raises(ValueError):
        plot_surface_map(np.ones(123), hemi="left")


def _paths(tr):
    """The NaN-separated paths of a line trace: list of (points (n, 3), vertex (n,))."""
    xyz = np.stack([np.asarray(tr.x, float), np.asarray(tr.y, float), np.asarray(tr.z, float)], axis=1)
    cd = np.asarray(tr.customdata).astype(np.int64)
    brk = np.flatnonzero(np.isnan(xyz[:, 0]))
    assert (cd[brk] == -1).all() and not (cd[np.isfinite(xyz[:, 0])] == -1).any()
    return [
        (x[np.isfinite(x[:, 0])], c[c >= 0]) for x, c in zip(np.split(xyz, brk), np.split(cd, brk))]


def test_outline_lines_run_along_label_boundaries(labels, visual):
    fig = plot_surface_map(np.ones(len(visual)), vertices=visual["vertex"].to_numpy(), highlight_roi="FFC")
    out = trace(fig, "outline")
    assert out.mode == "lines" and out.line.width >= 2
    paths = _paths(out)
    assert len(paths) > 20
    mesh = atlas.load_mesh("fsLR32k", "inflated", "both")
    coords = mesh.coords.astype(float)
    f = mesh.faces.astype(np.int64)
    edges = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    cross = edges[labels[edges[:, 0]] != labels[edges[:, 1]]]
    # every crossing edge's midpoint, and each triangle's centroid (three-label triangles)
    mids = (coords[cross[:, 0]] + coords[cross[:, 1]]) / 2
    from scipy.spatial import cKDTree

    tree = cKDTree(np.concatenate([mids, coords[f].mean(axis=1)]))
    boundary = np.zeros(2 * N32, bool)
    boundary[cross.ravel()] = True
    for xyz, vert in paths:
        d, _ = tree.query(xyz)
        assert (d < 0.7).all()  # on a boundary-edge midpoint (or centroid), lifted 0.6 mm
        assert boundary[vert].all() and np.linalg.norm(xyz - coords[vert], axis=1).max() < 5
        # connected: consecutive points are a triangle apart (mean edge ~ 2-3 mm on the inflated mesh)
        assert (np.linalg.norm(np.diff(xyz, axis=0), axis=1) < 8).all()
    allv = np.concatenate([v for _, v in paths])
    assert set(labels[allv]) <= set(visual["roi"]) | set(labels)  # vertices of the ROIs' boundaries
    assert set(visual["roi"]) <= set(labels[allv]) | {""}  # True -> the ROIs holding shown vertices
    hi = np.concatenate([v for _, v in _paths(trace(fig, "highlight"))])
    assert set(labels[hi]) == {"FFC"}  # the target side first
    assert {0, 1} == {int(h >= N32) for h in hi}  # both hemispheres
    # an explicit list, and no outline
    fig = plot_surface_map(np.ones(len(visual)), vertices=visual["vertex"].to_numpy(), outline_rois=["L_V1"],
                           surf_mesh="flat")
    pts = np.concatenate([v for _, v in _paths(trace(fig, "outline"))])
    assert set(labels[pts]) == {"V1"}
    z = np.asarray(trace(fig, "outline").z, float)
    assert (z[np.isfinite(z)] > 0).all()
    fig = plot_surface_map(np.ones(len(visual)), vertices=visual["vertex"].to_numpy(), outline_rois=False)
    assert trace(fig, "outline") is None


def test_hover_text(labels, visual):
    rows = visual.iloc[::50].reset_index(drop=True)
    vals = np.linspace(0.1, 0.9, len(rows))
    hover = pd.DataFrame({"roi": rows["roi"], "level": rows["level"], "r2": np.full(len(rows), 0.25)})
    fig = plot_surface_map(vals, vertices=rows["vertex"].to_numpy(), hover=hover, value_name="JNE")
    k = 3
    vertex, roi, level = int(rows["vertex"][k]), rows["roi"][k], rows["level"][k]
    text = hover_label(fig, vertex)
    assert f"vertex {vertex}" in text and f"{roi} ({level})" in text
    assert f"JNE: {vals[k]:.4g}" in text and "r2: 0.25" in text
    s = trace(fig, "surface")
    assert "%{customdata[0]:d}" in s.hovertemplate and "JNE" in s.hovertemplate
    # background vertices: "ROI (level)" as on shown ones (the text is the same whatever is shown),
    # no value: "no data", never "nan"
    bg = int(np.flatnonzero(labels == "V1")[0])
    assert bg not in set(rows["vertex"])
    assert hover_label(fig, bg) == f"vertex {bg}<br>V1 (primary)<br>JNE: no data"
    s_text = np.asarray(s.text, dtype=str)
    assert not np.char.find(np.char.lower(s_text), "nan").max() >= 0
    assert "no data" in s.hovertemplate and "customdata[1]" not in s.hovertemplate  # background: never a value
    d = trace(fig, "data")
    assert np.isfinite(np.asarray(d.customdata)[:, 1]).all()  # the data layer: finite values only
    # the text does not depend on what is shown
    fig2 = plot_surface_map(vals, vertices=rows["vertex"].to_numpy(), hover=hover[["roi", "level"]], value_name="JNE",
                            threshold=0.5)
    fig3 = plot_surface_map(vals, vertices=rows["vertex"].to_numpy(), hover=hover[["roi", "level"]], value_name="JNE")
    np.testing.assert_array_equal(trace(fig2, "surface").text, trace(fig3, "surface").text)
    # per-row roi labels (e.g. NSD names from a bundle) replace the atlas
    fig = plot_surface_map(vals, vertices=rows["vertex"].to_numpy(), roi_labels=np.full(len(rows), "FFA-1"))
    assert "FFA-1 (higher)" in hover_label(fig, vertex)
    with pytest.raises(KeyError):
        hover_label(plot_surface_map(np.ones(N32), hemi="left", outline_rois=False), N32 + 1)


def test_figure_json_size(full_fig, visual):
    _, fig = full_fig
    n_full = len(fig.to_json())
    assert n_full <= MAX_JSON
    s = trace(fig, "surface")
    assert np.asarray(s.x).dtype == np.float32 and np.asarray(s.i).dtype == np.uint16
    flat = plot_surface_map(np.ones(len(visual)), vertices=visual["vertex"].to_numpy(), surf_mesh="flat",
                            hover=visual[["roi", "level"]])
    assert len(flat.to_json()) <= MAX_JSON
    fs5 = plot_surface_map(np.random.default_rng(1).random(2 * N5), space="fsaverage5")
    assert len(fs5.to_json()) <= 2_500_000  # background + data layers


def test_views_and_cameras():
    left = camera_for_view("lateral", "left")
    right = camera_for_view("lateral", "right")
    assert left["eye"]["x"] < 0 < right["eye"]["x"]
    assert camera_for_view("medial", "left")["eye"]["x"] > 0
    assert camera_for_view("ventral")["eye"]["z"] < 0 < camera_for_view("dorsal")["eye"]["z"]
    assert camera_for_view("posterior")["eye"]["y"] < 0 < camera_for_view("anterior")["eye"]["y"]
    fig = plot_surface_map(np.ones(N32), hemi="right", view="medial", outline_rois=False)
    assert fig.layout.scene.camera.eye.x < 0
    flat = plot_surface_map(np.ones(N32), hemi="left", surf_mesh="flat", view="lateral", outline_rois=False)
    cam = flat.layout.scene.camera
    assert cam.projection.type == "orthographic" and cam.eye.z > 0 and cam.eye.x == 0
    assert (np.asarray(trace(flat, "surface").z) == 0).all()
    custom = dict(eye=dict(x=1, y=1, z=1))
    assert plot_surface_map(np.ones(N5), space="fsaverage5", hemi="left", view=custom).layout.scene.camera.eye.x == 1
    with pytest.raises(ValueError):
        camera_for_view("sideways")


def test_colormaps_and_background():
    names = colormaps()
    assert {"hot", "viridis", "viridis_r", "rdbu_r"} <= set(names)
    fig = plot_surface_map(np.ones(N5), space="fsaverage5", hemi="left", cmap="Viridis")
    assert trace(fig, "colorbar").marker.colorscale[0][1] == "#440154"
    with pytest.raises(ValueError, match="cmap"):
        plot_surface_map(np.ones(N5), space="fsaverage5", hemi="left", cmap="not-a-map")
    # sulcal background: deeper -> darker grey (lower code within 0..126); bg_map=None: uniform
    nan = np.full(N5, np.nan)
    _, _, code = drawn(plot_surface_map(nan, space="fsaverage5", hemi="left"))
    sulc = atlas.load_sulc("fsaverage5", "left")
    assert code.max() <= 126 and np.corrcoef(code, sulc)[0, 1] > 0.9
    _, _, code = drawn(plot_surface_map(nan, space="fsaverage5", hemi="left", bg_map=None))
    assert len(np.unique(code)) == 1


def test_fsaverage_values_drawn_on_fsaverage5():
    from jnecore.atlas._meshes import fsaverage_cells

    n7 = 163842
    rng = np.random.default_rng(0)
    vals = rng.normal(size=2 * n7)
    vals[rng.random(2 * n7) < 0.3] = np.nan
    fig = plot_surface_map(vals, space="fsaverage", hemi="both")
    v, shown_vals, _ = drawn(fig)
    assert fig.layout.meta["space"] == "fsaverage5"
    # each fsaverage5 vertex shows its cell's mean, not the nested vertex's value
    np.testing.assert_allclose(shown_vals, atlas.fsaverage_to_fsaverage5(vals)[v], rtol=1e-6, equal_nan=True)
    assert np.nanmax(np.abs(shown_vals[:N5] - vals[:N5])) > 0.5
    # only the nested vertices hold values: each cell's mean is that value
    only = np.full(2 * n7, np.nan)
    only[:N5], only[n7:n7 + N5] = np.arange(N5), -np.arange(N5)
    _, shown_vals, _ = drawn(plot_surface_map(only, space="fsaverage", hemi="both"))
    np.testing.assert_array_equal(shown_vals, np.r_[np.arange(N5), -np.arange(N5)])
    # rows on fsaverage vertices: a row off the nested vertices shows on the cell(s) holding it
    cells = np.flatnonzero(fsaverage_cells()[:, 50_000].toarray().ravel())
    fig = plot_surface_map([3.0, 4.0], vertices=[n7 + 2, 50_000], space="fsaverage",
                           hover=pd.DataFrame({"roi": ["FFA-1", "PPA"]}))
    v, shown_vals, _ = drawn(fig)
    assert shown_vals[v == N5 + 2][0] == 3.0 and np.isfinite(shown_vals).sum() == 1 + len(cells)
    assert len(cells) and (shown_vals[np.isin(v, cells)] == 4.0).all()
    assert "FFA-1" in hover_label(fig, N5 + 2) and "PPA" in hover_label(fig, int(cells[0]))
    # without the nested vertex, the hover shows a whole member's row rather than a shared one's
    cell = fsaverage_cells()[100]
    shared, whole = cell.indices[cell.data == 0.5][0], cell.indices[(cell.data == 1) & (cell.indices != 100)][0]
    fig = plot_surface_map([1.0, 5.0], vertices=[shared, whole], space="fsaverage",
                           hover=pd.DataFrame({"roi": ["shared-roi", "whole-roi"]}))
    v, shown_vals, _ = drawn(fig)
    assert "whole-roi" in hover_label(fig, 100)
    np.testing.assert_allclose(shown_vals[v == 100], (0.5 * 1.0 + 5.0) / 1.5)


def test_whole_brain_fsaverage_rows_as_full_mesh():
    """A bundle's V = 327,684 rows (every fsaverage vertex, in any order) draw the same map as the
    full-mesh array; the hover shows the row of the nested vertex."""
    n7 = 163842
    rng = np.random.default_rng(1)
    vals = rng.normal(size=2 * n7)
    vals[rng.random(2 * n7) < 0.5] = np.nan
    order = rng.permutation(2 * n7)
    rois = np.where(order < n7, "left-roi", "right-roi")
    fig = plot_surface_map(vals[order], vertices=order, space="fsaverage", hover=pd.DataFrame({"roi": rois}),
                           value_name="JNE")
    v, shown_vals, _ = drawn(fig)
    np.testing.assert_allclose(shown_vals, atlas.fsaverage_to_fsaverage5(vals)[v], rtol=1e-6, equal_nan=True)
    assert "right-roi" in hover_label(fig, N5 + 5) and "left-roi" in hover_label(fig, 5)
    assert len(fig.to_json()) < MAX_JSON


def test_outline_and_highlight_from_hover_rois(labels, visual):
    # fsaverage5 has no bundled atlas: the hover "roi" column gives the outlines
    verts = np.arange(0, 2 * N5, 7)
    rois = np.where(verts % 2 == 0, "FFA-1", "PPA")
    rois[verts >= N5] = "EBA"
    fig = plot_surface_map(np.ones(len(verts)), vertices=verts, space="fsaverage5",
                           hover=pd.DataFrame({"roi": rois}), highlight_roi="EBA")
    hi = np.asarray(trace(fig, "highlight").customdata)
    hi = hi[hi >= 0]  # -1: breaks between paths
    assert len(hi) and (hi >= N5).all() and trace(fig, "outline") is not None
    # fsLR32k: an NSD name unknown to HCP-MMP is found in the hover column
    rows = visual[visual["roi"] == "FFC"]
    fig = plot_surface_map(np.ones(len(rows)), vertices=rows["vertex"].to_numpy(),
                           hover=pd.DataFrame({"roi": np.full(len(rows), "FFA-1")}), highlight_roi="FFA-1")
    hi = np.asarray(trace(fig, "highlight").customdata).astype(int)
    assert np.isin(hi[hi >= 0], rows["vertex"]).all()
    with pytest.warns(UserWarning, match="highlight_roi"):
        plot_surface_map(np.ones(N5), space="fsaverage5", hemi="left", highlight_roi="V1")


# ------------------------------------------------------------------ the small steps, on tiny inputs


def test_map_colors_against_hand_computed_codes():
    from jnecore.plotting._surface_colors import BG_FLAT, map_colors

    vals = np.array([np.nan, 0.1, -0.3, 0.6, 1.2, 2.0])
    bg = np.arange(6.0)
    c = map_colors(vals, bg, threshold=0.25, vmin=0.0, vmax=1.0, cmap="Viridis")
    # shown: finite and |v| >= 0.25; data codes 128 + rint(127 * clip((v - 0) / 1)): -0.3 -> 128,
    # 0.6 -> 128 + rint(76.2) = 204, 1.2 and 2.0 -> 255. Background: bg percentiles 2 / 98 of 0..5
    # are 0.1 / 4.9, shade = (bg - 0.1) / 4.8 clipped: 0 -> code 0, 1 -> rint(126 * 0.1875) = 24.
    np.testing.assert_array_equal(c.shown, [False, False, True, True, True, True])
    np.testing.assert_array_equal(c.codes, [0, 24, 128, 204, 255, 255])
    assert c.codes.dtype == np.uint8 and (c.vmin, c.vmax) == (0.0, 1.0)
    assert c.stops[0] == [0.0, "#440154"] and c.scale[2] == [128 / 255, "#440154"] and c.scale[-1][0] == 1.0
    # default range = min / max of the shown values (-0.3, 2.0): 0.6 -> 128 + rint(127 * 0.9 / 2.3)
    # = 128 + rint(49.70) = 178, 1.2 -> 128 + rint(127 * 1.5 / 2.3) = 128 + rint(82.83) = 211
    c = map_colors(vals, bg, threshold=0.25)
    assert (c.vmin, c.vmax) == (-0.3, 2.0)
    np.testing.assert_array_equal(c.codes[2:], [128, 178, 211, 255])
    # a vertex outside the mask is background and does not set the percentiles (0..4: 0.08 / 3.92):
    # 1 -> rint(126 * 0.92 / 3.84) = rint(30.19) = 30, 5 -> clipped to 126
    mask = np.array([True] * 5 + [False])
    c = map_colors(vals, bg, mask=mask, threshold=0.25, vmin=0.0, vmax=1.0)
    np.testing.assert_array_equal(c.codes, [0, 30, 128, 204, 255, 126])
    # no background map: one grey, code rint(126 * 0.5) = 63; an empty range is widened
    c = map_colors(vals, None, threshold=5.0, vmin=2.0, vmax=2.0)
    np.testing.assert_array_equal(c.codes, np.full(6, 63))
    assert c.scale[0][1] == c.scale[1][1] == BG_FLAT and c.vmax == pytest.approx(2.002)


def _grid():
    """3 x 3 vertices (v = 3 * row + col) in z = 0, each square split along its (v + 1, v + 3) diagonal.

    The centre vertex 4 neighbours 1, 2, 3, 5, 6, 7, but not the corners 0 and 8.
    """
    coords = np.array([[c, -r, 0.0] for r in range(3) for c in range(3)], dtype=np.float32)
    faces = []
    for v in (0, 1, 3, 4):
        faces += [(v, v + 3, v + 1), (v + 1, v + 3, v + 4)]
    return coords, np.array(faces, dtype=np.int32)


def test_roi_boundary_vertices_on_a_hand_made_mesh():
    from jnecore.plotting._surface_outlines import roi_boundary_vertices

    _, faces = _grid()
    labels = np.array(["A"] * 4 + ["B"] + ["A"] * 4)
    np.testing.assert_array_equal(roi_boundary_vertices(labels, faces, {"B"}), [4])
    np.testing.assert_array_equal(roi_boundary_vertices(labels, faces, {"A"}), [1, 2, 3, 5, 6, 7])
    np.testing.assert_array_equal(roi_boundary_vertices(labels, faces, {"A", "B"}), [1, 2, 3, 4, 5, 6, 7])
    assert roi_boundary_vertices(labels, faces, {"C"}).size == 0
    # "" (no ROI) is a label like any other: a left column without a name
    labels = np.array(["", "A", "A"] * 3)
    np.testing.assert_array_equal(roi_boundary_vertices(labels, faces, {"A"}), [1, 4, 7])


def test_vertex_normals_point_outwards():
    from jnecore.plotting._surface_outlines import vertex_normals

    coords = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=float)
    faces = np.array([[0, 2, 4], [2, 1, 4], [1, 3, 4], [3, 0, 4], [2, 0, 5], [1, 2, 5], [3, 1, 5], [0, 3, 5]])
    for f in (faces, faces[:, ::-1]):  # either winding
        np.testing.assert_allclose(vertex_normals(coords, f), coords, atol=1e-12)  # octahedron: radial


def test_outline_traces_on_a_hand_made_mesh():
    from jnecore.plotting._surface_outlines import HIGHLIGHT_COLOR, outline_traces, roi_boundary_paths

    coords, faces = _grid()
    labels = np.array(["A"] * 4 + ["B"] + ["A"] * 4, dtype=object)
    # B at the centre: one closed loop through the midpoints of the six edges 4-k
    (loop,) = roi_boundary_paths(labels, faces, {"B"})
    assert len(loop) == 7 and (loop[0] == loop[-1]).all() and (loop[:, 2] == -1).all()
    assert (loop[:, 0] == 4).all() and sorted(loop[:-1, 1]) == [1, 2, 3, 5, 6, 7]
    tri = {frozenset(t) for t in faces.tolist()}
    for p, q in zip(loop[:-1], loop[1:]):  # consecutive midpoints share a triangle
        assert frozenset({4, p[1], q[1]}) in tri
    flat = atlas.Mesh(coords, faces, 0, "fsaverage5", "flat", "right")
    out, hi = outline_traces(flat, labels, None, np.ones(9, bool), outline_rois=["A"], highlight_roi="B", offset=N5)
    assert (out.name, hi.name) == ("outline", "highlight") and hi.line.color == HIGHLIGHT_COLOR
    assert sorted(np.asarray(out.customdata)[:-1].tolist()) == sorted((N5 + np.array([1, 2, 3, 5, 6, 7])).tolist())
    np.testing.assert_array_equal(hi.customdata, np.full(7, N5 + 4))
    mid = (coords[4, :2] + coords[loop[:, 1], :2]) / 2
    np.testing.assert_allclose(np.stack([hi.x, hi.y], axis=1), mid, atol=1e-6)
    assert (np.asarray(out.z) == 0.5).all()  # above the flat map
    # three labels in a triangle: the crossing edges meet at its centroid
    lab3 = np.array(["A", "B", "A", "C", "C", "C", "C", "C", "C"], dtype=object)
    paths = roi_boundary_paths(lab3, faces, {"A", "B", "C"})
    cen = [p for path in paths for p in path if p[2] >= 0]
    assert cen and all(sorted(set(lab3[p])) == ["A", "B", "C"] for p in cen)
    # 3D: lines lifted along the normal (here +z or -z: the plane's normal), only the listed ROI;
    # a shown-ROI outline with nothing shown falls back to the hierarchy ROIs (none here)
    mesh = atlas.Mesh(coords, faces, 9, "fsaverage5", "inflated", "left")
    (out,) = outline_traces(mesh, labels, None, np.zeros(9, bool), outline_rois=["B"])
    assert (np.asarray(out.customdata) == 4).all() and np.allclose(np.abs(out.z), 0.6)
    assert outline_traces(mesh, labels, None, np.zeros(9, bool)) == []
    # names unknown to the labels are looked up in the hover ROI names; unknown everywhere: warning
    rows = np.array(["FFA-1"] * 3 + [""] * 6, dtype=object)
    (hi,) = outline_traces(mesh, labels, rows, np.ones(9, bool), outline_rois=False, highlight_roi="lh.FFA-1")
    assert set(np.asarray(hi.customdata).tolist()) <= {0, 1, 2}
    with pytest.warns(UserWarning, match="highlight_roi"):
        assert outline_traces(mesh, labels, rows, np.ones(9, bool), outline_rois=False, highlight_roi="V1") == []


def test_drawn_mesh_drops_vertices_outside_the_patch():
    from jnecore.plotting._surface_mesh import drawn_mesh

    coords, faces = _grid()
    coords = np.concatenate([coords[:4], [[np.nan] * 3], coords[4:]]).astype(np.float32)  # vertex 4: cut
    faces = np.where(faces >= 4, faces + 1, faces)
    keep, drawn = drawn_mesh(atlas.Mesh(coords, faces, 10, "fsaverage5", "flat", "left"))
    np.testing.assert_array_equal(keep, [0, 1, 2, 3, 5, 6, 7, 8, 9])
    assert drawn.coordinates.dtype == np.float32 and drawn.faces.dtype == np.uint16
    np.testing.assert_array_equal(drawn.coordinates[drawn.faces], coords[faces])  # same triangles


def test_fsaverage_rows_with_an_fsaverage_background():
    # bg_map on the fsaverage mesh is averaged onto fsaverage5 for per-row values too (it raised before)
    from jnecore.atlas._meshes import fsaverage_cells

    n7 = 163842
    bg = np.random.default_rng(2).random(2 * n7)
    fig = plot_surface_map([3.0, 4.0], vertices=[n7 + 2, 50_000], space="fsaverage", bg_map=bg)
    cells = np.flatnonzero(fsaverage_cells()[:, 50_000].toarray().ravel())
    bg5 = atlas.fsaverage_to_fsaverage5(bg)
    ref = plot_surface_map(np.r_[3.0, np.full(len(cells), 4.0)], vertices=np.r_[N5 + 2, cells], space="fsaverage5",
                           bg_map=bg5)
    np.testing.assert_array_equal(drawn(fig)[2], drawn(ref)[2])
    code = drawn(fig)[2]
    back = code <= 126
    assert code[N5 + 2] >= 128 and np.corrcoef(code[back], bg5[back])[0, 1] > 0.95


def test_named_views_against_mesh_geometry():
    """Each preset's camera, placed in the mesh's own coordinates, sits on the side it names."""
    from jnecore.plotting import camera_position

    for hemi in ("left", "right"):
        xyz = np.asarray(atlas.load_mesh("fsLR32k", "inflated", hemi).coords, dtype=float)
        c = (xyz.min(0) + xyz.max(0)) / 2
        out = -1 if hemi == "left" else 1  # lateral = away from the midline
        pos = {v: camera_position(camera_for_view(v, hemi), xyz) for v in
               ("lateral", "medial", "dorsal", "ventral", "anterior", "posterior")}
        assert out * (pos["lateral"][0] - c[0]) > 0 and out * (pos["medial"][0] - c[0]) < 0
        assert pos["dorsal"][2] > xyz[:, 2].max() and pos["ventral"][2] < xyz[:, 2].min()
        assert pos["anterior"][1] > xyz[:, 1].max() and pos["posterior"][1] < xyz[:, 1].min()
        # the camera is outside the mesh: the lateral one beyond the lateral-most vertex
        lat = xyz[:, 0].min() if hemi == "left" else xyz[:, 0].max()
        assert out * (pos["lateral"][0] - lat) > 0


def test_hidden_vertices_show_background_only_and_range_ignores_threshold():
    rng = np.random.default_rng(0)
    vals = rng.random(N32)
    a = plot_surface_map(vals, hemi="left", outline_rois=False)
    b = plot_surface_map(vals, hemi="left", threshold=0.5, outline_rois=False)
    assert a.layout.meta["vmin"] == b.layout.meta["vmin"] and a.layout.meta["vmax"] == b.layout.meta["vmax"]
    # the background trace carries no data colour anywhere
    for fig in (a, b):
        assert (np.asarray(trace(fig, "surface").intensity) <= 126).all()
    d = trace(b, "data")
    shown = np.asarray(d.customdata)[:, 0].astype(int)
    assert set(shown) == set(np.flatnonzero(vals >= 0.5))
    # the data faces never touch a hidden vertex
    assert np.asarray(d.customdata)[:, 1][np.asarray([d.i, d.j, d.k]).ravel()].min() >= 0.5
    assert "hidden: |value| < 0.5" in trace(b, "colorbar").marker.colorbar.title.text
    # diverging maps centre on 0
    c = plot_surface_map(vals - 0.2, hemi="left", symmetric_cmap=True, outline_rois=False, units="a.u.")
    assert c.layout.meta["vmin"] == -c.layout.meta["vmax"]
    assert "(a.u.)" in trace(c, "colorbar").marker.colorbar.title.text
    assert "nan" not in trace(c, "surface").hovertemplate.lower()
