"""Stimulus selectivity (JNE-SS): which stimulus groups drive nonlinearity in which ROI."""

from __future__ import annotations

import numpy as np
import streamlit as st

from jnecore.dashboard import _state as S
from jnecore import summaries
from jnecore.plotting import (plot_group_drivers, plot_margin_comparison, plot_roi_group_bars,
                              plot_roi_group_heatmap, plot_top_stimuli)

S.page_setup("Stimulus selectivity", ":material/grid_on:")
bundle = S.sidebar()
st.title("Stimulus selectivity (JNE-SS)")
S.simulated_banner(bundle)
st.caption("JNE-SS of stimulus i at vertex v = (s_iv − μ_v)²: how far stimulus i pushes the vertex away from "
           "its typical local linear map. MoJ = mean JNE-SS of a vertex over a group's stimuli; MoM = mean MoJ over "
           "a ROI's vertices. The paper finds outdoor scenes driving PPA and RSC, people and faces driving FFA and EBA.")
TRUNKS = {"shared": "shared trunk (the paper's)", "roi": "one encoder per ROI", "level": "one encoder per level"}


def trunk_of(manifest: dict) -> str:
    return (manifest.get("trunk") or {}).get("mode", "shared")


mode = trunk_of(bundle.manifest)
if mode == "shared":
    st.info("**Encoder trunk: shared** (the paper's encoder). One trunk serves every vertex, so a nonlinearity learned "
            "for one region leaks into the other regions' readouts and dilutes their category preferences. "
            "`jne run --trunk roi` fits one encoder per ROI instead.", icon=":material/info:")
else:
    st.caption(f"Encoder trunk: **{TRUNKS.get(mode, mode)}** (`jne run --trunk {mode}`): each region's readout sees "
               "only its own encoder's nonlinearity. With the paper's shared trunk, a nonlinearity learned for one "
               "region leaks into the others' readouts and dilutes their category preferences.")

v = bundle.vertices
path = str(bundle.path)
stamp = S._stamp(path)
groups = S.groupings(bundle)
if not len(bundle.test_stimuli) or not groups:
    st.info("This bundle has no test stimuli with a category or cluster column: JNE-SS cannot be grouped.")
    st.stop()
computed = np.isfinite(v["jne"].to_numpy(dtype=float)) & v["significant"].to_numpy(dtype=bool)
if not computed.any():
    st.info("JNE-SS was not computed for any vertex (no vertex passed the significance test).")
    st.stop()

c0, c1, c2 = st.columns([1.4, 1, 3])
roi_set = S.roi_set_choice(c0, widget_key="s_roi_set")
src = S.functional_source()
gcol = c1.selectbox("Group stimuli by", groups, key="s_group_col",
                    help="category labels, or clusters (t-SNE + k-means in the paper) when the bundle has them")
SCALES = {"none": "absolute MoM (one colour scale)", "roi": "relative (min-max per ROI)",
          "group": "relative to the mean over ROIs"}
scale = c2.radio("Heatmap scale", list(SCALES), format_func=SCALES.get, key="s_scale", horizontal=True,
                 help="Absolute: the MoM itself, one colour bar for every ROI, so ROIs compare. Relative (min-max "
                      "per ROI, the paper's Fig. 8c): 0 = the ROI's lowest group, 1 = its highest, whatever their "
                      "size, so some group is 1.00 in every ROI even where none stands out. Relative to the mean "
                      "over ROIs: where a group drives nonlinearity more than in the average ROI.")
normalised = scale == "roi"

table = S.roi_group(path, stamp, gcol, True, roi_set, src)
if table.empty:
    st.info("No ROI has vertices with JNE-SS.")
    st.stop()
all_rois = S.roi_set_rois(bundle, roi_set)
rois = [r for r in all_rois if r in set(table["roi"].astype(str))]
group_names = sorted(table["group"].astype(str).unique())
roi = S.selected_roi(roi_set)

# ---------------------------------------------------------------------------------------------
st.subheader(f"ROI × {gcol} MoM")
fig = plot_roi_group_heatmap(table, scale=scale, roi_order=rois, group_order=group_names, highlight_roi=roi)
if scale == "roi":
    st.caption("Relative scale: every row is stretched to 0-1 on its own, so each ROI's top group reads 1.00 even "
               "when its lead is tiny. The absolute scale shows how large the MoM is.")
S.show_figure(fig, f"roi_{gcol}_heatmap", key="heatmap")
with st.expander("ROI × group table (long format)"):
    S.show_table(table, f"roi_{gcol}_mom", key="roi_group_table")

# ---------------------------------------------------------------------------------------------
# the same inputs fitted with another trunk (bundles that differ from this one only in the trunk)
twins = [p for p in S.list_bundles(tuple(S.bundle_roots())) if trunk_of(S.manifest_of(p)) != mode
         and summaries.same_inputs(bundle.manifest, S.manifest_of(p))]
twins = [p for p in twins if gcol in S.groupings(S.get_bundle(p))]
if twins:
    st.subheader("Shared trunk vs one encoder per region")
    t1, t2 = st.columns([1, 2])
    compare = t1.toggle("Compare with the same inputs fitted with another trunk", key="s_trunk_compare",
                        help="bundles in the list whose inputs and settings equal this one's, apart from the trunk")
    twin = S.bound_selectbox("Other fit", twins, "s_trunk_twin", where=t2, format_func=S._label) if compare else None
    other = S.roi_group(twin, S._stamp(twin), gcol, True, roi_set, src) if twin is not None else None
    if other is not None and other.empty:
        st.info("The other fit has no vertex with JNE-SS (none passed its significance test): nothing to compare.")
    elif other is not None:
        other_mode = trunk_of(S.manifest_of(twin))
        here, there = f"this bundle: {TRUNKS.get(mode, mode)}", f"other: {TRUNKS.get(other_mode, other_mode)}"
        margins = {here: summaries.selectivity_margins(table), there: summaries.selectivity_margins(other)}
        S.show_figure(plot_margin_comparison(margins, roi_order=rois), f"trunk_{gcol}_margins", key="trunk_margins")
        side = margins[here].merge(margins[there], on="roi", how="outer", suffixes=(f" ({here})", f" ({there})"))
        S.show_table(side.drop(columns=[c for c in side.columns if c.startswith("runner_up")]),
                     f"trunk_{gcol}_margins", key="trunk_margin_table")
        h1, h2 = st.columns(2)
        shared = {}
        if scale == "none":  # one colour scale for both fits
            both = np.r_[table["mom"].to_numpy(dtype=float), other["mom"].to_numpy(dtype=float)]
            both = both[np.isfinite(both)]
            shared = dict(vmin=float(both.min()), vmax=float(both.max())) if both.size else {}
        for where, (label, tab, key) in zip((h1, h2), ((here, table, "heatmap_here"), (there, other, "heatmap_other"))):
            with where:
                S.show_figure(plot_roi_group_heatmap(tab, scale=scale, roi_order=rois, group_order=group_names,
                                                     title=label, **shared), f"roi_{gcol}_{key}", key=key)

# ---------------------------------------------------------------------------------------------
st.subheader("One ROI: its stimulus groups and top stimuli")
r1, r2 = st.columns([2, 1])
focus = S.roi_selector(bundle, where=r1, widget_key="_w_roi_selectivity", label="ROI", allow_none=False, rois=rois)
k = r2.slider("Top stimuli", min_value=5, max_value=min(50, len(bundle.test_stimuli)), value=min(10, len(bundle.test_stimuli)),
              key="s_top_k") if len(bundle.test_stimuli) > 5 else len(bundle.test_stimuli)
b1, b2 = st.columns(2)
ci = S.roi_group_ci(path, stamp, gcol, focus, roi_set, src)
with b1:
    S.show_figure(plot_roi_group_bars(table, focus, normalised=False, ci=ci), f"{focus}_{gcol}_bars", key="roi_bars")
    st.caption(f"Error bars: 95% percentile bootstrap CIs over the test stimuli ({S.CI_RESAMPLES} resamples of each "
               f"{gcol}'s stimuli, seeded), with the ROI's vertices fixed.")
mask = computed & (S.roi_set_labels(bundle, roi_set) == str(focus))
top = summaries.top_stimuli(bundle.jne_ss, bundle.test_stimuli, mask, k=int(k), group_column=gcol)
with b2:
    S.show_figure(plot_top_stimuli(top, group_column=gcol, roi=focus, all_groups=group_names), f"{focus}_top_stimuli",
                  key="top_stimuli")
S.show_table(top, f"{focus}_top_stimuli", key="top_table")
with st.expander(f"{focus}: MoM per {gcol} with bootstrap CIs"):
    S.show_table(ci, f"{focus}_{gcol}_ci", key="ci_table")

# ---------------------------------------------------------------------------------------------
st.subheader(f"One {gcol}: which ROIs it drives most")
g1, g2 = st.columns([2, 1])
default_group = "outdoor scene" if "outdoor scene" in group_names else group_names[0]
group = S.bound_selectbox(gcol.capitalize(), group_names, f"jne_group_{gcol}", default=default_group, where=g1)
top_n = g2.slider("ROIs shown", min_value=3, max_value=max(3, len(rois)), value=min(15, max(3, len(rois))),
                  key="s_top_rois") if len(rois) > 3 else len(rois)
drivers = summaries.group_drivers(table, group, normalised=normalised)
sv = S.roi_set_vertices(bundle, roi_set)
pairs = sv[["roi", "level"]].astype(str).drop_duplicates("roi")
levels = dict(zip(pairs["roi"], pairs["level"]))
S.show_figure(plot_group_drivers(drivers, group, normalised=normalised, levels=levels, top=top_n),
              f"{S.slug(group)}_drivers", key="drivers")
with st.expander(f"All ROIs ranked for '{group}'"):
    S.show_table(drivers, f"{S.slug(group)}_drivers", key="drivers_table")
