"""Exports: tables as CSV, figures as interactive HTML, JNE maps as GIfTI in the bundle's space.

GIfTI maps are full-mesh, one file per hemisphere (``<name>.L.func.gii`` / ``<name>.R.func.gii``),
float32, NaN on vertices that were not modelled, so they overlay directly on the space's surfaces
(e.g. in Connectome Workbench or nilearn). Bundles in the ``volume`` or ``none`` space have no
mesh: :func:`map_to_gifti` raises :class:`ExportError` saying so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .spaces import SURFACE_SPACES, space_size
from .validation import InputError

__all__ = ["ExportError", "GIFTI_SPACES", "HEMI_STRUCTURES", "table_csv", "figure_html", "full_mesh_values",
           "map_to_gifti", "gifti_bytes", "write_gifti", "gifti_available"]

#: vertices per hemisphere of the spaces a GIfTI map can be written in
GIFTI_SPACES = {name: space_size(name) for name in SURFACE_SPACES}
#: GIfTI AnatomicalStructurePrimary per hemisphere
HEMI_STRUCTURES = {"left": "CortexLeft", "right": "CortexRight"}


class ExportError(InputError):
    """An export that is not possible for this bundle (e.g. a surface map of volume data)."""


def table_csv(table: pd.DataFrame, *, index: bool = False) -> bytes:
    """A DataFrame as UTF-8 CSV bytes (no index by default)."""
    return table.to_csv(index=index).encode("utf-8")


def figure_html(fig, *, include_plotlyjs: bool | str = True, full_html: bool = True) -> bytes:
    """A plotly figure as a standalone interactive HTML page (UTF-8 bytes).

    ``include_plotlyjs=True`` (default) embeds plotly.js so the file works offline (~4 MB more);
    pass "cdn" for a small file that loads plotly.js from the internet.
    """
    return fig.to_html(include_plotlyjs=include_plotlyjs, full_html=full_html,
                       config={"displaylogo": False, "toImageButtonOptions": {"format": "svg"}}).encode("utf-8")


def gifti_available(space: str) -> bool:
    """Whether maps of this bundle space can be exported as GIfTI."""
    return str(space) in GIFTI_SPACES


def full_mesh_values(values, vertex, space: str) -> np.ndarray:
    """Scatter per-vertex values onto the full L+R mesh of ``space`` (NaN elsewhere).

    values : (n,) values; vertex : (n,) indices into the concatenated L+R mesh.
    Returns (2 * n_per_hemisphere,) float32.
    """
    if not gifti_available(space):
        raise ExportError(f"space {space!r}", "has no surface mesh: GIfTI export is available for "
                                              f"{', '.join(GIFTI_SPACES)} bundles only (volume / none: use the CSV)")
    n = GIFTI_SPACES[space]
    values = np.asarray(values, dtype=np.float32)
    vertex = np.asarray(vertex, dtype=np.int64)
    if values.shape != vertex.shape:
        raise ValueError(f"{values.shape[0]} values for {vertex.shape[0]} vertex indices")
    if vertex.size and (vertex.min() < 0 or vertex.max() >= 2 * n):
        raise ExportError(f"space {space!r}", f"vertex indices must lie in [0, {2 * n}) ({n} per hemisphere)")
    full = np.full(2 * n, np.nan, dtype=np.float32)
    full[vertex] = values
    return full


def map_to_gifti(values, vertex, space: str, hemi: str, *, name: str = "jne", meta: dict | None = None):
    """A nibabel GiftiImage of one hemisphere's full-mesh map.

    Parameters
    ----------
    values : (n,) per modelled vertex; vertex : (n,) L+R mesh indices
    space : "fsLR32k", "fsaverage5" or "fsaverage" (anything else raises ExportError)
    hemi : "left" or "right"
    name : map name stored in the data array's metadata
    """
    import nibabel as nib

    if hemi not in HEMI_STRUCTURES:
        raise ValueError(f"hemi must be 'left' or 'right', got {hemi!r}")
    full = full_mesh_values(values, vertex, space)
    n = GIFTI_SPACES[space]
    data = full[:n] if hemi == "left" else full[n:]
    md = {"Name": name, "AnatomicalStructurePrimary": HEMI_STRUCTURES[hemi], "Space": space}
    md.update({str(k): str(v) for k, v in (meta or {}).items()})
    darray = nib.gifti.GiftiDataArray(np.ascontiguousarray(data, dtype=np.float32), intent="NIFTI_INTENT_ESTIMATE",
                                      datatype="NIFTI_TYPE_FLOAT32", meta=nib.gifti.GiftiMetaData({"Name": name}))
    return nib.gifti.GiftiImage(darrays=[darray], meta=nib.gifti.GiftiMetaData(md))


def gifti_bytes(values, vertex, space: str, hemi: str, *, name: str = "jne", meta: dict | None = None) -> bytes:
    """:func:`map_to_gifti` serialised to bytes (the content of a .func.gii file)."""
    return map_to_gifti(values, vertex, space, hemi, name=name, meta=meta).to_bytes()


def write_gifti(values, vertex, space: str, out_prefix, *, name: str = "jne", meta: dict | None = None) -> list:
    """Write ``<out_prefix>.L.func.gii`` and ``<out_prefix>.R.func.gii``; return their paths."""
    out_prefix = Path(out_prefix)
    out_prefix.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for hemi, tag in (("left", "L"), ("right", "R")):
        p = out_prefix.parent / f"{out_prefix.name}.{tag}.func.gii"
        p.write_bytes(gifti_bytes(values, vertex, space, hemi, name=name, meta=meta))
        paths.append(p)
    return paths

