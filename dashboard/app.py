"""JNE Explorer: landing page (bundle choice, manifest summary, links to the pages).

Start it with ``jne dashboard [BUNDLE_OR_FOLDER ...]`` (or ``streamlit run dashboard/app.py`` with
JNE_BUNDLE_ROOTS set). The dashboard only reads result bundles; it never fits encoders.
"""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from jnecore.dashboard import _state as S

S.page_setup("Home", ":material/home:")
bundle = S.sidebar()

st.title("JNE Explorer")
st.caption("Where, and for which stimuli, does the brain respond nonlinearly? "
           "Jacobian Nonlinearity Estimator (Gao et al., NeurIPS 2025) of encoding models from "
           "ANN features to fMRI responses.")
S.simulated_banner(bundle)

man = bundle.manifest
counts = man.get("counts", {})
v = bundle.vertices
sig = v["significant"].astype(bool)
c = st.columns(5)
c[0].metric("Space", bundle.space)
c[1].metric("Vertices modelled", f"{len(v):,}")
c[2].metric("Significant (q < α)", f"{int(sig.sum()):,}", help="bootstrap test of the nonlinear encoder's R², BH-FDR")
c[3].metric("Test stimuli", f"{len(bundle.test_stimuli):,}")
c[4].metric("ROIs", f"{v['roi'].nunique():,}")

left, right = st.columns([3, 2])
with left:
    st.subheader(S.plain(bundle.name))
    cfg = man.get("config", {})
    rows = [
        ("bundle folder", str(bundle.path)),
        ("created", man.get("created", "")),
        ("jnecore version", man.get("jnecore_version", "")),
        ("schema version", man.get("schema_version", "")),
        ("space", bundle.space),
        ("stimuli (train / val / test)",
         f"{counts.get('stimuli', len(bundle.stimuli))} ({counts.get('train', '?')} / {counts.get('val', '?')} / "
         f"{counts.get('test', len(bundle.test_stimuli))})"),
        ("encoder", f"residual MLP, hidden {cfg.get('hidden', '?')}, {cfg.get('n_blocks', '?')} blocks, "
                    f"{cfg.get('activation', '?')}"),
        ("JNE norm", str(cfg.get("norm", "l1"))),
        ("bootstrap resamples / alpha", f"{cfg.get('n_boot', '?')} / {cfg.get('alpha', '?')}"),
        ("device", " ".join(str(x) for x in (man.get("device") or {}).values())),
        ("stimulus groups", ", ".join(S.groupings(bundle)) or "none"),
        ("simulations", "yes" if bundle.simulations_dir is not None else "no (`jne simulate --out BUNDLE`)"),
    ]
    st.dataframe(pd.DataFrame(rows, columns=["field", "value"]), hide_index=True, width="stretch")
    for w in man.get("warnings", []) or []:
        st.info(f"Pipeline warning: {S.plain(w)}")
    with st.expander("Full manifest (JSON)"):
        st.code(json.dumps(man, indent=2, default=str)[:200_000], language="json")
with right:
    st.subheader("JNE along the hierarchy")
    from jnecore.summaries import level_summary

    try:
        ls = S.stored_table(bundle, "level_summary", lambda: level_summary(v, "jne"))
        ls = ls[["level", "n", "mean", "sem", "median"]]
        st.dataframe(ls.style.format({"mean": "{:.4g}", "sem": "{:.2g}", "median": "{:.4g}"}), hide_index=True,
                     width="stretch")
        st.caption("Mean JNE of the significant vertices per level. The paper reports primary (V1) lowest, "
                   "intermediate (V2-V4) in between and higher-order areas highest; see *ROI hierarchy* for the tests.")
    except Exception as exc:  # a bundle without any JNE
        st.info(f"No JNE summary available: {exc}")
    st.subheader("Pages")
    for path, label, icon, what in S.PAGES:
        st.page_link(path, label=label, icon=icon)
        st.caption(what)

others = S.list_bundles(tuple(S.bundle_roots()))
if len(others) > 1:
    with st.expander(f"All bundles found ({len(others)})"):
        rows = []
        for p in others:
            m = S.manifest_of(p)
            counts = m.get("counts") or {}
            rows.append(dict(name=m.get("name") or "(no readable manifest)", path=p, space=m.get("space", ""),
                             simulated=bool(m.get("simulated", False)), vertices=counts.get("vertices"),
                             significant=counts.get("significant"), created=m.get("created", "")))
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
        st.caption("Choose the bundle in the sidebar; the *Compare bundles* page puts two side by side.")
