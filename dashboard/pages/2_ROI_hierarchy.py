"""ROI hierarchy: JNE per ROI along the visual hierarchy, level tests, ROI comparisons, R² scatter."""

from __future__ import annotations

import streamlit as st

from jnecore.dashboard import _state as S
from jnecore import summaries
from jnecore.plotting import (plot_level_bars, plot_r2_scatter, plot_roi_bars, plot_roi_distributions,
                              plot_test_matrix, r2_correlation_table)

S.page_setup("ROI hierarchy", ":material/stacked_bar_chart:")
bundle = S.sidebar()
st.title("ROI hierarchy")
S.simulated_banner(bundle)
st.caption("The paper's finding: JNE is lowest in primary visual cortex (V1), intermediate in V2-V4 and "
           "highest in higher-order areas (EBA, PPA, RSC, OPA, FFA). Statistics use the significant vertices.")

v = bundle.vertices
roi = S.selected_roi()
rois = S.bundle_rois(bundle)

METRICS = {"JNE": "jne", "R² nonlinear": "r2_nonlinear", "R² linear": "r2_linear"}
if "true_nonlinearity" in v:
    METRICS["Planted nonlinearity (simulated truth)"] = "true_nonlinearity"
if "noise_ceiling" in v:
    METRICS["Noise ceiling (%)"] = "noise_ceiling"
c1, c2, c3 = st.columns([2, 1.4, 1.4])
metric_label = c1.selectbox("Metric", list(METRICS), key="h_metric")
metric = METRICS[metric_label]
sig_only = c2.checkbox("Significant vertices only", value=True, key="h_sig_only")
zero = c2.checkbox("Bars start at zero", value=False, key="h_zero",
                   help="JNE has no absolute scale (it keeps the response gain): by default the axis is fitted "
                        "to the data so that differences between ROIs are visible")
test = c3.selectbox("One-sided test", ["mannwhitney", "welch"], key="h_test",
                    format_func={"mannwhitney": "Mann-Whitney U", "welch": "Welch's t"}.get)

try:
    summary = S.stored_table(bundle, "roi_summary", lambda: summaries.roi_summary(v, metric, significant_only=sig_only),
                             metric=metric, significant_only=sig_only)
    summary = summaries.order_rois(summary, rois)
except KeyError as exc:
    st.error(str(exc))
    st.stop()
if summary.empty:
    st.info(f"No vertex has a finite {metric_label}" + (" among the significant ones." if sig_only else "."))
    st.stop()

# ---------------------------------------------------------------------------------------------
st.subheader(f"{metric_label} per ROI")
fig = plot_roi_bars(summary, metric=metric, highlight_roi=roi, zero=zero)
S.show_figure(fig, f"roi_bars_{metric}", key="roi_bars")
with st.expander("Per-ROI table"):
    S.show_table(summary, f"roi_summary_{metric}", key="roi_summary")

st.subheader("Distributions per ROI")
d1, d2 = st.columns([1, 4])
kind = d1.radio("Plot", ["violin", "box"], key="h_kind", horizontal=True)
dist_rois = d2.multiselect("ROIs (empty = all)", rois, default=[], key="h_dist_rois")
fig = plot_roi_distributions(v, metric, rois=dist_rois or None, kind=kind, significant_only=sig_only,
                             roi_order=[r for r in rois if not dist_rois or r in dist_rois])
S.show_figure(fig, f"roi_distributions_{metric}", key="roi_dist")

# ---------------------------------------------------------------------------------------------
st.subheader("Primary vs intermediate vs higher-order")
levels = S.stored_table(bundle, "level_summary", lambda: summaries.level_summary(v, metric, significant_only=sig_only),
                        metric=metric, significant_only=sig_only)
tests = S.stored_table(bundle, "level_tests",
                       lambda: summaries.pairwise_tests(v, "level", metric, significant_only=sig_only, test=test),
                       metric=metric, significant_only=sig_only, same_settings=test == "mannwhitney")
l1, l2 = st.columns([1, 1.3])
with l1:
    S.show_figure(plot_level_bars(levels, metric=metric, zero=zero), f"level_bars_{metric}", key="level_bars")
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
default = [r for r in ("V1", "V2", "V3", "V4", "FFC", "PHA1", "RSC") if r in rois]
if roi and roi not in default:
    default.append(roi)
if len(default) < 2:
    default = rois[: min(4, len(rois))]
chosen = st.multiselect("ROIs to compare", rois, default=default, key="h_compare_rois")
if len(chosen) >= 2:
    order = [r for r in rois if r in chosen]
    k1, k2 = st.columns([1.2, 1])
    with k1:
        fig = plot_roi_distributions(v, metric, rois=order, kind="box", significant_only=sig_only, roi_order=order,
                                     title=f"{metric_label}: chosen ROIs")
        S.show_figure(fig, f"roi_compare_{metric}", key="roi_compare")
    roi_tests = summaries.pairwise_tests(v, "roi", metric, groups=order, significant_only=sig_only, test=test)
    with k2:
        S.show_figure(plot_test_matrix(roi_tests, groups=order, title="H1: row ROI > column ROI; q (BH-FDR)"),
                      f"roi_tests_{metric}", key="roi_tests")
    S.show_table(roi_tests, f"roi_tests_{metric}", key="roi_tests_table")
else:
    st.info("Choose at least two ROIs.")

# ---------------------------------------------------------------------------------------------
st.subheader("Linear vs nonlinear encoder R² (paper Fig. 5)")
s1, s2 = st.columns([1, 3])
scope = s1.radio("Vertices", ["all ROIs", "chosen ROIs", "selected ROI"], key="h_scatter_scope",
                 disabled=False)
scatter_rois = None
if scope == "chosen ROIs" and len(chosen):
    scatter_rois = chosen
elif scope == "selected ROI" and roi:
    scatter_rois = [roi]
with s2:
    fig = plot_r2_scatter(v, rois=scatter_rois, significant_only=sig_only)
    S.show_figure(fig, "r2_scatter", key="r2_scatter")
with st.expander("Pearson r of linear vs nonlinear R² per ROI"):
    S.show_table(r2_correlation_table(v, significant_only=sig_only), "r2_correlation_per_roi", key="r2_corr")
