"""Plotly figures from bundle data (nilearn-style API: data in, ``go.Figure`` out).

Every function takes nilearn's keyword names where they apply: ``stat_map`` (the values),
``surf_mesh`` (the surface), ``bg_map``, ``hemi``, ``view``, ``threshold``, ``cmap``, ``vmin``,
``vmax``, ``title``.
"""

from ._surface import HOVERTEMPLATE, VIEWS, camera_for_view, camera_position, colormaps, hover_label, plot_surface_map
from ._surface_views import DEFAULT_PANELS, plot_surface_views, save_surface_figure
from ._surface_stream import decode_payload, join_figure, split_figure, surface_presets
from ._vertex import plot_vertex_profile

__all__ = ["HOVERTEMPLATE", "VIEWS", "DEFAULT_PANELS", "camera_for_view", "camera_position", "colormaps",
           "hover_label", "plot_surface_map", "plot_surface_views", "save_surface_figure", "decode_payload",
           "join_figure", "split_figure", "surface_presets", "plot_vertex_profile"]

# ROI, selectivity, performance, simulation and comparison figures (dashboard pages)
from ._roi import (LEVEL_COLORS, METRIC_LABELS, level_color, plot_level_bars, plot_r2_scatter, plot_roi_bars,
                   plot_roi_distributions, plot_test_matrix, r2_correlation_table)
from ._selectivity import (group_colors, plot_group_drivers, plot_margin_comparison, plot_roi_group_bars,
                           plot_roi_group_heatmap, plot_top_stimuli, roi_group_matrix)
from ._performance import (ENCODERS, encoders_present, noise_ceiling_fraction, plot_noise_ceiling_density,
                           plot_r2_by_roi, plot_r2_distributions, plot_r2_pair_scatter, plot_significant_counts,
                           ridge_comparison, significant_counts)
from ._simulations import (PLACEMENT_COLORS, RESULT_SYMBOLS, plot_placement, plot_placement_pairs, plot_sample_size,
                           plot_single_neuron)
from ._compare import compare_rois, plot_roi_comparison, vertex_difference

__all__ += [
    "ENCODERS", "LEVEL_COLORS", "METRIC_LABELS", "PLACEMENT_COLORS", "compare_rois", "encoders_present",
    "plot_r2_distributions", "plot_r2_pair_scatter", "ridge_comparison", "group_colors", "level_color",
    "noise_ceiling_fraction", "plot_group_drivers", "plot_level_bars", "plot_noise_ceiling_density",
    "plot_placement", "plot_placement_pairs", "RESULT_SYMBOLS", "plot_r2_by_roi", "plot_r2_scatter", "plot_roi_bars", "plot_roi_comparison",
    "plot_roi_distributions", "plot_roi_group_bars", "plot_roi_group_heatmap", "plot_sample_size",
    "plot_significant_counts", "plot_single_neuron", "plot_test_matrix", "plot_top_stimuli",
    "r2_correlation_table", "roi_group_matrix", "significant_counts", "vertex_difference",
    "plot_margin_comparison",
]

# study figures (Study page)
from ._study import (group_line_colors, layer_colorscale, plot_layer_lines, plot_peak_layer_map, plot_peak_layers,
                     plot_r2_gain, plot_subject_correlations)

__all__ += ["group_line_colors", "layer_colorscale", "plot_layer_lines", "plot_peak_layer_map", "plot_peak_layers",
            "plot_r2_gain", "plot_subject_correlations"]
