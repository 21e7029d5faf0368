"""ROI hierarchy: JNE per ROI along the visual hierarchy, level tests, ROI comparisons, R² scatter."""

from __future__ import annotations

import streamlit as st

from jnecore.dashboard import _state as S
from jnecore.plotting import plot_level_bars, plot_roi_bars, plot_test_matrix

S.page_setup("ROI hierarchy", ":material/stacked_bar_chart:")
bundle = S.sidebar()
st.title("ROI hierarchy")
S.simulated_banner(bundle)
st.caption("The paper's finding: JNE is lowest in primary visual cortex (V1), intermediate in V2-V4 and "
           "highest in higher-order areas (EBA, PPA, RSC, OPA, FFA). Statistics use the significant vertices.")

path, stamp = str(bundle.path), S._stamp(str(bundle.path))
v0 = bundle.vertices

METRICS = {"JNE": "jne", "R² nonlinear": "r2_nonlinear", "R² linear": "r2_linear"}
if "true_nonlinearity" in v0:
    METRICS["Planted nonlinearity (simulated truth)"] = "true_nonlinearity"
if "noise_ceiling" in v0:
    METRICS["Noise ceiling (%)"] = "noise_ceiling"
c0, c1, c2, c3 = st.columns([1.6, 2, 1.4, 1.4])
roi_set = S.roi_set_choice(c0, widget_key="h_roi_set")
roi = S.selected_roi(roi_set)  # the sidebar's ROI, named in this ROI set
src = S.functional_source()
metric_label = c1.selectbox("Metric", list(METRICS), key="h_metric")
metric = METRICS[metric_label]
sig_only = c2.checkbox("Significant vertices only", value=True, key="h_sig_only")
test = c3.selectbox("One-sided test", ["mannwhitney", "welch"], key="h_test",
                    format_func={"mannwhitney": "Mann-Whitney U", "welch": "Welch's t"}.get)
rois = S.roi_set_rois(bundle, roi_set)
if roi_set == "functional" and not rois:
    st.info(S.NO_FUNCTIONAL_ROIS)
    st.stop()
key = (path, stamp, roi_set, src)

try:
    tables = S.hierarchy_tables(*key, metric, sig_only, test)
except KeyError as exc:
    st.error(str(exc))
    st.stop()
summary = tables["roi_summary"]
if summary.empty:
    st.info(f"No vertex has a finite {metric_label}" + (" among the significant ones." if sig_only else "."))
    st.stop()

# ---------------------------------------------------------------------------------------------
st.subheader(f"{metric_label} per ROI")
fig = plot_roi_bars(summary, metric=metric, highlight_roi=roi)
S.show_figure(fig, f"roi_bars_{metric}", key="roi_bars")
with st.expander("Per-ROI table"):
    S.show_table(summary, f"roi_summary_{metric}", key="roi_summary")
if roi_set == "functional":
    S.functional_caveats_expander(bundle)

st.subheader("Distributions per ROI")
d1, d2 = st.columns([1, 4])
kind = d1.radio("Plot", ["violin", "box"], key="h_kind", horizontal=True)
dist_rois = d2.multiselect("ROIs (empty = all)", rois, default=[], key="h_dist_rois")
fig = S.distribution_figure(*key, metric, sig_only, kind, tuple(dist_rois) if dist_rois else None,
                            tuple(r for r in rois if not dist_rois or r in dist_rois))
S.show_figure(fig, f"roi_distributions_{metric}", key="roi_dist")
if fig.layout.meta and fig.layout.meta["subsampled"]:
    st.caption(f"{len(fig.layout.meta['subsampled'])} ROI(s) have more than {fig.layout.meta['max_points']:,} vertices: "
               f"their {kind}s are drawn from a random subset of {fig.layout.meta['max_points']:,} of them (seeded). "
               "The tables and tests use every vertex.")

# ---------------------------------------------------------------------------------------------
st.subheader("Primary vs intermediate vs higher-order")
levels, tests = tables["level_summary"], tables["level_tests"]
l1, l2 = st.columns([1, 1.3])
with l1:
    S.show_figure(plot_level_bars(levels, metric=metric), f"level_bars_{metric}", key="level_bars")
with l2:
    if len(tests):
        S.show_figure(plot_test_matrix(tests, groups=list(levels["level"].astype(str)),
                                       title=f"H1: row level > column level ({metric_label}); q (BH-FDR)"),
                      f"level_tests_{metric}", key="level_tests")
    else:
        st.info("Only one hierarchy level has vertices: nothing to test.")
with st.expander("Level table and tests"):
    S.show_table(levels, f"level_summary_{metric}", key="level_summary")
    S.show_table(tests, f"level_tests_{metric}", key="level_tests_table")

# ---------------------------------------------------------------------------------------------
st.subheader("Compare ROIs side by side")
default = [r for r in ("V1", "V2", "V3", "V4", "FFC", "PHA1", "RSC", "FFA", "PPA", "EBA", "OPA") if r in rois]
if roi and roi in rois and roi not in default:
    default.append(roi)
if len(default) < 2:
    default = rois[: min(4, len(rois))]
chosen = st.multiselect("ROIs to compare", rois, default=default, key="h_compare_rois" if roi_set == "parcels" else f"h_compare_rois_{roi_set}")
if len(chosen) >= 2:
    order = tuple(r for r in rois if r in chosen)
    k1, k2 = st.columns([1.2, 1])
    with k1:
        fig = S.distribution_figure(*key, metric, sig_only, "box", order, order, f"{metric_label}: chosen ROIs")
        S.show_figure(fig, f"roi_compare_{metric}", key="roi_compare")
    roi_tests = S.roi_pair_tests(*key, metric, sig_only, test, order)
    with k2:
        S.show_figure(plot_test_matrix(roi_tests, groups=list(order), title="H1: row ROI > column ROI; q (BH-FDR)"),
                      f"roi_tests_{metric}", key="roi_tests")
    S.show_table(roi_tests, f"roi_tests_{metric}", key="roi_tests_table")
else:
    chosen = []
    st.info("Choose at least two ROIs.")

# ---------------------------------------------------------------------------------------------
st.subheader("Linear vs nonlinear encoder R² (paper Fig. 5)")
s1, s2 = st.columns([1, 3])
scope = s1.radio("Vertices", ["all ROIs", "chosen ROIs", "selected ROI"], key="h_scatter_scope")
scatter_rois = None
if scope == "chosen ROIs" and len(chosen):
    scatter_rois = tuple(chosen)
elif scope == "selected ROI" and roi and roi in rois:
    scatter_rois = (roi,)
with s2:
    S.show_figure(S.r2_scatter_figure(*key, sig_only, scatter_rois), "r2_scatter", key="r2_scatter")
with st.expander("Pearson r of linear vs nonlinear R² per ROI"):
    S.show_table(tables["r2_correlation"], "r2_correlation_per_roi", key="r2_corr")
