"""Readers for features, responses, ROI labels and stimulus categories (no pickles, ever)."""

from ._readers import read_array, read_labels

__all__ = ["read_array", "read_labels"]
