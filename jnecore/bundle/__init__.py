"""Result bundles: the contract, writing, loading, validating, finding and unpacking them.

- ``_contract.py``: file names, columns, dtypes, stored tables and the schema version.
- ``_check.py``: :func:`check_bundle`, the one schema check of a bundle read from disk (untrusted).
- ``_bundle.py``: :func:`write_bundle`, :func:`load_bundle` / :class:`Bundle`, :func:`find_bundles`.
- ``_assemble.py``: a fitted :class:`jnecore.JNEAnalysis` to bundle parts (:func:`write_analysis`).
- ``_archive.py``: :func:`extract_bundle_archive` with size, path and schema checks.
"""

from ._archive import MAX_ARCHIVE_BYTES, MAX_ARCHIVE_FILES, extract_bundle_archive
from ._assemble import analysis_manifest, check_key_maps, stimulus_table, summary_tables, vertex_table, write_analysis
from ._check import (MAX_JSON_DEPTH, MAX_MANIFEST_BYTES, MAX_TABLE_BYTES, MAX_TABLE_ROWS, Problem, check_bundle,
                     npy_header, parquet_footer, read_json, read_manifest)
from ._bundle import LEVELS, Bundle, BundleError, find_bundles, load_bundle, validate_bundle, write_bundle
from ._contract import (FILES, MANIFEST_FIELDS, REQUIRED_STIMULUS_COLUMNS, REQUIRED_VERTEX_COLUMNS, SCHEMA_VERSION,
                        SPACES, STIMULUS_COLUMNS, STORED_SUMMARY, TABLE_COLUMNS, TABLES, VERTEX_COLUMNS,
                        encoder_filename)

__all__ = [
    "FILES", "LEVELS", "MANIFEST_FIELDS", "MAX_ARCHIVE_BYTES", "MAX_ARCHIVE_FILES", "MAX_JSON_DEPTH",
    "MAX_MANIFEST_BYTES", "MAX_TABLE_BYTES", "MAX_TABLE_ROWS", "Problem", "REQUIRED_STIMULUS_COLUMNS",
    "REQUIRED_VERTEX_COLUMNS", "SCHEMA_VERSION", "SPACES", "STIMULUS_COLUMNS", "STORED_SUMMARY", "TABLE_COLUMNS",
    "TABLES", "VERTEX_COLUMNS", "Bundle", "BundleError", "analysis_manifest", "check_bundle", "check_key_maps",
    "npy_header", "parquet_footer", "read_json", "read_manifest", "encoder_filename", "extract_bundle_archive",
    "find_bundles", "load_bundle", "stimulus_table", "summary_tables", "validate_bundle", "vertex_table",
    "write_analysis", "write_bundle",
]
