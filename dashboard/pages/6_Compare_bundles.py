"""Compare bundles: per-ROI means of bundle A vs bundle B and a per-vertex difference map."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from jnecore.dashboard import _state as S
from jnecore.plotting import compare_rois, plot_roi_comparison, vertex_difference

S.page_setup("Compare bundles", ":material/compare_arrows:")
bundle = S.sidebar()
st.title("Compare bundles")

paths = S.list_bundles(tuple(S.bundle_roots()))
if len(paths) < 2:
    st.info("Only one bundle was found. Start the dashboard on several, e.g. `jne dashboard BUNDLE_A BUNDLE_B` "
            "or on a folder holding bundles (subjects, feature models, norms ...), to compare them here.")
    st.stop()

c1, c2, c3 = st.columns([2, 2, 1.4])
a_path = S.bound_selectbox("Bundle A", paths, "jne_compare_a", default=str(bundle.path), where=c1, format_func=S._label)
b_default = next((p for p in paths if p != a_path), paths[0])
b_path = S.bound_selectbox("Bundle B", paths, "jne_compare_b", default=b_default, where=c2, format_func=S._label)
METRICS = {"JNE": "jne", "R² nonlinear": "r2_nonlinear", "R² linear": "r2_linear"}
metric_label = c3.selectbox("Metric", list(METRICS), key="cmp_metric")
metric = METRICS[metric_label]
sig_only = st.checkbox("Significant vertices only (per bundle)", value=True, key="cmp_sig")

A, err_a = S.try_bundle(a_path)
B, err_b = S.try_bundle(b_path)
for p, err in ((a_path, err_a), (b_path, err_b)):
    if err:
        st.error(f"Could not read `{p}`: {err}. Check it with `jne info {p}` or choose another bundle.")
        st.stop()
if a_path == b_path:
    st.warning("A and B are the same bundle: choose two different ones.")
for name, b in (("A", A), ("B", B)):
    if b.simulated:
        st.caption(f"Bundle {name} ({b.name}) holds simulated data.")
label_a, label_b = f"A: {A.name}", f"B: {B.name}"
if label_a[3:] == label_b[3:]:
    label_a, label_b = f"A: {Path(a_path).name}", f"B: {Path(b_path).name}"

# ---------------------------------------------------------------------------------------------
st.subheader(f"Per-ROI mean {metric_label}")
table = compare_rois(A.vertices, B.vertices, metric, significant_only=sig_only)
if table.empty:
    st.info("The two bundles share no ROI with values of this metric.")
else:
    fig = plot_roi_comparison(table, label_a=label_a, label_b=label_b, metric=metric, highlight_roi=S.selected_roi())
    S.show_figure(fig, f"compare_rois_{metric}", key="cmp_scatter")
    S.show_table(table, f"compare_rois_{metric}", key="cmp_table")

# ---------------------------------------------------------------------------------------------
st.subheader(f"Difference map: B − A ({metric_label})")
diff = vertex_difference(A.vertices, B.vertices, metric)
if sig_only:
    sa = A.vertices.set_index("vertex")["significant"].astype(bool)
    sb = B.vertices.set_index("vertex")["significant"].astype(bool)
    keep = sa.reindex(diff["vertex"]).to_numpy() & sb.reindex(diff["vertex"]).to_numpy()
    diff.loc[~keep, "diff"] = np.nan
n_shared = int(np.isfinite(diff["diff"]).sum())
st.caption(f"{len(diff):,} shared vertices, {n_shared:,} with a value in both bundles.")
if A.space != B.space:
    st.info(f"The bundles are in different spaces ({A.space} vs {B.space}): vertices cannot be matched on a surface.")
elif A.space not in ("fsLR32k", "fsaverage5", "fsaverage"):
    st.info(f"The bundles' space ({A.space}) has no cortical mesh; the table lists the per-vertex differences.")
elif n_shared == 0:
    st.info("No shared vertex has a value in both bundles.")
else:
    from jnecore.plotting import VIEWS, plot_surface_map

    d1, d2, d3 = st.columns(3)
    surface = d1.selectbox("Surface", ["inflated", "very_inflated", "pial", "white", "flat"], key="cmp_surface")
    hemi = d2.selectbox("Hemisphere", ["both", "left", "right"], key="cmp_hemi")
    view = d3.selectbox("View", list(VIEWS), index=list(VIEWS).index("posterior") if "posterior" in VIEWS else 0,
                        key="cmp_view", disabled=surface == "flat")
    vals = diff["diff"].to_numpy(dtype=float)
    m = float(np.nanpercentile(np.abs(vals), 98)) or 1.0
    try:
        fig = plot_surface_map(vals, vertices=diff["vertex"].to_numpy(dtype=np.int64), space=A.space,
                               surf_mesh=surface if not (A.space != "fsLR32k" and surface == "very_inflated") else "inflated",
                               hemi=hemi, view=view, cmap="RdBu_r", vmin=-m, vmax=m, value_name=f"Δ{metric_label}",
                               hover=pd.DataFrame({"roi": diff["roi"].astype(str), "level": diff["level"].astype(str)}),
                               highlight_roi=S.selected_roi(), title=f"{label_b} − {label_a}")
        fig.update_layout(height=560)
        S.show_figure(fig, f"difference_map_{metric}", key="cmp_map", theme=None)
    except Exception as exc:
        st.error(f"Could not draw the difference map: {type(exc).__name__}: {exc}")
with st.expander("Per-vertex table"):
    S.show_table(diff, f"vertex_difference_{metric}", key="cmp_vertex_table")
