"""Studies: many bundles, one per cell (subject x layer x encoder setting), read and summarised together.

- ``_load.py``: :func:`load_study` (a study folder's ``study.json``, or any folder of bundles whose
  manifests carry ``study``), :func:`find_studies`, :func:`study_vertices` (one long vertex table).
- ``_summaries.py``: pure functions from that table to DataFrames: ROI / level values per subject
  and layer and their mean ± SEM across subjects, peak layers, cross-subject consistency, paired
  hierarchy tests across subjects with BH-FDR.

The study contract (``manifest["study"]`` of every cell bundle and ``study.json``) is written by
``jne sweep``; the bundles stay the only contract the dashboard reads.
"""

from ._load import (CELL_COLUMNS, STUDY_FILE, STUDY_SCHEMA, VERTEX_COLUMNS, Study, find_studies, load_study,
                    read_cell_vertices, study_vertices)
from ._summaries import (CELL_KEYS, MIN_SUBJECTS, correlation_matrix, group_layer_table, hierarchy_tests,
                         peak_layers, subject_correlations, subject_layer_table, subject_means, vertex_consistency,
                         vertex_peak_layer)

__all__ = [
    "CELL_COLUMNS", "CELL_KEYS", "MIN_SUBJECTS", "STUDY_FILE", "STUDY_SCHEMA", "VERTEX_COLUMNS", "Study",
    "correlation_matrix", "find_studies", "group_layer_table", "hierarchy_tests", "load_study", "peak_layers",
    "read_cell_vertices", "study_vertices", "subject_correlations", "subject_layer_table", "subject_means",
    "vertex_consistency", "vertex_peak_layer",
]
