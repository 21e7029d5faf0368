"""Encoding performance: R² against the noise ceiling, R² per ROI, the ridge baseline, significant vertices.

The per-ROI panels group by the chosen ROI set (the bundle's parcels or the paper's functional names).
"""

from __future__ import annotations

import streamlit as st

from jnecore.dashboard import _state as S
from jnecore.plotting import (encoders_present, noise_ceiling_fraction, plot_noise_ceiling_density, plot_r2_by_roi,
                              plot_r2_distributions, plot_r2_pair_scatter, plot_significant_counts, ridge_comparison,
                              significant_counts)

S.page_setup("Encoding performance", ":material/insights:")
bundle = S.sidebar()
st.title("Encoding performance")
S.simulated_banner(bundle)

v = bundle.vertices
has_ridge = "ridge" in encoders_present(v)
cfg = bundle.manifest.get("config", {})
st.caption(f"Test R² = 1 − mean((y − ŷ)²) / var(y) on the {len(bundle.test_stimuli)} test stimuli. Significance: "
           f"{cfg.get('n_boot', '?')} bootstrap resamples of the test rows, p = share of resampled R² < 0, "
           f"Benjamini-Hochberg FDR at q < {cfg.get('alpha', 0.05)}.")
c0, c1 = st.columns([1.6, 4])
roi_set = S.roi_set_choice(c0, widget_key="e_roi_set")
rv = S.roi_set_vertices(bundle, roi_set)  # the vertex table in the ROI set, for the per-ROI panels
rois = S.roi_set_rois(bundle, roi_set)
per_roi = roi_set == "parcels" or bool(rois)  # the per-ROI panels have something to group
if roi_set == "functional":
    left_out = S.roi_set_left_out(bundle, roi_set)
    n_out = int(left_out.sum())
    named = ", ".join(left_out.index[:5]) + (", ..." if len(left_out) > 5 else "")
    c1.caption((f"Functional names: {n_out:,} of {len(v):,} vertices ({100 * n_out / len(v):.1f}%) lie in "
                f"{len(left_out)} ROI(s) without a functional name ({named}) and are left out of the per-ROI panels "
                "(test R² and significant vertices per ROI)." if n_out else
                "Functional names: every vertex's ROI has a functional name.") +
               " The noise-ceiling and ridge panels use every vertex.")

# ---------------------------------------------------------------------------------------------
st.subheader("R² against the noise ceiling (paper Fig. 4c)")
if "noise_ceiling" in v and v["noise_ceiling"].notna().any():
    n1, n2 = st.columns([1, 1])
    model = n1.radio("Encoder", ["nonlinear", "linear"] + (["ridge"] if has_ridge else []), key="p_model",
                     horizontal=True)
    nc_sig = n2.checkbox("Significant vertices only", value=False, key="p_nc_sig")
    fig = plot_noise_ceiling_density(v, model=model, significant_only=nc_sig)
    S.show_figure(fig, f"noise_ceiling_{model}", key="nc_density")
    share, n = noise_ceiling_fraction(v, model=model, significant_only=nc_sig)
    share_lin, _ = noise_ceiling_fraction(v, model="linear", significant_only=nc_sig)
    share_non, _ = noise_ceiling_fraction(v, model="nonlinear", significant_only=nc_sig)
    m = st.columns(4 if has_ridge else 3)
    m[0].metric("Vertices with a noise ceiling", f"{n:,}")
    m[1].metric("≥ 80% of ceiling (nonlinear)", f"{100 * share_non:.1f}%")
    m[2].metric("≥ 80% of ceiling (linear)", f"{100 * share_lin:.1f}%")
    if has_ridge:
        share_ridge, _ = noise_ceiling_fraction(v, model="ridge", significant_only=nc_sig)
        m[3].metric("≥ 80% of ceiling (ridge)", f"{100 * share_ridge:.1f}%")
else:
    st.info("This bundle has no noise ceiling (`noise_ceiling` column): it needs repeated presentations of the "
            "stimuli (NSD: ncsnr from the across-repeat variance). The other panels below do not need it.")

# ---------------------------------------------------------------------------------------------
st.subheader("Test R² per ROI")
r2_sig = st.checkbox("Significant vertices only", value=True, key="p_r2_sig")
if per_roi:
    S.show_figure(plot_r2_by_roi(rv, significant_only=r2_sig, roi_order=rois), "r2_per_roi", key="r2_roi")
else:
    st.info(S.NO_FUNCTIONAL_ROIS)
if roi_set == "functional":
    S.functional_caveats_expander(bundle)

# ---------------------------------------------------------------------------------------------
st.subheader("Against the ridge baseline")
if has_ridge:
    st.caption("Ridge: the field's standard encoding model, one linear map from the features with a penalty "
               "chosen per vertex by K-fold cross-validation on the training stimuli (himalaya RidgeCV), "
               "scored on the same test stimuli.")
    b1, b2 = st.columns([1, 1])
    net = b1.radio("Network encoder", ["linear", "nonlinear"], key="p_ridge_net", horizontal=True)
    ridge_sig = b2.checkbox("Significant vertices only", value=False, key="p_ridge_sig")
    S.show_figure(plot_r2_distributions(v, significant_only=ridge_sig), "r2_distributions", key="r2_dist")
    S.show_figure(plot_r2_pair_scatter(v, x="ridge", y=net, significant_only=ridge_sig), f"r2_ridge_vs_{net}",
                  key="ridge_scatter")
    S.show_table(ridge_comparison(v, significant_only=ridge_sig), "ridge_comparison", key="ridge_table")
else:
    st.caption("This bundle has no ridge baseline (no `r2_ridge` column): the panels above compare the linear "
               "and nonlinear encoders only, and nothing else on this page changes.")

st.subheader("Significant vertices per ROI")
if per_roi:
    counts = significant_counts(rv)
    order = {r: i for i, r in enumerate(rois)}
    counts = counts.assign(_o=counts["roi"].map(order)).sort_values("_o").drop(columns="_o").reset_index(drop=True)
    S.show_figure(plot_significant_counts(counts), "significant_counts", key="sig_counts")
    S.show_table(counts, "significant_counts", key="sig_counts_table")
else:
    st.info(S.NO_FUNCTIONAL_ROIS)
