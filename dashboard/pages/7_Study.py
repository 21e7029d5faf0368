"""Study: many bundles (subjects x layers x settings) together: JNE across layers, peak layers,
cross-subject consistency, R² gain, and hierarchy tests on per-subject means."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from jnecore import study as J
from jnecore.dashboard import _state as S
from jnecore.plotting import (plot_layer_lines, plot_peak_layer_map, plot_peak_layers, plot_r2_gain,
                              plot_subject_correlations, plot_test_matrix)
from jnecore.spaces import SURFACE_SPACES
from jnecore.validation import InputError

S.page_setup("Study", ":material/stacked_line_chart:")
st.title("Study")
st.caption("A study is a set of bundles, one per cell (subject × layer × encoder setting), made by `jne sweep` "
           "(or any folder of bundles whose manifests carry `study`). Every subject counts once: the lines and tests "
           "use each subject's per-ROI mean over its significant vertices, never vertices pooled across subjects.")

roots = S.bundle_roots()
studies = S.list_studies(tuple(roots))
if not studies:
    where = ", ".join(f"`{r}`" for r in roots) or "(no folder given)"
    st.info(f"No study found in {where}: no `study.json` and no bundle whose manifest carries `study`. "
            "Build one with `jne sweep STUDY.toml` (or the sample `jne demo --study --out DIR`), then start "
            "`jne dashboard DIR`.")
    st.stop()
key = S.bound_selectbox("Study", studies, "jne_study", where=st.sidebar, format_func=S.study_label,
                        help=f"Studies found under: {', '.join(roots)}")
try:
    study = S.get_study(key)
except InputError as exc:
    st.error(f"Could not read the study: {exc}")
    st.stop()
if study.done.empty:
    st.info(f"The study {S.plain(study.name)} has no finished cell yet ({study.state_counts()}).")
    st.stop()

# ---------------------------------------------------------------------------------------------- overview
counts = study.state_counts()
m = st.columns(5)
m[0].metric("Subjects", len(study.subjects))
m[1].metric("Layers", len(study.layers))
m[2].metric("Settings", len(study.settings))
m[3].metric("Cells done", f"{counts.get('done', 0)} / {len(study.cells)}")
m[4].metric("Space", study.space or "?")
if counts.get("failed"):
    st.warning(f"{counts['failed']} cell(s) failed; see the cell table for the reasons.")
for w in study.warnings[:5]:
    st.caption(f"⚠ {S.plain(w)}")
with st.expander(f"Cells ({len(study.cells)}, from {study.source})"):
    S.show_table(study.cells, f"study_cells_{study.name}", key="st_cells")

c1, c2, c3 = st.columns([1.5, 1.2, 1.3])
setting = c1.selectbox("Encoder setting", study.settings, key="st_setting")
sig_only = c2.checkbox("Significant vertices only", value=True, key="st_sig",
                       help="Each cell's ROI value is the mean over its significant vertices (bootstrap R² > 0, "
                            "BH-FDR), as on the ROI hierarchy page")
by = c3.radio("Group by", ["roi", "level"], key="st_by", horizontal=True,
              format_func={"roi": "ROI", "level": "hierarchy level"}.get)
if sig_only:
    st.caption("Which vertices are significant comes from vertex-wise tests, which treat neighbouring vertices "
               "as independent and so overstate significance.")

try:
    long = S.study_vertices(key, S.study_stamp(study), setting)
except InputError as exc:
    st.error(f"Could not read a cell of the study: {exc}. Check it with `jne info`, or re-run the cell.")
    st.stop()
layers = [lay for lay in study.layers if lay in set(long["layer"])]
subj = J.subject_layer_table(long, by, "jne", significant_only=sig_only)
if subj.empty:
    st.info("No cell of this setting has a vertex with a finite JNE" + (" among the significant ones." if sig_only else "."))
    st.stop()
group = J.group_layer_table(subj, by)
all_groups = S.roi_order(tuple(sorted(subj["roi"].unique()))) if by == "roi" else list(dict.fromkeys(group["level"]))
if by == "roi":
    default = [r for r in ("V1", "V2", "V3", "V4", "FFC", "PHA1", "RSC") if r in all_groups] or all_groups[:6]
    shown = st.multiselect("ROIs", all_groups, default=default, key="st_rois")
    shown = [g for g in all_groups if g in shown] or all_groups
else:
    shown = all_groups
n_subjects = subj["subject"].nunique()
name = f"{S.slug(study.name)}_{S.slug(setting)}_{by}"

# ---------------------------------------------------------------------------------------------- lines
st.subheader("JNE across layers")
show_subjects = st.checkbox("Show each subject (dotted)", value=False, key="st_subjects")
fig = plot_layer_lines(group, by=by, groups=shown, layers=layers, subjects=subj if show_subjects else None)
S.show_figure(fig, f"jne_layers_{name}", key="st_lines")
if n_subjects < 2:
    st.caption("One subject: no band (the SEM needs two subjects at least).")
with st.expander("Tables: per subject and across subjects"):
    S.show_table(group, f"jne_layers_mean_{name}", key="st_group")
    S.show_table(subj, f"jne_layers_subjects_{name}", key="st_subj")

# ---------------------------------------------------------------------------------------------- peaks
st.subheader("Where nonlinearity peaks")
peaks = J.peak_layers(subj, by)
peaks_mean = J.peak_layers(group, by)
both = pd.concat([peaks_mean, peaks], ignore_index=True)
p1, p2 = st.columns([1.3, 1])
with p1:
    S.show_figure(plot_peak_layers(both, layers, by=by, groups=shown), f"peak_layers_{name}", key="st_peaks")
with p2:
    wide = both.pivot_table(index=by, columns="subject", values="peak_layer", aggfunc="first").reindex(shown)
    wide = wide[["mean"] + [c for c in wide.columns if c != "mean"]].reset_index()
    S.show_table(wide, f"peak_layers_{name}", key="st_peaks_table")
    st.caption("Peak layer of the mean over subjects (\"mean\") and of each subject. Ties go to the shallowest layer.")

surface = study.space in SURFACE_SPACES
if surface:
    from jnecore.plotting import VIEWS, plot_surface_map

    d1, d2, d3 = st.columns(3)
    surf = d1.selectbox("Surface", ["inflated", "very_inflated", "pial", "white", "flat"], key="st_surface")
    if study.space != "fsLR32k" and surf == "very_inflated":
        surf = "inflated"
    hemi = d2.selectbox("Hemisphere", ["both", "left", "right"], key="st_hemi")
    view = d3.selectbox("View", list(VIEWS), index=list(VIEWS).index("ventral") if "ventral" in VIEWS else 0,
                        key="st_view", disabled=surf == "flat")
vpeak = J.vertex_peak_layer(long, "jne", significant_only=sig_only)
st.markdown("**Peak layer per vertex** (the layer of each vertex's highest mean JNE across subjects)")
if surface and len(vpeak):
    fig = plot_peak_layer_map(vpeak, layers, space=study.space, surf_mesh=surf, hemi=hemi, view=view,
                              title=f"Peak layer per vertex ({n_subjects} subjects)")
    fig.update_layout(height=520)
    S.show_figure(fig, f"peak_layer_map_{name}", key="st_peak_map", theme=None)
elif not surface:
    st.info(f"The study's space ({study.space}) has no cortical mesh; the table lists each vertex's peak layer.")
with st.expander("Per-vertex peak layers"):
    S.show_table(vpeak, f"vertex_peak_layer_{name}", key="st_vpeak")

# ---------------------------------------------------------------------------------------------- consistency
st.subheader("Consistency across subjects")
if n_subjects < 2:
    st.info("One subject: nothing to correlate.")
else:
    k1, k2 = st.columns([1, 1.2])
    scope = k1.selectbox("Correlate over", ["all layers (pooled)"] + layers, key="st_corr_scope",
                         help="Pooled: every (layer, ROI) value both subjects have, so the layer trend counts as "
                              "agreement; one layer: the ROI pattern within it")
    pooled = scope == "all layers (pooled)"
    pairs = J.subject_correlations(subj, by, per_layer=not pooled)
    pairs = pairs[pairs["layer"] == ("all" if pooled else scope)]
    with k1:
        S.show_table(pairs, f"subject_correlations_{name}", key="st_pairs")
    with k2:
        n_vals = int(pairs["n"].min()) if len(pairs) else 0
        S.show_figure(plot_subject_correlations(J.correlation_matrix(pairs), n=n_vals,
                                                title=f"Pearson r of {'ROI' if by == 'roi' else 'level'}-level JNE between subjects ({scope})"),
                      f"subject_correlations_{name}", key="st_corr")

c_layer = st.selectbox("Layer for the maps below", layers, index=len(layers) - 1, key="st_cons_layer")
cons = J.vertex_consistency(long, "jne", layer=c_layer, significant_only=sig_only)
what = st.radio("Map", ["mean", "n_significant"], horizontal=True, key="st_cons_map",
                format_func={"mean": "Across-subject mean JNE",
                             "n_significant": "Subjects in which the vertex is significant"}.get)
st.caption("The significant-subject count rests on vertex-wise tests, which treat neighbouring vertices as "
           "independent and overstate significance; read it as a description, not as a test.")
if surface and len(cons):
    vals = cons[what].to_numpy(dtype=float)
    if what == "n_significant":
        kw = dict(cmap="Blues", vmin=0, vmax=float(n_subjects), value_name="subjects significant")
    else:
        ok = vals[np.isfinite(vals)]
        kw = dict(cmap="Hot", vmin=float(np.percentile(ok, 2)) if len(ok) else None,
                  vmax=float(np.percentile(ok, 98)) if len(ok) else None, value_name="mean JNE")
    try:
        fig = plot_surface_map(vals, vertices=cons["vertex"].to_numpy(dtype=np.int64), space=study.space, surf_mesh=surf,
                               hemi=hemi, view=view, hover=cons[["roi", "level"]].astype(str),
                               title=f"{kw['value_name']} at {c_layer} ({n_subjects} subjects)", **kw)
        fig.update_layout(height=520)
        S.show_figure(fig, f"consistency_{what}_{S.slug(c_layer)}_{name}", key="st_cons_fig", theme=None)
    except Exception as exc:
        st.error(f"Could not draw the map: {type(exc).__name__}: {exc}")
with st.expander("Per-vertex table"):
    S.show_table(cons, f"vertex_consistency_{S.slug(c_layer)}_{name}", key="st_cons")

# ---------------------------------------------------------------------------------------------- R² gain
st.subheader("R² gain of the nonlinear over the linear encoder")
gain_subj = J.subject_layer_table(long, by, "r2_gain", significant_only=sig_only)
gain = J.group_layer_table(gain_subj, by)
S.show_figure(plot_r2_gain(gain, by=by, groups=shown, layers=layers), f"r2_gain_layers_{name}", key="st_gain")
with st.expander("R² gain table"):
    S.show_table(gain, f"r2_gain_layers_{name}", key="st_gain_table")

# ---------------------------------------------------------------------------------------------- tests
st.subheader("Hierarchy tests across subjects")
if n_subjects < J.MIN_SUBJECTS:
    st.info(f"{n_subjects} subject(s): no test across subjects (it needs {J.MIN_SUBJECTS} at least). The lines above "
            "show the per-subject values.")
else:
    t1, t2 = st.columns([1.4, 1])
    t_layer = t1.selectbox("Layer", ["mean over layers"] + layers, key="st_test_layer",
                           help="Each subject's mean at this layer, or its average over the layers")
    test = t2.radio("Paired test", ["ttest", "wilcoxon"], horizontal=True, key="st_test",
                    format_func={"ttest": "paired t-test", "wilcoxon": "Wilcoxon signed-rank"}.get)
    st.caption(f"One-sided paired tests on the {n_subjects} per-subject means (H1: row > column), Benjamini-Hochberg "
               "FDR over the pairs of each matrix. The paired t-test is the default: with 3-5 subjects the exact "
               "signed-rank test cannot reach p < 0.05 (its smallest p is 1/2ⁿ).")
    lay = None if t_layer == "mean over layers" else t_layer
    lv_subj = J.subject_layer_table(long, "level", "jne", significant_only=sig_only) if by == "roi" else subj
    lv_means = J.subject_means(lv_subj, "level", layer=lay)
    lv_tests = J.hierarchy_tests(lv_means, test=test)
    r_means = J.subject_means(J.subject_layer_table(long, "roi", "jne", significant_only=sig_only) if by == "level"
                              else subj, "roi", layer=lay)
    chosen = [r for r in shown if r in r_means.columns] if by == "roi" else \
        [r for r in ("V1", "V2", "V3", "V4", "FFC", "PHA1", "RSC") if r in r_means.columns]
    r_tests = J.hierarchy_tests(r_means, groups=chosen, test=test) if len(chosen) >= 2 else None
    h1, h2 = st.columns(2)
    with h1:
        if len(lv_tests):
            S.show_figure(plot_test_matrix(lv_tests, groups=list(lv_means.columns),
                                           title=f"Levels, H1: row > column; q (BH-FDR), {t_layer}"),
                          f"level_tests_{name}", key="st_lv_tests")
        else:
            st.info("Only one level has values: nothing to test.")
    with h2:
        if r_tests is not None and len(r_tests):
            S.show_figure(plot_test_matrix(r_tests, groups=chosen, title=f"ROIs, H1: row > column; q (BH-FDR), {t_layer}"),
                          f"roi_tests_{name}", key="st_roi_tests")
        else:
            st.info("Choose at least two ROIs to compare them.")
    with st.expander("Test tables and per-subject means"):
        S.show_table(lv_tests, f"level_tests_{name}", key="st_lv_tests_table")
        if r_tests is not None:
            S.show_table(r_tests, f"roi_tests_{name}", key="st_roi_tests_table")
        S.show_table(lv_means.reset_index(), f"subject_level_means_{name}", key="st_lv_means")
