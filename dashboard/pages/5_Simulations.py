"""Simulations (Result I): JNE tracks the nonlinearity of known functions."""

from __future__ import annotations

import streamlit as st

from jnecore.dashboard import _state as S
from jnecore.plotting import plot_placement, plot_placement_pairs, plot_sample_size, plot_single_neuron
from jnecore.simulate import PAPER_ORDER, paper_order_holds

S.page_setup("Simulations", ":material/science:")
bundle = S.sidebar(roi=False)
st.title("Simulations (Result I)")
st.caption("Before trusting JNE on brains, the paper checks it on functions whose nonlinearity is known: "
           "(a) a single neuron y = φ(x), where JNE over narrow windows follows |φ''|; (b) where the activation "
           "sits in a small residual or plain network, the paper's claimed order next to the measured one; "
           "(c) how many samples JNE needs.")

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
    info = S.read_json(sim / "simulations.json")  # bounded; {} and a warning when unreadable
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
pl, order = table("placement_summary.parquet"), table("placement_order.parquet")
pairs = table("placement_pairs.parquet")
compared = pl is not None and order is not None and pairs is not None and {"ci_low", "ci_high"} <= set(pl.columns)
if compared:
    conf = f"{(info.get('placement') or {}).get('confidence', 0.95):.0%}"
    st.markdown(f"**The paper claims** JNE {' < '.join(PAPER_ORDER)}. **Measured here** over "
                f"{int(order['n_repeats'].max())} initialisations per configuration, with {conf} t intervals of the "
                "mean and of the paired differences between neighbours in the claimed order. A configuration "
                "*agrees* when every neighbouring difference is above 0, *disagrees* when any pair is reversed, "
                "and is *inconclusive* otherwise.")
    holds = paper_order_holds(order)
    if holds:
        st.success("The paper's order holds in: " + "; ".join(holds))
    else:
        st.warning("The paper's order holds in none of the configurations run.")
    shown = [c for c in ("architecture", "init", "activation", "claimed_order", "measured_order", "verdict", "reason")
             if c in order]
    S.show_table(order[shown], "placement_order", key="placement_order_table")
elif pl is not None:
    st.info("These simulations predate the paper-vs-measured comparison (no CIs or verdicts): rerun "
            f"`jne simulate --out {bundle.path}` to add it.")
if pl is not None:
    errs = ["ci", "std", "sem"] if compared else ["std", "sem"]
    err = st.radio("Error bars", errs, key="sim_err", horizontal=True,
                   format_func={"ci": "CI of the mean", "std": "SD over initialisations", "sem": "SEM"}.get)
    S.show_figure(plot_placement(pl, error=err, order=order if compared else None), "placement", key="placement")
    if compared:
        S.show_figure(plot_placement_pairs(pairs), "placement_pairs", key="placement_pairs")
        S.show_table(pairs, "placement_pairs", key="placement_pairs_table")
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
