"""One encoder trunk per ROI vs the paper's shared trunk, on the demo generator's planted selectivity.

With one trunk for every vertex, the nonlinearity the trunk learns for one region is what every other
region's readout is built from, so each ROI's own category preference is diluted. Fitting one encoder
pair per ROI (``trunk="roi"``) keeps them apart. Data: the demo generator
(:func:`jnecore.demo.simulate_responses`) on a hand-made vertex table: FFC (face), PHA1 (outdoor
scene) and LO2 (body) carry the planted gain of :data:`jnecore.demo.CATEGORY_GAIN`, V1 (three times
as many vertices, as in cortex) none.

Margin of a planted ROI: MoM of its planted category / the largest MoM of the other categories
(:func:`jnecore.summaries.selectivity_margins`). SIZES and the thresholds of :func:`violations`
come from a sweep over seeds 0-7 (the data and analysis seed equal; ``python tests/test_trunk.py
0 1 2 3 4 5 6 7`` prints it; the table is in the module's tail comment): every claim holds with
slack on every seed; the test checks one seed (SEED).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from jnecore import JNEAnalysis
from jnecore.demo import CATEGORY_GAIN, DemoSpec, simulate_responses
from jnecore.summaries import roi_group_table, selectivity_margins

pytestmark = pytest.mark.usefixtures("one_thread")

SEED = 1  # the seed with the most slack in the sweep below (any of 0-7 passes)
PLANTED = {roi: next(iter(CATEGORY_GAIN[roi])) for roi in ("FFC", "PHA1", "LO2")}  # face, outdoor scene, body
SIZES = dict(n_stimuli=2000, n_features=64, n_units=48, hidden=96, per_roi=60, v1=180, test_fraction=0.3,
             max_epochs=200, fit_batch_size=128)


def _vertices():
    rois = ["V1"] * SIZES["v1"] + [r for r in PLANTED for _ in range(SIZES["per_roi"])]
    return pd.DataFrame({"roi": rois, "level": ["primary" if r == "V1" else "higher" for r in rois],
                         "vertex": np.arange(len(rois)), "hemi": "left"})


def _analysis(trunk: str, seed: int = SEED) -> JNEAnalysis:
    return JNEAnalysis(hidden=SIZES["hidden"], n_blocks=2, max_epochs=SIZES["max_epochs"], patience=8, n_boot=50,
                       fit_batch_size=SIZES["fit_batch_size"], test_fraction=SIZES["test_fraction"], seed=seed,
                       device="cpu", trunk=trunk, grouping="categories")


def fit_pair(seed: int = SEED):
    """The demo generator's responses for :func:`_vertices` (seed ``seed``), fitted with both trunks."""
    v = _vertices()
    spec = DemoSpec(n_stimuli=SIZES["n_stimuli"], n_features=SIZES["n_features"], n_units=SIZES["n_units"], seed=seed)
    sim = simulate_responses(v, spec)
    rois = v["roi"].to_numpy()
    fitted = {trunk: _analysis(trunk, seed).fit(sim["X"], sim["Y"], groups=sim["categories"], rois=rois,
                                                levels=v["level"].to_numpy()) for trunk in ("shared", "roi")}
    return sim, rois, fitted


@pytest.fixture(scope="module")
def fits(one_thread):
    return fit_pair(SEED)


def _margins(analysis, rois) -> pd.DataFrame:
    sig = analysis.significant_ & np.isfinite(analysis.jne_)
    table = roi_group_table(analysis.jne_ss_, analysis.groups_["category"].to_numpy(), rois, vertex_mask=sig)
    return selectivity_margins(table, expected=PLANTED).set_index("roi")


def violations(fitted, rois) -> list:
    """The claims of the comparison that ``fitted`` ({"shared", "roi"} analyses) breaks (thresholds:
    see the sweep in the tail comment)."""
    shared, per_roi = _margins(fitted["shared"], rois), _margins(fitted["roi"], rois)
    out = []
    for roi, cat in PLANTED.items():
        mine, theirs = per_roi.loc[roi, "expected_margin"], shared.loc[roi, "expected_margin"]
        if per_roi.loc[roi, "top"] != cat:  # per ROI, the planted category leads ...
            out.append(f"{roi}: per-ROI top is {per_roi.loc[roi, 'top']}, not {cat}")
        if not mine > 1.15:  # ... clearly
            out.append(f"{roi}: per-ROI margin x{mine:.2f} <= 1.15")
        if not mine > theirs:  # and by more than with the shared trunk
            out.append(f"{roi}: per-ROI margin x{mine:.2f} not > shared x{theirs:.2f}")
    gm = {k: float(np.exp(np.log(m.loc[list(PLANTED), "expected_margin"]).mean()))
          for k, m in (("shared", shared), ("roi", per_roi))}
    if not gm["roi"] > 1.4 * gm["shared"]:  # the geometric mean over the three planted ROIs
        out.append(f"geometric-mean margin x{gm['roi']:.2f} not > 1.4 x shared x{gm['shared']:.2f}")
    if not per_roi.loc["V1", "margin"] < per_roi.loc[list(PLANTED), "expected_margin"].min():
        out.append(f"V1 (nothing planted) leads by x{per_roi.loc['V1', 'margin']:.2f}, as much as a planted ROI")
    agree = (fitted["shared"].significant_ == fitted["roi"].significant_).mean()
    if not agree > 0.95:  # both fits model (almost) the same vertices
        out.append(f"the two fits select different vertices ({agree:.0%} agree)")
    return out


def test_one_trunk_per_roi_sharpens_planted_selectivity(fits):
    _, rois, fitted = fits
    assert not violations(fitted, rois)


def test_per_roi_partitions_are_separate_fits(fits):
    """trunk="roi" is, column for column, the shared analysis fitted on that ROI's columns alone."""
    sim, rois, a = fits
    per_roi = a["roi"]
    assert set(per_roi.partitions_) == {"V1", *PLANTED}
    for roi, cols in per_roi.partitions_.items():
        np.testing.assert_array_equal(cols, np.flatnonzero(rois == roi))
        for enc in (per_roi.linear_[roi], per_roi.nonlinear_[roi]):
            assert enc.readout.weight.shape == (len(cols), SIZES["hidden"])
    roi = "FFC"
    cols = per_roi.partitions_[roi]
    alone = _analysis("shared").fit(sim["X"], sim["Y"][:, cols], groups=sim["categories"])
    np.testing.assert_allclose(alone.r2_nonlinear_, per_roi.r2_nonlinear_[cols], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(alone.p_, per_roi.p_[cols], rtol=0, atol=0)
    # JNE where both computed it (the FDR selection runs over all columns, so it may differ at the edge)
    both = np.isfinite(alone.jne_) & np.isfinite(per_roi.jne_[cols])
    assert both.sum() >= 0.8 * len(cols)
    np.testing.assert_allclose(per_roi.jne_[cols][both], alone.jne_[both], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(per_roi.jne_ss_[:, cols][:, both], alone.jne_ss_[:, both], rtol=1e-6, atol=1e-9)
    # the shared trunk is a different model of the same columns
    shared = a["shared"].jne_[cols]
    also = both & np.isfinite(shared)
    assert also.sum() >= 0.8 * len(cols) and np.abs(shared[also] - alone.jne_[also]).max() > 1e-3



def sweep(seeds) -> None:
    """Print the per-seed table behind SIZES: ``python tests/test_trunk.py 0 1 2 3 4 5 6 7``."""
    import torch

    torch.set_num_threads(1)
    print("seed  shared trunk: FFC PHA1 LO2    one trunk per ROI: FFC PHA1 LO2   V1 (per ROI)  claims broken")
    for seed in seeds:
        _, rois, fitted = fit_pair(seed)
        m = {k: _margins(a, rois) for k, a in fitted.items()}
        cells = {k: "  ".join(f"x{m[k].loc[r, 'expected_margin']:.2f}{'' if m[k].loc[r, 'top'] == c else '!'}"
                              for r, c in PLANTED.items()) for k in m}
        print(f"{seed:4d}  {cells['shared']:<28}  {cells['roi']:<30}  x{m['roi'].loc['V1', 'margin']:.2f}"
              f"  {'; '.join(violations(fitted, rois)) or 'none'}", flush=True)


if __name__ == "__main__":
    import sys

    sweep([int(a) for a in sys.argv[1:]] or range(8))


# The sweep behind SIZES and the thresholds (`python tests/test_trunk.py`, one torch thread; the data
# and the analysis seed equal). Planted margins of FFC (face), PHA1 (outdoor scene), LO2 (body); "!":
# the planted category is not the top one; V1: top / runner-up. No claim of `violations` broke.
#
# seed  shared trunk: FFC PHA1 LO2    one trunk per ROI: FFC PHA1 LO2   V1 (per ROI)
#    0  x1.18  x1.02  x1.13           x3.16  x1.84  x1.35             x1.02
#    1  x1.18  x1.14  x1.04           x3.37  x2.36  x2.25             x1.06
#    2  x1.10  x1.58  x0.94!          x2.21  x3.24  x1.44             x1.02
#    3  x1.07  x1.74  x0.95!          x2.14  x2.73  x1.45             x1.00
#    4  x1.11  x1.17  x1.10           x1.69  x3.36  x1.78             x1.01
#    5  x1.03  x1.30  x1.12           x1.92  x3.36  x2.21             x1.00
#    6  x1.22  x1.12  x1.27           x3.24  x2.51  x1.65             x1.08
#    7  x1.17  x1.40  x1.04           x2.98  x2.87  x1.77             x1.04
#
# Smallest over the seeds: per-ROI margin x1.35 (threshold 1.15), per-ROI / shared margin 1.19
# (threshold 1), ratio of the geometric means 1.69 (threshold 1.4), V1 x1.08 against the smallest
# planted x1.35. The previous demo generator (before its planted units became torch models) gave,
# at the same sizes: x1.27, 1.39, 1.71 and V1 at most x1.13.
