"""Readers for features, responses, ROI labels and stimulus categories (no pickles, ever).

- arrays and tables: :func:`read_array` (.npy, .npz[:key], .h5[:dataset], numeric .parquet /
  .csv), :func:`read_labels` (one-column tables), :func:`read_table_matrix` (keyed tables)
- responses in neuroimaging formats (GIfTI, MGH/MGZ, CIFTI-2, NIfTI + mask):
  :func:`read_responses`, with :func:`apply_vertices` and :func:`check_space`
- ROI labels (.annot, .label, .label.gii, .mgz/.nii + lookup, .dlabel.nii, tables):
  :func:`read_rois`, :func:`read_lookup`
- categories in row order or keyed by stimulus id: :func:`read_categories`
"""

from ._inputs import (MESH_SIZES, UNLABELLED, Responses, apply_vertices, check_space, read_categories,
                      read_responses, read_rois)
from ._neuro import file_kind, hemi_from_name, read_lookup
from ._readers import read_array, read_labels, read_table, read_table_matrix, sniff

__all__ = ["MESH_SIZES", "UNLABELLED", "Responses", "apply_vertices", "check_space", "file_kind",
           "hemi_from_name", "read_array", "read_categories", "read_labels", "read_lookup", "read_responses",
           "read_rois", "read_table", "read_table_matrix", "sniff"]
