"""The cells of a study: every subject x layer x setting, in a fixed order."""

from __future__ import annotations

from ._studyfile import Study

__all__ = ["expand_cells", "cell_id"]


def cell_id(subject: str, layer: str, setting: str) -> str:
    """``"<subject>/<layer>/<setting>"``, also the cell's folder under ``<study>/cells/``."""
    return f"{subject}/{layer}/{setting}"


def expand_cells(study: Study) -> list:
    """One dict per cell (subject-major, then layer in the study's order, then setting).

    Each has the keys of a ``study.json`` cell: id, subject, layer, layer_index (0 = shallowest,
    the order of ``layers``), setting, params (the setting's own parameters) and bundle (relative
    to the study folder); the run state keys are added by :mod:`jnecore.sweep._state`.
    """
    cells = []
    for subject in study.subjects:
        for index, layer in enumerate(study.layers):
            for setting, params in study.settings.items():
                cid = cell_id(subject, layer, setting)
                cells.append({"id": cid, "subject": subject, "layer": layer, "layer_index": index,
                              "setting": setting, "params": dict(params), "bundle": f"cells/{cid}"})
    return cells
