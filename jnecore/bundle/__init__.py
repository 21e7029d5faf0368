"""Result bundles: writing, loading, validating and finding them."""

from ._bundle import (LEVELS, REQUIRED_VERTEX_COLUMNS, SCHEMA_VERSION, SPACES, Bundle, BundleError,
                      find_bundles, load_bundle, validate_bundle, write_bundle)
from ._archive import MAX_ARCHIVE_BYTES, MAX_ARCHIVE_FILES, extract_bundle_archive

__all__ = ["LEVELS", "MAX_ARCHIVE_BYTES", "MAX_ARCHIVE_FILES", "REQUIRED_VERTEX_COLUMNS", "SCHEMA_VERSION", "SPACES", "Bundle", "BundleError",
           "extract_bundle_archive", "find_bundles", "load_bundle", "validate_bundle", "write_bundle"]
