"""Result bundles: the contract, writing, loading, validating, finding and unpacking them.

- ``_contract.py``: file names, columns, dtypes, stored tables and the schema version.
- ``_bundle.py``: :func:`write_bundle`, :func:`load_bundle` / :class:`Bundle`, :func:`find_bundles`.
- ``_assemble.py``: a fitted :class:`jnecore.JNEAnalysis` to bundle parts (:func:`write_analysis`).
- ``_archive.py``: :func:`extract_bundle_archive` with size, path and schema checks.
"""

from ._archive import MAX_ARCHIVE_BYTES, MAX_ARCHIVE_FILES, extract_bundle_archive
from ._assemble import analysis_manifest, stimulus_table, summary_tables, vertex_table, write_analysis
from ._bundle import LEVELS, Bundle, BundleError, find_bundles, load_bundle, validate_bundle, write_bundle
from ._contract import (FILES, REQUIRED_STIMULUS_COLUMNS, REQUIRED_VERTEX_COLUMNS, SCHEMA_VERSION, SPACES,
                        STIMULUS_COLUMNS, STORED_SUMMARY, TABLES, VERTEX_COLUMNS, encoder_filename)

__all__ = [
    "FILES", "LEVELS", "MAX_ARCHIVE_BYTES", "MAX_ARCHIVE_FILES", "REQUIRED_STIMULUS_COLUMNS",
    "REQUIRED_VERTEX_COLUMNS", "SCHEMA_VERSION", "SPACES", "STIMULUS_COLUMNS", "STORED_SUMMARY", "TABLES",
    "VERTEX_COLUMNS", "Bundle", "BundleError", "analysis_manifest", "encoder_filename", "extract_bundle_archive",
    "find_bundles", "load_bundle", "stimulus_table", "summary_tables", "validate_bundle", "vertex_table",
    "write_analysis", "write_bundle",
]
