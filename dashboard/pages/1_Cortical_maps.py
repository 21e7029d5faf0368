"""Cortical maps: JNE, R², noise ceiling, planted truth and JNE-SS on the surface."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from jnecore.dashboard import _state as S

S.page_setup("Cortical maps", ":material/neurology:")
# a shared link reopens the same view: bundle and ROI first (the sidebar reads them)
S.url_restore(S.BUNDLE_KEY, "bundle")
S.url_restore(S.ROI_KEY, "roi")
bundle = S.sidebar()
st.title("Cortical maps")
S.simulated_banner(bundle)

v = bundle.vertices
path = str(bundle.path)
stamp = S._stamp(path)
roi = S.selected_roi()

# ---------------------------------------------------------------------------------------------
# metric choice

METRICS = {"JNE": "jne", "R² linear": "r2_linear", "R² nonlinear": "r2_nonlinear",
           "R² nonlinear − linear": "r2_diff"}
if "noise_ceiling" in v:
    METRICS["Noise ceiling (%)"] = "noise_ceiling"
if "true_nonlinearity" in v:
    METRICS["Planted nonlinearity (simulated truth)"] = "true_nonlinearity"
groups = S.groupings(bundle)
if len(bundle.test_stimuli):
    METRICS["JNE-SS: mean over a stimulus group"] = "jne_ss_group"
    METRICS["JNE-SS: one test stimulus"] = "jne_ss_stimulus"
# sequential maps whose low end stays distinct from the grey sulcal background
DEFAULT_CMAP = {"jne": "Plasma", "r2_linear": "Viridis", "r2_nonlinear": "Viridis", "r2_diff": "RdBu_r",
                "noise_ceiling": "Viridis", "true_nonlinearity": "Plasma", "jne_ss_group": "Plasma",
                "jne_ss_stimulus": "Plasma"}

c1, c2, c3, c4 = st.columns([2.2, 1.3, 1.2, 1.2])
CODE_LABEL = {c: lab for lab, c in METRICS.items()}
S.url_restore("map_metric", "metric", options=list(CODE_LABEL), convert=CODE_LABEL.get)
metric_label = c1.selectbox("Map", list(METRICS), key="map_metric")
metric = METRICS[metric_label]
value_name = metric_label

if metric == "jne_ss_group":
    g1, g2 = st.columns([1, 3])
    gcol = g1.selectbox("Group by", groups, key="map_group_col") if len(groups) > 1 else groups[0]
    labels = bundle.test_stimuli[gcol].astype(str)
    counts = labels.value_counts()
    names = sorted(counts.index)
    group = g2.selectbox("Stimulus group", names, key="map_group",
                         format_func=lambda g: f"{g} ({counts[g]} stimuli)")
    rows = tuple(int(i) for i in np.flatnonzero(labels.to_numpy() == group))
    values = S.jne_ss_mean(path, stamp, rows).astype(float)
    value_name = f"JNE-SS ({group})"
elif metric == "jne_ss_stimulus":
    ts = bundle.test_stimuli
    gcol = groups[0] if groups else None
    opts = list(range(len(ts)))
    i = st.selectbox("Test stimulus", opts, key="map_stimulus",
                     format_func=lambda k: f"{ts['stimulus'].iloc[k]}" + (f"  ({ts[gcol].iloc[k]})" if gcol else ""))
    values = np.asarray(bundle.jne_ss[int(i)], dtype=float)
    value_name = f"JNE-SS ({ts['stimulus'].iloc[int(i)]})"
elif metric == "r2_diff":
    values = (v["r2_nonlinear"] - v["r2_linear"]).to_numpy(dtype=float)
    value_name = "ΔR²"
else:
    values = v[metric].to_numpy(dtype=float)
    value_name = {"jne": "JNE", "r2_linear": "R² lin", "r2_nonlinear": "R² nonlin", "noise_ceiling": "NC %",
                  "true_nonlinearity": "planted"}.get(metric, metric_label)

mesh_space = bundle.space in ("fsLR32k", "fsaverage5", "fsaverage")
from jnecore.atlas import surface_route  # noqa: E402

# NSD volumes go to fsaverage through the subject's transforms, MNI volumes are projected onto
# fsaverage5; other volumes and space none stay tables
route = surface_route(bundle.manifest)
volume_nsd, volume_mni = route == "nsd", route == "mni"
draw_space = bundle.space if mesh_space else {"nsd": "fsaverage", "mni": "fsaverage5"}.get(route)
can_draw = draw_space is not None
SURFACES = {"inflated": "inflated", "very inflated": "very_inflated", "pial": "pial", "white": "white",
            "flat (2D flatmap)": "flat"}
if draw_space in ("fsaverage5", "fsaverage"):
    SURFACES.pop("very inflated")
SURF_LABEL = {c: lab for lab, c in SURFACES.items()}
S.url_restore("map_surface", "surface", options=list(SURF_LABEL), convert=SURF_LABEL.get)
surface = SURFACES[c2.selectbox("Surface", list(SURFACES), key="map_surface", disabled=not can_draw)]
S.url_restore("map_hemi", "hemi", options=["both", "left", "right"])
hemi = c3.selectbox("Hemisphere", ["both", "left", "right"], key="map_hemi", disabled=not can_draw)
from jnecore.plotting import VIEWS, colormaps  # noqa: E402

# one scene by default, its camera presets are buttons in the viewer (no server round trip); with
# both hemispheres in one scene the medial surfaces face each other: medial views come as the 4-view panels
LAYOUTS = {"one scene": "one", "4 views (L/R lateral, medial)": "panels"}
LAYOUT_LABEL = {c: lab for lab, c in LAYOUTS.items()}
S.url_restore("map_layout", "layout", options=list(LAYOUT_LABEL), convert=LAYOUT_LABEL.get)
layout = LAYOUTS[c4.selectbox("Layout", list(LAYOUTS), key="map_layout", disabled=not can_draw or surface == "flat",
                              help="one scene (view presets above the map), or the four views L/R lateral and "
                                   "medial, one hemisphere per scene")]
# the preset the viewer opens on: the link's (?view=), else posterior (both hemispheres) / lateral
url_view = st.query_params.get("view")
view_opts = [w for w in VIEWS if not (hemi == "both" and w == "medial")]
view = url_view if url_view in view_opts else ("posterior" if hemi == "both" else "lateral")
if layout == "panels" and surface != "flat":
    view = "panels"

# ---------------------------------------------------------------------------------------------
# threshold and colours

sig = v["significant"].to_numpy(dtype=bool)
with st.expander("Threshold, colours, background", expanded=True):
    d1, d2, d3, d4 = st.columns([1.2, 1.2, 1.4, 1.6])
    SIG_NONE = {"jne": "JNE is computed on significant vertices only: the map already shows only those",
                "jne_ss_group": "JNE-SS is computed on significant vertices only",
                "jne_ss_stimulus": "JNE-SS is computed on significant vertices only",
                "true_nonlinearity": "the planted truth of a simulation has no significance test",
                "noise_ceiling": "the noise ceiling has no significance test"}
    sig_reason = SIG_NONE.get(metric)
    if sig_reason is None:  # the user's choice outlives the metrics that have no filter (a widget not drawn forgets)
        sig_only = d1.checkbox("Significant vertices only", value=st.session_state.get("map_sig_only_choice", True),
                               key="map_sig_only", help="vertices whose nonlinear encoder R² passed the bootstrap "
                                                        "test (BH-FDR)",
                               on_change=lambda: st.session_state.update(
                                   map_sig_only_choice=st.session_state["map_sig_only"]))
    else:
        sig_only = d1.checkbox("Significant vertices only", value=False, key="map_sig_only_na", disabled=True,
                               help=sig_reason)
    S.url_restore("map_threshold", "threshold", cast=S.nonnegative_float)
    threshold = d2.number_input("Hide |value| below", min_value=0.0, step=0.01, format="%.4g", key="map_threshold")
    cmap = d3.selectbox("Colour map", ["auto"] + colormaps(), key="map_cmap",
                        help="'auto' picks a map that suits the metric (diverging for differences)")
    manual = d4.checkbox("Manual colour range", value=False, key="map_manual_range")
    e1, e2, e3, e4 = st.columns([1.2, 1.2, 1.4, 1.6])
    bg_on = e1.checkbox("Sulcal-depth background", value=True, key="map_sulc", disabled=not can_draw)
    outline = e2.checkbox("ROI outlines", value=True, key="map_outline", disabled=not mesh_space)
    highlight = e3.checkbox("Highlight selected ROI", value=True, key="map_highlight", disabled=not mesh_space or roi is None,
                            help="choose the ROI in the sidebar")
    per_roi = e4.radio("Values", ["per vertex", "ROI mean"], key="map_values", horizontal=True,
                       help="ROI mean paints each ROI with the mean of its shown vertices: the hierarchy at a glance")

shown_vals = values.copy()
if sig_only:
    shown_vals[~sig] = np.nan
if threshold > 0:
    shown_vals[np.abs(np.nan_to_num(shown_vals)) < threshold] = np.nan
if per_roi == "ROI mean":
    rois_v = v["roi"].astype(str)
    means = pd.Series(shown_vals).groupby(rois_v.to_numpy()).mean()
    shown_vals = rois_v.map(means).to_numpy(dtype=float)
# the colour range comes from the whole map (2nd-98th percentile), never from the threshold or the
# significance filter, so two thresholds of one map share their colours
finite = values[np.isfinite(values)]
signed = metric == "r2_diff"
if finite.size:
    lo, hi = (float(x) for x in np.percentile(finite, [2, 98]))
    if signed:
        m = max(abs(lo), abs(hi)) or 1.0
        lo, hi = -m, m
    if hi <= lo:
        hi = lo + (abs(lo) * 1e-3 or 1.0)
else:
    lo, hi = 0.0, 1.0
vmin, vmax = lo, hi
if manual:
    r1, r2 = st.columns(2)
    vmin = r1.number_input("min", value=float(f"{lo:.4g}"), format="%.4g", key=f"map_vmin_{metric}")
    vmax = r2.number_input("max", value=float(f"{hi:.4g}"), format="%.4g", key=f"map_vmax_{metric}")
    if vmax <= vmin:
        st.warning("The colour range needs max > min; using the automatic range.")
        vmin, vmax = lo, hi
cmap_name = DEFAULT_CMAP.get(metric, "Plasma") if cmap == "auto" else cmap

n_shown = int(np.isfinite(shown_vals).sum())
st.caption(f"{n_shown:,} of {len(v):,} vertices shown"
           + (" (significant only)" if sig_only and per_roi != "ROI mean" else "")
           + (" · each ROI painted with the mean over its " + ("significant " if sig_only else "") + "vertices"
              if per_roi == "ROI mean" else "") + f" · colour range {vmin:.4g} to {vmax:.4g} "
           "(2nd-98th percentile of the whole map unless set; the threshold does not change it)" + (f" · selected ROI: **{roi}**" if roi else ""))
if metric in ("jne", "jne_ss_group", "jne_ss_stimulus") and not np.isfinite(values).any():
    st.info("JNE was not computed for any vertex of this bundle (no significant vertex).")


# ---------------------------------------------------------------------------------------------
# the map


@st.cache_resource(show_spinner="Drawing the surface ...", max_entries=12)
def surface_figure(key, _values, _vertex, _hover_roi, _hover_level, space, surface, hemi, view, cmap, vmin, vmax,
                   bg, outline, highlight, value_name, title, _threshold=0.0, _note=None):
    from jnecore.plotting import plot_surface_map

    from jnecore.plotting import plot_surface_views

    hover = None if _hover_roi is None else pd.DataFrame({"roi": _hover_roi, "level": _hover_level})
    units = {"JNE": "a.u.", "NC %": "%"}.get(value_name, "a.u." if value_name.startswith("JNE-SS") else None)
    kw = dict(vertices=_vertex, space=space, surf_mesh=surface, cmap=cmap, vmin=vmin, vmax=vmax,
              bg_map="sulc" if bg else None, roi_labels=None, outline_rois=outline, highlight_roi=highlight,
              hover=hover, title=title, value_name=value_name, units=units, symmetric_cmap=value_name == "ΔR²",
              threshold=_threshold or None, colorbar_note=_note)
    if view == "panels" and surface != "flat":
        return plot_surface_views(_values, layout="2x2", **kw)
    return plot_surface_map(_values, hemi=hemi, view="lateral" if view == "panels" else view, **kw)


def _fig_key(*parts):
    import hashlib

    h = hashlib.sha1()
    for p in parts:
        h.update(np.ascontiguousarray(p).tobytes() if isinstance(p, np.ndarray) else repr(p).encode())
    return h.hexdigest()


@st.cache_data(show_spinner="Projecting the volume onto fsaverage5 ...", max_entries=8)
def projected_volume(path, stamp, metric, key, _values, _ijk, affine, shape):
    """(20484,) fsaverage5 values of an MNI volume bundle's shown values (NaN = no voxel nearby);
    cached per bundle, metric and shown values (``key`` hashes them)."""
    from jnecore.atlas import volume_to_fsaverage5

    return volume_to_fsaverage5(_values, _ijk, np.asarray(affine), shape)


@st.cache_data(show_spinner="Carrying the volume to fsaverage through NSD's transforms ...", max_entries=8)
def nsd_surface(path, stamp, key, _values, _ijk, shape, transforms_dir):
    """(2 * 163842,) fsaverage values of an NSD volume bundle's shown values (NaN = no modelled
    voxel sampled); cached per bundle and shown values (``key`` hashes them)."""
    from jnecore.atlas import nsd_volume_to_fsaverage

    return nsd_volume_to_fsaverage(_values, _ijk, shape, transforms_dir)


from jnecore.dashboard._viewer import new_click, surface_viewer  # noqa: E402



def bundle_of(drawn_vertex: int, space: str) -> int:
    """Bundle vertex (L+R in its space) of a clicked vertex of the drawn mesh (fsaverage: the nested one)."""
    if space != "fsaverage":
        return drawn_vertex
    from jnecore.atlas import space_size

    n7, n5 = space_size("fsaverage"), space_size("fsaverage5")
    return drawn_vertex if drawn_vertex < n5 else n7 + drawn_vertex - n5


def drawn_of(vertex, space: str):
    """Drawn-mesh vertex of a bundle vertex (None if it is not drawn: fsaverage vertices off fsaverage5)."""
    if vertex is None or space != "fsaverage":
        return vertex
    from jnecore.atlas import fsaverage_vertices_to_fsaverage5

    v5, keep = fsaverage_vertices_to_fsaverage5([vertex])
    return int(v5[0]) if keep[0] else None


def show_map(fig, name, view, marked):
    """The figure in the browser-side viewer, with its HTML download."""
    from jnecore.export import figure_html

    surface_viewer(fig, key="surface_map", height=int(fig.layout.height or 640) + 40,
                   view=None if view == "panels" else view, selected=marked)
    st.download_button("Download figure (HTML)", data=lambda: figure_html(fig), file_name=f"{S.slug(name)}.html",
                       mime="text/html", key="dl_html_surface_map", on_click="ignore", icon=":material/download:")


# the selected vertex: a click on the map (drawn-mesh index), else the shared selection (or the link's)
S.url_restore("_url_vertex", "vertex", cast=int)
if "_url_vertex" in st.session_state:
    S.select_vertex(bundle, st.session_state.pop("_url_vertex"))
click = new_click("surface_map") if mesh_space else None
if click is not None:
    S.select_vertex(bundle, bundle_of(click, bundle.space))
selected = S.selected_vertex(bundle)

# the shown rows only, string columns as stored (converting 327,684 strings costs ~0.1 s a column)
shown_rows = np.isfinite(shown_vals)
table = (v.loc[shown_rows, ["vertex", "hemi", "roi", "level"]].astype({"hemi": str, "roi": str, "level": str})
         .assign(significant=sig[shown_rows]).reset_index(drop=True))
table[value_name] = shown_vals[shown_rows]
title = f"{value_name} · {bundle.name}"

if mesh_space:
    vertex = v["vertex"].to_numpy(dtype=np.int64)
    hl = roi if (highlight and roi) else None
    key = _fig_key(path, stamp, shown_vals, bundle.space, surface, hemi, view, cmap_name, vmin, vmax, bg_on,
                   outline, hl, value_name)
    if bundle.space in ("fsaverage", "fsaverage5"):
        S.space_warm_up(bundle.space).join()  # the meshes (and fsaverage5 cells) read in the background
    try:
        fig = surface_figure(key, shown_vals, vertex, v["roi"], v["level"], bundle.space, surface, hemi, view,
                             cmap_name, float(vmin), float(vmax), bg_on, outline, hl, value_name, title, float(threshold),
                             "significant only" if sig_only else None)
    except Exception as exc:
        st.error(f"Could not draw the surface map: {type(exc).__name__}: {exc}")
        st.stop()
    fig.update_layout(height=640 if view != "panels" else 720)
    show_map(fig, f"map_{metric}", view, drawn_of(selected, bundle.space))
    if view == "panels":
        def _png(fig=fig):
            import tempfile

            from jnecore.plotting import save_surface_figure

            with tempfile.TemporaryDirectory() as d:
                return save_surface_figure(fig, f"{d}/figure.png", width=1400, height=760, dpi=200).read_bytes()

        st.download_button("Publication figure (PNG, 200 dpi)", data=_png, file_name=f"{S.slug(value_name)}_4views.png",
                           mime="image/png", key="dl_map_png", on_click="ignore", icon=":material/download:",
                           help="the four views with the colour bar and ROI outlines, rendered by kaleido (as `jne figure`)")
    if bundle.space == "fsaverage":
        from jnecore.atlas._meshes import FSAVERAGE_TO_FSAVERAGE5

        st.caption(f"fsaverage values drawn on fsaverage5, each vertex showing its fsaverage cell averaged: "
                   f"{FSAVERAGE_TO_FSAVERAGE5} (not one vertex in 16). The hover names the ROI of the nested "
                   "fsaverage vertex; the CSV and GIfTI exports keep every fsaverage vertex.")
elif volume_nsd or volume_mni:
    vol = bundle.manifest["volume"]
    ijk = v[["voxel_i", "voxel_j", "voxel_k"]].to_numpy(dtype=np.int64)
    shape = tuple(int(x) for x in vol["shape"])
    try:
        if volume_nsd:
            from jnecore.atlas import nsd_transforms_dir

            tdir = nsd_transforms_dir(bundle.manifest)
            S.space_warm_up("fsaverage").join()
            surf = nsd_surface(path, stamp, _fig_key(shown_vals, ijk), shown_vals, ijk, shape, str(tdir))
        else:
            affine = tuple(tuple(float(x) for x in row) for row in vol["affine"])
            surf = projected_volume(path, stamp, metric, _fig_key(shown_vals, ijk), shown_vals, ijk, affine, shape)
        key = _fig_key(path, stamp, surf, route, surface, hemi, view, cmap_name, vmin, vmax, bg_on, value_name)
        fig = surface_figure(key, surf, None, None, None, draw_space, surface, hemi, view, cmap_name,
                             float(vmin), float(vmax), bg_on, False, None, value_name, title)
    except Exception as exc:
        st.error(f"Could not draw the volume on the surface: {type(exc).__name__}: {exc}")
        st.stop()
    fig.update_layout(height=640)
    show_map(fig, f"map_{metric}", view, None)
    n_cov = int(np.isfinite(surf).sum())
    if volume_nsd:
        from jnecore.atlas._meshes import FSAVERAGE_TO_FSAVERAGE5

        st.caption(f"Voxel values carried to fsaverage through the subject's NSD transforms in "
                   f"{S.plain(str(tdir))} (subject {S.plain(str(vol['nsd'].get('subject', '?')))}; sampled at the "
                   "three cortical depths layerB1-3 of each native vertex, linear within the modelled voxels, "
                   f"depths averaged, then white-to-fsaverage): {n_cov:,} of {len(surf):,} fsaverage vertices "
                   f"have a value. Drawn on fsaverage5: {FSAVERAGE_TO_FSAVERAGE5}. The tables and exports hold "
                   "the voxel values.")
    else:
        st.caption(f"Projection of the shown voxels (MNI volume) onto the fsaverage5 surface with nilearn's "
                   f"vol_to_surf (sampled between the pial and white meshes): {n_cov:,} of {len(surf):,} surface "
                   "vertices have a modelled voxel nearby. fsaverage5 is in MNI305-like coordinates, so this is a "
                   "visualisation aid, not a registration; the tables and exports hold the voxel values.")
else:
    if bundle.space == "volume":
        st.info("volume data not in MNI space and without NSD transforms at hand: shown as tables. (An NSD "
                "func1pt8mm bundle is drawn on fsaverage when the transforms folder its manifest records exists "
                "on this machine; a volume in MNI space is projected onto fsaverage5 after `jne run "
                "--volume-space mni`.)")
    else:
        st.info(f"This bundle's space is **{bundle.space}**: there is no cortical mesh to draw on. "
                "Maps need a surface space (fsLR32k, fsaverage5 or fsaverage); the distribution per ROI is shown "
                "instead, and the ROI hierarchy page works for every space.")
    from jnecore.plotting import plot_roi_distributions

    tmp = v.assign(_value=shown_vals)
    fig = plot_roi_distributions(tmp, "_value", significant_only=False, kind="box", title=f"{value_name} per ROI")
    S.show_figure(fig, f"distribution_{metric}", key="no_mesh_box")

# ---------------------------------------------------------------------------------------------
# the selected vertex


@st.cache_data(show_spinner=False, max_entries=64)
def vertex_profile_table(path, stamp, row, gcol):
    """JNE-SS profile of one bundle row by ``gcol`` (bootstrap CIs over each group's test stimuli)."""
    from jnecore.vertex_profile import vertex_profile

    b = S.get_bundle(path)
    col = np.asarray(b.jne_ss[:, row], dtype=np.float64)
    return vertex_profile(col, b.test_stimuli[gcol].astype(str).to_numpy(), n_boot=2000, ci=0.95, seed=0)


if mesh_space:
    st.subheader("Selected vertex")
    if selected is None:
        st.caption("Click a vertex on the map to see its ROI, level, JNE, R² and its JNE-SS profile by category; "
                   "the selection is kept for the other pages and in the page's link.")
    else:
        from jnecore.vertex_profile import vertex_row

        row, rec = vertex_row(v, selected)
        if rec is None:
            st.info(f"Vertex {selected} is not modelled in this bundle (no row in its vertices table).")
        else:
            def _num(x):
                return "no data" if x is None or not np.isfinite(float(x)) else f"{float(x):.4g}"

            m1, m2, m3, m4, m5 = st.columns([1, 1.7, 0.9, 0.9, 0.9])
            m1.metric("Vertex", f"{selected} ({str(rec['hemi'])[:1].upper()})")
            m2.metric("ROI (level)", f"{rec['roi']} ({rec['level']})")
            m3.metric("JNE", _num(rec["jne"]))
            m4.metric("R² linear", _num(rec["r2_linear"]))
            m5.metric("R² nonlinear", _num(rec["r2_nonlinear"]))
            st.caption("significant (nonlinear R², BH-FDR): **" + ("yes" if bool(rec["significant"]) else "no") + "**"
                       + (f" · noise ceiling {_num(rec['noise_ceiling'])} %" if "noise_ceiling" in v else "")
                       + (" · shown on fsaverage5 at the nested vertex" if bundle.space == "fsaverage" else ""))
            if groups and len(bundle.test_stimuli):
                gsel = groups[0] if len(groups) == 1 else st.selectbox("Profile by", groups, key="map_profile_group")
                prof = vertex_profile_table(path, stamp, row, gsel)
                if prof["mean"].notna().any():
                    from jnecore.plotting import plot_vertex_profile

                    S.show_figure(plot_vertex_profile(prof, title=f"JNE-SS of vertex {selected} by {gsel}"),
                                  f"vertex_{selected}_profile", key="vertex_profile")
                    S.show_table(prof.rename(columns={"mean": "mean JNE-SS", "lo": "CI low (95%)",
                                                      "hi": "CI high (95%)"}),
                                 f"vertex_{selected}_profile", key="vertex_profile_table")
                else:
                    st.caption("No JNE-SS for this vertex: JNE-SS is computed on significant vertices only.")
            b1, b2 = st.columns(2)
            if b1.button(f"Use its ROI ({rec['roi']}) on every page", key="map_use_vertex_roi"):
                st.session_state[S.ROI_KEY] = str(rec["roi"])
                st.rerun()
        if st.button("Clear the selection", key="map_clear_vertex"):
            S.select_vertex(bundle, None)
            st.rerun()

# the page's state in its link (the viewer adds ?view= in the browser)
S.url_write({"bundle": path, "roi": roi, "metric": metric, "surface": surface, "hemi": hemi, "layout": layout,
             "threshold": f"{threshold:g}" if threshold else None, "vertex": selected})

# ---------------------------------------------------------------------------------------------
# exports

st.subheader("Export")
x1, x2, x3 = st.columns(3)
with x1:
    from jnecore.export import table_csv

    st.download_button("Shown values (CSV)", data=lambda: table_csv(table), file_name=f"{S.slug(value_name)}_values.csv",
                       mime="text/csv", key="dl_map_csv", on_click="ignore", icon=":material/download:")
    st.caption(f"{len(table):,} rows: vertex, hemi, roi, level, significant, value")
with x2:
    from jnecore.export import gifti_available, gifti_bytes

    if gifti_available(bundle.space):
        meta = {"bundle": bundle.name, "metric": value_name, "significant_only": sig_only, "threshold": threshold}
        vv = v["vertex"].to_numpy(dtype=np.int64)
        for hemi_name, tag in (("left", "L"), ("right", "R")):
            st.download_button(f"Map as GIfTI ({tag})", data=lambda h=hemi_name: gifti_bytes(
                shown_vals, vv, bundle.space, h, name=value_name, meta=meta),
                file_name=f"{S.slug(value_name)}.{tag}.func.gii", mime="application/octet-stream",
                key=f"dl_gii_{tag}", on_click="ignore", icon=":material/download:")
        st.caption(f"full {bundle.space} hemisphere meshes, NaN outside the shown vertices")
    else:
        st.caption(f"GIfTI export is not available for the **{bundle.space}** space (no surface mesh); "
                   "use the CSV.")
with x3:
    st.caption("The figure's HTML download is under the map (interactive, works offline).")

# drawn on request: a table (even in a closed expander) loads and mounts the browser's data grid,
# ~0.7 s before the map's frame exists on a first render (benchmarks/RESULTS.md, viewer)
if st.toggle("Per-ROI summary of the shown values", key="map_roi_summary_on",
             help="count, mean, median and SD of the shown values in each ROI, with its CSV"):
    if len(table):
        summ = table.groupby(["roi", "level"])[value_name].agg(["count", "mean", "median", "std"]).reset_index()
        order = {r: i for i, r in enumerate(S.bundle_rois(bundle))}
        summ = summ.sort_values("roi", key=lambda s: s.map(order)).reset_index(drop=True)
        S.show_table(summ, f"map_roi_summary_{S.slug(value_name)}", key="map_roi_summary")
    else:
        st.write("No vertex shown.")
