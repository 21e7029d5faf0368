"""Where the committed sample results live, in a source checkout or an installed package."""

from __future__ import annotations

from pathlib import Path

__all__ = ["sample_data_dir", "sample_bundle_path"]


def sample_data_dir() -> Path:
    """The ``sample_data/`` folder: the repository's in a source checkout, else the copy installed
    as package data (``jnecore/sample_data``)."""
    repo = Path(__file__).resolve().parents[1] / "sample_data"
    if (repo / "sample" / "manifest.json").is_file():
        return repo
    installed = Path(__file__).resolve().parent / "sample_data"
    return installed if (installed / "sample" / "manifest.json").is_file() else repo


def sample_bundle_path() -> Path:
    """The committed sample bundle (simulated data on the real HCP-MMP atlas)."""
    return sample_data_dir() / "sample"
