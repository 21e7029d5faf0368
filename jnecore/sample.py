"""Where the committed sample results live, in a source checkout or an installed package."""

from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = ["sample_data_dir", "sample_bundle_path"]


def sample_data_dir() -> Path:
    """The ``sample_data/`` folder: the repo's, else the copy installed with the package."""
    repo = Path(__file__).resolve().parents[1] / "sample_data"
    if (repo / "sample" / "manifest.json").is_file():
        return repo
    spec = importlib.util.find_spec("sample_data")
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            if (Path(loc) / "sample" / "manifest.json").is_file():
                return Path(loc)
    return repo


def sample_bundle_path() -> Path:
    """The committed sample bundle (simulated data on the real HCP-MMP atlas)."""
    return sample_data_dir() / "sample"
