"""Simulations (Result I): JNE tracks the nonlinearity of known functions."""

from __future__ import annotations

import json

import streamlit as st

from dashboard import _state as S
from jnecore.plotting import plot_placement, plot_sample_size, plot_single_neuron

S.page_setup("Simulations", ":material/science:")
bundle = S.sidebar(roi=False)
st.title("Simulations (Result I)")
st.caption("Before trusting JNE on brains, the paper checks it on functions whose nonlinearity is known: "
           "(a) a single neuron y = φ(x), where JNE over narrow windows follows |φ''|; (b) where the activation "
           "sits in a small residual network; (c) how many samples JNE needs.")

sim = bundle.simulations_dir
if sim is None or not any(sim.glob("*.parquet")):
    st.info(f"This bundle has no simulation results. Add them with\n\n```\njne simulate --out {bundle.path}\n```\n\n"
            "(`--quick` runs a seconds-long smoke version; the full run repeats the placement network 200 times.) "
            "The results are written to the bundle's `simulations/` folder and shown here.")
    st.stop()


def table(name):
    p = sim / name
    return S.read_parquet(str(p), p.stat().st_mtime) if p.is_file() else None


info = {}
if (sim / "simulations.json").is_file():
    try:
        info = json.loads((sim / "simulations.json").read_text())
    except (OSError, json.JSONDecodeError):
        info = {}
if (info.get("config") or {}).get("quick"):
    st.warning("These are `--quick` smoke-test simulations (few points, 3 repeats): not for reporting.")

# ---------------------------------------------------------------------------------------------
st.subheader("(a) Single neuron: JNE vs φ''")
curves, summ = table("single_neuron.parquet"), table("single_neuron_summary.parquet")
if curves is not None:
    normalise = st.toggle("Normalise each curve to its maximum", value=True, key="sim_norm")
    S.show_figure(plot_single_neuron(curves, summ, normalise=normalise), "single_neuron", key="single_neuron")
    if summ is not None:
        S.show_table(summ, "single_neuron_summary", key="single_neuron_table")
else:
    st.info("single_neuron.parquet is missing.")

# ---------------------------------------------------------------------------------------------
st.subheader("(b) Placement of the nonlinearity in a network")
pl = table("placement_summary.parquet")
if pl is not None:
    err = st.radio("Error bars", ["std", "sem"], key="sim_err", horizontal=True,
                   format_func={"std": "SD over initialisations", "sem": "SEM"}.get)
    S.show_figure(plot_placement(pl, error=err), "placement", key="placement")
    S.show_table(pl, "placement_summary", key="placement_table")
    cfg = (info.get("config") or {}).get("placement") or {}
    if cfg:
        st.caption(f"Network: {cfg.get('network', '')}; D = {cfg.get('n_features')}, H = {cfg.get('hidden')}, "
                   f"N = {cfg.get('n_samples')}; {info['config'].get('repeats', '?')} initialisations.")
else:
    st.info("placement_summary.parquet is missing.")

# ---------------------------------------------------------------------------------------------
st.subheader("(c) Sample size")
ss = table("sample_size.parquet")
if ss is not None:
    S.show_figure(plot_sample_size(ss), "sample_size", key="sample_size")
    S.show_table(ss, "sample_size", key="sample_size_table")
else:
    st.info("sample_size.parquet is missing.")

with st.expander("simulations.json"):
    st.json(info, expanded=False)
