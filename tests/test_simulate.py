"""The Result I simulations: exactness against compute_jne, the linear zero, the |phi''| link."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from jnecore import compute_jne
from scipy import stats

from jnecore.cli import main
from jnecore.simulate import (
    PAPER_ORDER, PLACEMENTS, SIM_ACTIVATIONS, SIMULATION_FILES, VERDICTS, PlacementNet, PlacementSpec, Windows,
    activation_module, first_derivative, init_placement_weights, jne_single_output, network_placement,
    order_report, paper_order_holds, placement_jacobians, placement_pairs, placement_summary, placement_tables,
    run_simulations, sample_size, sample_size_summary, second_derivative, single_neuron, single_neuron_jne,
    single_neuron_summary, t_interval, window_grid,
)


@pytest.fixture(scope="module")
def quick_neuron():
    return single_neuron(windows=Windows(step=0.2), n_points=101)


# ---------------------------------------------------------------- activations


@pytest.mark.parametrize("name", ["gelu", "silu"])
def test_second_derivative_matches_autograd(name):
    x = torch.linspace(-8, 8, 161, dtype=torch.float64, requires_grad=True)
    (d1,) = torch.autograd.grad(activation_module(name)(x).sum(), x, create_graph=True)
    (d2,) = torch.autograd.grad(d1.sum(), x)
    np.testing.assert_allclose(second_derivative(name, x.detach().numpy()), d2.numpy(), rtol=1e-10, atol=1e-14)


def test_window_grid_hits_zero():
    centres, offsets = window_grid(10.0, 0.02, 0.001, 1001)
    assert centres.size == 1001 and offsets.size == 1001
    assert centres[500] == 0.0 and offsets[500] == 0.0
    assert centres[0] == -10.0 and centres[-1] == 10.0
    np.testing.assert_allclose(offsets[[0, -1]], [-0.001, 0.001])


# ---------------------------------------------------------------- (a) single neuron


@pytest.mark.parametrize("name", SIM_ACTIVATIONS)
@pytest.mark.parametrize("centre", [0.0, -1.3, 2.0, 7.5])
def test_single_neuron_vectorised_equals_compute_jne(name, centre):
    _, offsets = window_grid(10.0, 0.02, 0.001, 1001)
    x = centre + offsets
    fast = single_neuron_jne(name, x[None, :])[0]
    ref = compute_jne(activation_module(name), x[:, None], dtype=torch.float64, device="cpu").jne[0]
    assert fast == pytest.approx(ref, rel=1e-9, abs=1e-18)


def test_single_neuron_piecewise_linear_is_zero_off_the_kink(quick_neuron):
    for name in ("relu", "leaky_relu"):
        g = quick_neuron[quick_neuron.activation == name]
        assert (g.loc[~g.kink, "jne"] == 0.0).all()
        assert g.kink.sum() == 1 and (g.loc[g.kink, "jne"] > 0).all()
        assert g.loc[g.kink, "centre"].item() == 0.0


def test_single_neuron_smooth_activations_are_nonlinear_everywhere_near_zero(quick_neuron):
    for name in ("gelu", "silu"):
        g = quick_neuron[(quick_neuron.activation == name) & (quick_neuron.centre.abs() < 3)]
        assert (g["jne"] > 0).all()


def test_single_neuron_tracks_second_derivative(quick_neuron):
    summary = single_neuron_summary(quick_neuron).set_index("activation")
    # measured: Pearson 1 - 3e-11 (GELU, SiLU, 1001 and 101 centres); Spearman 0.996 (GELU, where
    # float64 rounding of phi' ~ 1 dominates for c > 7) and 0.9998 (SiLU)
    for name in ("gelu", "silu"):
        assert summary.loc[name, "pearson_r"] > 0.999
        assert summary.loc[name, "spearman_r"] > 0.99
        assert summary.loc[name, "median_ratio_to_taylor"] == pytest.approx(1.0, abs=1e-3)
    for name in ("relu", "leaky_relu"):  # one nonzero window each, where the delta sits
        assert summary.loc[name, "pearson_r"] == pytest.approx(1.0)


# ---------------------------------------------------------------- (b) placement


@pytest.mark.parametrize("residual, bias, acts", [(True, False, SIM_ACTIVATIONS), (False, True, ("relu", "silu"))])
def test_placement_closed_form_equals_compute_jne(residual, bias, acts):
    w = init_placement_weights(PlacementSpec(20, 12, 30, bias=bias), seed=3, dtype=torch.float64)
    for act in acts:
        for p in PLACEMENTS:
            net = PlacementNet(w, act, p, residual=residual)
            ref = compute_jne(net, w.X, dtype=torch.float64, device="cpu").jne[0]
            fast = jne_single_output(placement_jacobians(w, act, p, residual=residual).unsqueeze(0))[0].item()
            if p == "none":
                assert ref == 0.0 and fast == 0.0
            else:
                assert fast == pytest.approx(ref, rel=1e-10)


def test_placement_closed_form_jacobian_equals_autograd():
    w = init_placement_weights(PlacementSpec(10, 8, 6, bias=True), seed=4, dtype=torch.float64)
    for act in SIM_ACTIVATIONS:
        for p in PLACEMENTS:
            net = PlacementNet(w, act, p, residual=True)
            J = torch.func.vmap(torch.func.jacrev(lambda x: net(x[None])[0, 0]))(w.X)
            Jc = placement_jacobians(w, act, p).expand_as(J)
            np.testing.assert_allclose(Jc.numpy(), J.detach().numpy(), rtol=1e-11, atol=1e-13)


def test_placement_float32_agrees_with_compute_jne():
    w = init_placement_weights(PlacementSpec(32, 32, 48), seed=5, dtype=torch.float32)
    for act in ("relu", "gelu"):
        for p in ("Loc1", "Loc2", "both"):
            ref = compute_jne(PlacementNet(w, act, p), w.X, device="cpu").jne[0]
            fast = jne_single_output(placement_jacobians(w, act, p).unsqueeze(0))[0].item()
            assert fast == pytest.approx(ref, rel=1e-4)


@pytest.mark.parametrize("init", ["default", "xavier", "normal"])
def test_network_placement_zero_only_without_activation(init):
    df = network_placement(repeats=2, spec=PlacementSpec(16, 16, 40, init=init), device="cpu")
    assert len(df) == 2 * 2 * len(SIM_ACTIVATIONS) * len(PLACEMENTS)  # 2 architectures
    assert list(df.columns) == ["architecture", "init", "activation", "placement", "repeat", "jne"]
    assert (df["init"] == init).all() and list(dict.fromkeys(df["architecture"])) == ["residual", "plain"]
    assert (df.loc[df.placement == "none", "jne"] == 0.0).all()
    assert (df.loc[df.placement != "none", "jne"] > 0.0).all()


def test_network_placement_is_seeded_and_repeat_stable():
    kw = dict(spec=PlacementSpec(8, 8, 20), device="cpu", activations=("gelu",), architectures=("residual",))
    a = network_placement(repeats=3, seed=7, **kw)
    b = network_placement(repeats=2, seed=7, **kw)
    c = network_placement(repeats=2, seed=8, **kw)
    np.testing.assert_array_equal(a[a.repeat < 2].jne.to_numpy(), b.jne.to_numpy())
    assert not np.array_equal(b.jne.to_numpy(), c.jne.to_numpy())


def test_residual_and_plain_share_a_draw():
    """Both architectures in one pass equal one pass each; with phi1 the identity (none, Loc2) the
    skip path adds the same w3 W1 to every sample's Jacobian, so the two architectures' JNE are equal."""
    kw = dict(spec=PlacementSpec(12, 10, 30), repeats=3, seed=2, device="cpu", dtype=torch.float64)
    both = network_placement(architectures=("residual", "plain"), **kw)
    one = pd.concat([network_placement(architectures=(a,), **kw) for a in ("residual", "plain")], ignore_index=True)
    np.testing.assert_allclose(both["jne"], one["jne"], rtol=1e-10, atol=0)
    wide = both.pivot_table(index=["activation", "placement", "repeat"], columns="architecture", values="jne")
    same = wide.xs("Loc2", level="placement")
    np.testing.assert_allclose(same["residual"], same["plain"], rtol=1e-9)
    differ = wide.xs("Loc1", level="placement")
    assert (np.abs(differ["residual"] / differ["plain"] - 1) > 1e-3).all()


def test_t_interval_against_scipy():
    x = np.array([0.3, 1.1, 0.7, 2.0, 1.4])
    m, lo, hi = t_interval(x, 0.9)
    ref = stats.t.interval(0.9, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    assert m == pytest.approx(x.mean()) and (lo, hi) == pytest.approx(ref, rel=1e-12)
    assert t_interval(np.full(4, 2.5)) == (2.5, 2.5, 2.5)
    m1, lo1, hi1 = t_interval([1.0])
    assert m1 == 1.0 and np.isnan(lo1) and np.isnan(hi1)
    # coverage on planted normal data: 4000 samples of 5 around a known mean of 2
    draws = np.random.default_rng(0).normal(2.0, 3.0, size=(4000, 5))
    cover = np.mean([lo <= 2.0 <= hi for _, lo, hi in map(t_interval, draws)])
    assert cover == pytest.approx(0.95, abs=0.015)


def _hand_table():
    """Per-repeat JNE for three configurations whose verdict is known by construction."""
    noise = np.array([0.01, -0.02, 0.015, -0.005, 0.0])  # mean 0
    rows = []
    for act, means in (("relu", (0, 1, 2, 3)),        # the paper's order, well separated
                       ("gelu", (0, 2, 1, 3)),        # Loc2 below Loc1 in every repeat
                       ("silu", (0, 1, 1, 3))):       # Loc1 and Loc2 tied up to noise
        for r, e in enumerate(noise):
            for p, m in zip(PAPER_ORDER, means):
                jne = 0.0 if p == "none" else m + (e if p != "Loc2" else -e)
                rows.append(dict(architecture="residual", init="normal", activation=act, placement=p, repeat=r,
                                 jne=jne))
    return pd.DataFrame(rows), noise


def test_verdicts_on_a_hand_made_table():
    df, noise = _hand_table()
    t = placement_tables(df)
    order = t["order"].set_index("activation")
    assert order.loc["relu", "verdict"] == "agrees"
    assert order.loc["relu", "measured_order"] == "none < Loc1 < Loc2 < both"
    assert order.loc["gelu", "verdict"] == "disagrees"
    assert order.loc["gelu", "measured_order"] == "none < Loc2 < Loc1 < both"
    assert "Loc2 - Loc1 = -1" in order.loc["gelu", "reason"]
    assert order.loc["silu", "verdict"] == "inconclusive" and "Loc2 - Loc1" in order.loc["silu", "reason"]
    assert set(t["order"]["verdict"]) <= set(VERDICTS)
    assert (t["order"]["claimed_order"] == "none < Loc1 < Loc2 < both").all()
    # the Loc1 -> Loc2 paired difference of silu is -2 e_r: its t interval by hand
    pairs = t["pairs"].set_index(["activation", "lower", "upper"])
    d = -2 * noise
    ref = stats.t.interval(0.95, d.size - 1, loc=d.mean(), scale=stats.sem(d))
    row = pairs.loc[("silu", "Loc1", "Loc2")]
    assert (row.ci_low, row.ci_high) == pytest.approx(ref) and row.result == "unresolved" and row.adjacent
    assert pairs.loc[("gelu", "Loc1", "Loc2"), "fraction_lower"] == 0.0
    assert not pairs.loc[("relu", "none", "both"), "adjacent"]
    assert len(t["pairs"]) == 3 * 6
    assert paper_order_holds(t["order"]) == ["residual, init=normal: relu"]
    report = order_report(t["order"])
    assert report[-1] == "the paper's order (none < Loc1 < Loc2 < both) holds in: residual, init=normal: relu"
    assert report[1].startswith("residual, init=normal, gelu: paper none < Loc1 < Loc2 < both | measured none < "
                                "Loc2 < Loc1 < both | disagrees (Loc2 - Loc1")
    none_only = t["order"].assign(verdict="disagrees")
    assert order_report(none_only)[-1].endswith("holds in none of the configurations run")


def test_summary_cis_contain_the_mean_and_shrink_with_repeats():
    kw = dict(spec=PlacementSpec(16, 16, 40), seed=1, device="cpu", activations=("relu", "silu"))
    few, many = (placement_summary(network_placement(repeats=n, **kw)) for n in (10, 80))
    for s in (few, many):
        assert ((s["ci_low"] <= s["mean"]) & (s["mean"] <= s["ci_high"])).all()
        none = s[s["placement"] == "none"]
        assert (none["mean"] == 0).all() and (none["ci_low"] == 0).all() and (none["ci_high"] == 0).all()
        assert (s.loc[s["placement"] == "none", "rank"] == 1).all()
    key = ["architecture", "init", "activation", "placement"]
    w_few = few.set_index(key).eval("ci_high - ci_low")
    w_many = many.set_index(key).eval("ci_high - ci_low").loc[w_few.index]
    active = w_few.index.get_level_values("placement") != "none"
    assert (w_many[active] < w_few[active]).all()
    assert (many["n"] == 80).all()
    # "none" is exactly 0 and every active placement above it: its pairs with "none" support the claim
    pairs = placement_pairs(network_placement(repeats=4, **kw))
    assert (pairs.loc[pairs["lower"] == "none", "result"] == "supports").all()


# ---------------------------------------------------------------- (c) sample size


def test_sample_size_correlation_grows_with_n():
    curve = sample_size(sizes=(10, 1000), windows=Windows(step=0.2))
    summary = sample_size_summary(curve).set_index("n_samples")
    assert list(curve.columns) == ["n_samples", "centre", "jne", "abs_second_derivative", "kink"]
    assert (summary["n_kink_windows"] == 1).all()  # only the window at 0 holds a multiple of pi
    # measured (seed 0): r = 0.93 (N=10) and 0.9995 (N=1000) on 1000 windows; 0.95 and 0.9995 here
    assert summary.loc[1000, "pearson_r"] > 0.99
    assert summary.loc[1000, "pearson_r"] > summary.loc[10, "pearson_r"]
    assert curve.loc[curve.kink, "abs_second_derivative"].isna().all()


def test_first_derivative_of_abs_sin():
    x = torch.tensor([-1.0, 0.5, 4.0], dtype=torch.float64)
    d = first_derivative(lambda t: torch.sin(t).abs(), x)
    np.testing.assert_allclose(d.numpy(), (torch.cos(x) * torch.sign(torch.sin(x))).numpy())


# ---------------------------------------------------------------- run_simulations


def test_run_simulations_quick_writes_documented_files(tmp_path):
    out = tmp_path / "simulations"
    result = run_simulations(out, quick=True, repeats=200, seed=1, device="cpu")
    for name, columns in SIMULATION_FILES.items():
        path = out / name
        assert path.is_file(), name
        if name.endswith(".parquet"):
            df = pd.read_parquet(path)
            assert len(df) > 0
            assert set(columns) <= set(df.columns), (name, df.columns)
    assert sorted(p.name for p in out.iterdir()) == sorted(SIMULATION_FILES)
    stored = json.loads((out / "simulations.json").read_text())
    assert stored == json.loads(json.dumps(result))
    assert stored["config"]["repeats"] == 3 and stored["config"]["quick"] is True
    assert stored["config"]["architectures"] == ["residual", "plain"]
    assert stored["config"]["inits"] == ["default", "normal"]
    configs = stored["placement"]["configurations"]
    assert len(configs) == 2 * 2 * len(SIM_ACTIVATIONS)
    for c in configs:
        assert c["means"]["none"]["mean"] == 0.0 and c["measured_order"].startswith("none <")
        assert c["claimed_order"] == "none < Loc1 < Loc2 < both" and c["verdict"] in VERDICTS
        assert sum(q["adjacent"] for q in c["pairs"]) == 3
    assert stored["placement"]["report"][-1].startswith("the paper's order (none < Loc1 < Loc2 < both) holds in")
    for act in SIM_ACTIVATIONS:
        assert set(stored["single_neuron"][act]) >= {"pearson_r", "spearman_r"}
    assert set(stored["sample_size"]) == {"10", "20", "50", "100", "200", "500", "1000"}
    assert stored["timings"]["total"] > 0
    pl = pd.read_parquet(out / "placement.parquet")
    assert len(pl) == 3 * 2 * 2 * len(SIM_ACTIVATIONS) * len(PLACEMENTS)
    order = pd.read_parquet(out / "placement_order.parquet")
    assert list(order["line"]) == [c["line"] for c in configs]


def test_run_simulations_rejects_bad_init(tmp_path):
    with pytest.raises(ValueError, match="init"):
        run_simulations(tmp_path, quick=True, inits=("orthogonal",))
    with pytest.raises(ValueError, match="architectures"):
        run_simulations(tmp_path, quick=True, architectures=("dense",))


def test_cli_simulate_prints_paper_and_measured_orders(tmp_path, capsys):
    code = main(["simulate", "--out", str(tmp_path / "sims"), "--quick", "--quiet", "--device", "cpu",
                 "--arch", "plain", "--init", "normal"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.count("placement      plain, init=normal, ") == len(SIM_ACTIVATIONS)
    assert "paper none < Loc1 < Loc2 < both | measured none <" in out
    assert "holds in" in out and "pairs: Loc1-none" in out
    assert main(["simulate", "--out", str(tmp_path / "x"), "--quick", "--arch", "dense"]) == 2
    assert "--arch" in capsys.readouterr().err
