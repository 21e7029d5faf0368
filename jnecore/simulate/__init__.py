"""The paper's Result I simulations: JNE tracks the nonlinearity of known functions.

(a) :func:`single_neuron`: y = phi(x) for ReLU, LeakyReLU, GELU, SiLU on narrow windows; JNE(c)
    against |phi''(c)|.
(b) :func:`network_placement`: a D-H-1 (residual) network with the activation at none / Loc1 /
    Loc2 / both, over random initialisations.
(c) :func:`sample_size`: phi(x) = |sin x| on windows of N random points; how the correlation of
    JNE with |phi''| depends on N.

:func:`run_simulations` runs all three and writes a bundle's ``simulations/`` folder.
"""

from ._activations import SIM_ACTIVATIONS, activation_module, first_derivative, kink_jump, second_derivative
from ._common import correlation, jne_single_output, window_grid
from ._placement import (
    INITS, PLACEMENTS, PlacementNet, PlacementWeights, init_placement_weights, network_placement,
    placement_jacobians, placement_order, placement_summary,
)
from ._run import SIMULATION_FILES, run_simulations
from ._sample_size import SAMPLE_SIZES, abs_sin, sample_size, sample_size_summary
from ._single_neuron import single_neuron, single_neuron_jne, single_neuron_summary

__all__ = [
    "INITS", "PLACEMENTS", "SAMPLE_SIZES", "SIMULATION_FILES", "SIM_ACTIVATIONS", "PlacementNet",
    "PlacementWeights", "abs_sin", "activation_module", "correlation", "first_derivative",
    "init_placement_weights", "jne_single_output", "kink_jump", "network_placement",
    "placement_jacobians", "placement_order", "placement_summary", "run_simulations", "sample_size",
    "sample_size_summary", "second_derivative", "single_neuron", "single_neuron_jne",
    "single_neuron_summary", "window_grid",
]
