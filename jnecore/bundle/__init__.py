"""Result bundles: writing, loading, validating and finding them."""

from ._bundle import (LEVELS, REQUIRED_VERTEX_COLUMNS, SCHEMA_VERSION, SPACES, Bundle, BundleError,
                      find_bundles, load_bundle, validate_bundle, write_bundle)

__all__ = ["LEVELS", "REQUIRED_VERTEX_COLUMNS", "SCHEMA_VERSION", "SPACES", "Bundle", "BundleError",
           "find_bundles", "load_bundle", "validate_bundle", "write_bundle"]
