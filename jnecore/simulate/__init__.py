"""The paper's Result I simulations: JNE tracks the nonlinearity of known functions.

(a) :func:`single_neuron`: y = phi(x) for ReLU, LeakyReLU, GELU, SiLU on narrow windows; JNE(c)
    against |phi''(c)|.
(b) :func:`network_placement`: a D-H-1 residual or plain network with the activation at none /
    Loc1 / Loc2 / both, over random initialisations; :func:`placement_tables` puts the paper's
    claimed order (none < Loc1 < Loc2 < both) next to the measured one, with t intervals over
    repeats and a verdict (agrees / disagrees / inconclusive) per configuration.
(c) :func:`sample_size`: phi(x) = |sin x| on windows of N random points; how the correlation of
    JNE with |phi''| depends on N.

:func:`run_simulations` runs all three and writes a bundle's ``simulations/`` folder.
"""

from ._activations import SIM_ACTIVATIONS, activation_module, first_derivative, kink_jump, second_derivative
from ._common import Windows, correlation, derivative_jne, jne_single_output, window_grid
from ._order import (
    CONFIDENCE, PAPER_ORDER, VERDICTS, config_keys, order_report, paper_order_holds, placement_order,
    placement_pairs, placement_summary, placement_tables, t_interval,
)
from ._placement import (
    ARCHITECTURES, INITS, PLACEMENTS, PlacementNet, PlacementSpec, PlacementWeights, init_placement_weights,
    network_placement, placement_jacobians,
)
from ._run import DEFAULT_INITS, SIMULATION_FILES, run_simulations
from ._sample_size import SAMPLE_SIZES, abs_sin, sample_size, sample_size_summary
from ._single_neuron import single_neuron, single_neuron_jne, single_neuron_summary

__all__ = [
    "ARCHITECTURES", "CONFIDENCE", "DEFAULT_INITS", "INITS", "PAPER_ORDER", "PLACEMENTS", "SAMPLE_SIZES",
    "SIMULATION_FILES", "SIM_ACTIVATIONS", "VERDICTS", "PlacementNet", "PlacementSpec", "PlacementWeights",
    "Windows", "abs_sin", "activation_module", "config_keys", "correlation", "derivative_jne",
    "first_derivative", "init_placement_weights", "jne_single_output", "kink_jump", "network_placement",
    "order_report", "paper_order_holds", "placement_jacobians", "placement_order", "placement_pairs",
    "placement_summary", "placement_tables", "run_simulations", "sample_size", "sample_size_summary",
    "second_derivative", "single_neuron", "single_neuron_jne", "single_neuron_summary", "t_interval",
    "window_grid",
]
