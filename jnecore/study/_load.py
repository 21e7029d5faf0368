"""Reading a study: its cells (subject x layer x setting) and their bundles' vertex tables.

A study is read from ``<study>/study.json`` (written by ``jne sweep``) or, without one, from any
folder of result bundles whose manifests carry ``manifest["study"]`` (found by walking the
folder). Either way the bundles stay the only contract: ``study.json`` only says which cells exist,
their state and where their bundles are; each cell's subject, layer and setting are read from the
manifest when the bundle is there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..validation import InputError

__all__ = ["STUDY_FILE", "STUDY_SCHEMA", "CELL_COLUMNS", "VERTEX_COLUMNS", "Study", "load_study", "find_studies",
           "read_cell_vertices", "study_vertices"]

#: the study file of a study folder
STUDY_FILE = "study.json"
#: its schema tag
STUDY_SCHEMA = "jne-study/1"
#: columns of :attr:`Study.cells`
CELL_COLUMNS = ["id", "subject", "layer", "layer_index", "setting", "params", "state", "reason", "bundle", "seconds"]
#: vertex-table columns :func:`study_vertices` reads from every cell (``r2_gain`` is added)
VERTEX_COLUMNS = ["vertex", "hemi", "roi", "level", "significant", "jne", "r2_linear", "r2_nonlinear"]
#: a folder of bundles is walked this deep (``<study>/cells/<subject>/<layer>/<setting>`` is 4)
MAX_DEPTH = 8


def _cell_id(subject, layer, setting) -> str:
    return f"{subject}/{layer}/{setting}"


def _meta(man: dict):
    """The manifest's ``study`` block when it has the contract's keys, else None."""
    s = man.get("study") if isinstance(man, dict) else None
    if not isinstance(s, dict) or not all(k in s for k in ("subject", "layer", "layer_index")):
        return None
    try:
        int(s["layer_index"])
    except (TypeError, ValueError):
        return None
    return s


def _read_manifest(bundle: Path) -> dict | None:
    """The bundle's manifest (bounded size and nesting, :func:`jnecore.bundle.read_manifest`), or
    None when it is damaged: such a bundle is no study cell."""
    from ..bundle import read_manifest

    try:
        return read_manifest(bundle, clean=False)
    except InputError:
        return None


@dataclass
class Study:
    """The cells of one study.

    Attributes
    ----------
    path : Path
        The study folder (or the folder of bundles that was walked).
    name : str
    source : "study.json" or "bundles"
    cells : DataFrame, one row per cell (n_cells, len(CELL_COLUMNS))
        id ("<subject>/<layer>/<setting>"), subject, layer, layer_index (int, 0 = shallowest),
        setting, params (JSON text of the setting's encoder parameters), state (pending, running,
        done, failed), reason (one line or None), bundle (absolute path of the cell's bundle when it
        holds one, else None), seconds (float or NaN). Sorted by setting, subject, layer_index.
    space : str or None
        The bundles' space (None when no cell has a bundle).
    warnings : list of str
        Cells that were skipped or disagree with their bundle (one line each).
    """

    path: Path
    name: str
    source: str
    cells: pd.DataFrame
    space: str | None = None
    warnings: list = field(default_factory=list)

    @property
    def done(self) -> pd.DataFrame:
        """The cells that have a bundle (state done)."""
        return self.cells[self.cells["bundle"].notna()].reset_index(drop=True)

    @property
    def subjects(self) -> list:
        return sorted(self.done["subject"].astype(str).unique())

    @property
    def settings(self) -> list:
        return sorted(self.done["setting"].astype(str).unique())

    @property
    def layers(self) -> list:
        """Layer names in depth order (by layer_index)."""
        d = self.done.sort_values("layer_index")
        return list(dict.fromkeys(d["layer"].astype(str)))

    def state_counts(self) -> dict:
        """{state: number of cells}."""
        return {str(k): int(v) for k, v in self.cells["state"].value_counts().items()}


def _from_bundles(path: Path, name: str | None) -> Study:
    from ..bundle import find_bundles

    rows, warnings, names = [], [], {}
    for b in find_bundles(path, max_depth=MAX_DEPTH):
        man = _read_manifest(b)
        if man is None:
            warnings.append(f"{b}: its manifest.json is damaged (check it with `jne info`); skipped")
            continue
        meta = _meta(man)
        if meta is None:
            continue
        sname = str(meta.get("name") or "")
        names.setdefault(sname, 0)
        names[sname] += 1
        if name is not None and sname != name:
            continue
        setting = str(meta.get("setting") or "default")
        rows.append(dict(id=_cell_id(meta["subject"], meta["layer"], setting), subject=str(meta["subject"]),
                         layer=str(meta["layer"]), layer_index=int(meta["layer_index"]), setting=setting,
                         params=json.dumps(meta.get("params") or {}, sort_keys=True), state="done", reason=None,
                         bundle=str(b), seconds=np.nan, _space=(man or {}).get("space"), _name=sname))
    if name is None and len(names) > 1:
        raise InputError(path, f"holds cells of {len(names)} studies ({', '.join(sorted(names))}): choose one by name")
    if not rows:
        raise InputError(path, "holds no study cells: no study.json and no bundle whose manifest carries 'study' "
                               "(build one with `jne sweep STUDY.toml` or `jne demo --study`)")
    cells = pd.DataFrame(rows)
    dup = cells["id"].duplicated()
    for _, r in cells[dup].iterrows():
        warnings.append(f"{r['bundle']}: cell {r['id']} appears again; the first bundle found is used")
    cells = cells[~dup]
    study_name = name if name is not None else (next(iter(names)) or path.name)
    return Study(path=path, name=study_name, source="bundles", cells=cells, warnings=warnings)


def _from_file(path: Path) -> Study:
    f = path / STUDY_FILE
    from ..bundle import read_json

    doc = read_json(f)  # bounded size and nesting; InputError naming the file
    if not isinstance(doc.get("cells"), list):
        raise InputError(f, "must hold a JSON object with a 'cells' list")
    if str(doc.get("schema", "")).split("/")[0] != STUDY_SCHEMA.split("/")[0]:
        raise InputError(f, f"schema {doc.get('schema')!r} is not {STUDY_SCHEMA}")
    rows, warnings = [], []
    for i, c in enumerate(doc["cells"]):
        if not isinstance(c, dict) or not all(k in c for k in ("subject", "layer", "layer_index")):
            warnings.append(f"{f}: cell {i} lacks subject, layer or layer_index; skipped")
            continue
        setting = str(c.get("setting") or "default")
        state = str(c.get("state") or "pending")
        bundle, space = None, None
        if state == "done" and c.get("bundle"):
            b = (path / str(c["bundle"])).resolve()
            man = _read_manifest(b)
            meta = _meta(man or {})
            if man is None:
                warnings.append(f"{b}: cell {c.get('id')} is done but its bundle has no readable manifest; skipped")
            else:
                bundle, space = str(b), man.get("space")
                if meta is not None and (str(meta["subject"]), str(meta["layer"]), str(meta.get("setting") or "default")) \
                        != (str(c["subject"]), str(c["layer"]), setting):
                    warnings.append(f"{b}: the manifest's study block names another cell than study.json's "
                                    f"{c.get('id')}; the manifest is used")
                    c = {**c, **{k: meta[k] for k in ("subject", "layer", "layer_index") if k in meta}}
                    setting = str(meta.get("setting") or setting)
        rows.append(dict(id=_cell_id(c["subject"], c["layer"], setting), subject=str(c["subject"]),
                         layer=str(c["layer"]), layer_index=int(c["layer_index"]), setting=setting,
                         params=json.dumps(c.get("params") or {}, sort_keys=True), state=state,
                         reason=c.get("reason"), bundle=bundle,
                         seconds=float(c["seconds"]) if isinstance(c.get("seconds"), (int, float)) else np.nan,
                         _space=space, _name=str(doc.get("name") or path.name)))
    cells = pd.DataFrame(rows, columns=CELL_COLUMNS + ["_space", "_name"])
    return Study(path=path, name=str(doc.get("name") or path.name), source="study.json", cells=cells,
                 warnings=warnings)


def load_study(path, name: str | None = None) -> Study:
    """The study in folder ``path``.

    Parameters
    ----------
    path : str or Path
        A study folder (with ``study.json``) or any folder holding bundles whose manifests carry
        ``study`` (walked up to :data:`MAX_DEPTH` levels).
    name : str, optional
        For a folder of bundles holding several studies: which one (by ``manifest["study"]["name"]``).

    Raises :class:`jnecore.validation.InputError` (naming the folder or file) when there is no study
    there, or the bundles disagree on their space.
    """
    path = Path(path)
    if not path.is_dir():
        raise InputError(path, "is not a folder")
    study = _from_file(path) if (path / STUDY_FILE).is_file() else _from_bundles(path, name)
    cells = study.cells
    spaces = sorted({str(s) for s in cells["_space"].dropna()})
    if len(spaces) > 1:
        raise InputError(path, f"its cells' bundles are in different spaces ({', '.join(spaces)}): vertices "
                               "cannot be matched across cells")
    study.space = spaces[0] if spaces else None
    clash = cells.groupby("layer")["layer_index"].nunique()
    for layer in clash[clash > 1].index:
        study.warnings.append(f"{path}: layer {layer} has several layer_index values; the smallest is used")
        cells.loc[cells["layer"] == layer, "layer_index"] = cells.loc[cells["layer"] == layer, "layer_index"].min()
    cells = cells.drop(columns=["_space", "_name"]).sort_values(["setting", "subject", "layer_index"])
    study.cells = cells.reset_index(drop=True)[CELL_COLUMNS]
    return study


def _walk(root: Path):
    """(study folders, bundles) at or below ``root`` (up to MAX_DEPTH levels; hidden folders skipped;
    a study folder or a bundle is not walked further)."""
    import os

    studies, bundles = [], []
    root = root.resolve()
    base = len(root.parts)
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if STUDY_FILE in filenames:
            studies.append(here)
            dirnames[:] = []
        elif "manifest.json" in filenames:
            bundles.append(here)
            dirnames[:] = []
        else:
            depth = len(here.parts) - base
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")) if depth < MAX_DEPTH else []
    return studies, bundles


def find_studies(*roots) -> list:
    """Studies at or below the roots, as sorted (folder, name) pairs for :func:`load_study`.

    A folder holding ``study.json`` is one study (name None: the file names it; not walked
    further). Bundles carrying ``study`` outside such folders are grouped by their study name; the
    folder is the deepest one holding all of that study's bundles under the root.
    """
    import os

    found, loose = set(), {}
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            continue
        studies, bundles = _walk(root)
        found.update((str(f), None) for f in studies)
        for b in bundles:
            meta = _meta(_read_manifest(b) or {})
            if meta is not None:
                loose.setdefault((str(root.resolve()), str(meta.get("name") or "")), []).append(str(b))
    for (_, name), paths in loose.items():
        found.add((os.path.commonpath(paths), name))
    return sorted(found, key=lambda fn: (fn[0], fn[1] or ""))


def read_cell_vertices(bundle, columns) -> pd.DataFrame:
    """The columns of ``columns`` that the bundle's vertices.parquet has, (n_vertices, <= len(columns)).

    Raises :class:`InputError` naming the file when it is missing or not readable parquet.
    """
    import pyarrow.parquet as pq

    from ..bundle import FILES

    p = Path(bundle) / FILES["vertices"]
    try:
        names = set(pq.read_schema(p).names)
        return pd.read_parquet(p, columns=[c for c in columns if c in names])
    except FileNotFoundError:
        raise InputError(p, "missing") from None
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise InputError(p, f"not a readable parquet file ({type(exc).__name__})") from None


def study_vertices(study: Study, *, setting: str | None = None, columns=VERTEX_COLUMNS, loader=None) -> pd.DataFrame:
    """One long vertex table over the study's done cells.

    Parameters
    ----------
    study : Study
    setting : str, optional
        Only the cells of this setting (default all).
    columns : list of str
        Vertex-table columns to read from each bundle (the bundle contract's names); a column a
        bundle lacks is NaN.
    loader : callable(path, columns) -> DataFrame, optional
        How to read a cell's vertex columns (default: those of ``columns`` its vertices.parquet
        has, read alone: a whole-brain bundle has 327,684 rows).

    Returns
    -------
    DataFrame, (sum of the cells' vertex counts, 5 + len(columns) + 1)
        setting, subject, layer, layer_index, cell (the cell id), the vertex columns, and
        ``r2_gain`` = r2_nonlinear - r2_linear. ``significant`` is bool, the metrics float.
    """
    loader = loader or read_cell_vertices
    cells = study.done
    if setting is not None:
        cells = cells[cells["setting"].astype(str) == str(setting)]
    parts = []
    for _, c in cells.iterrows():
        v = loader(c["bundle"], list(columns))
        part = pd.DataFrame({col: (v[col] if col in v.columns else np.nan) for col in columns})
        part.insert(0, "cell", c["id"])
        part.insert(0, "layer_index", int(c["layer_index"]))
        part.insert(0, "layer", str(c["layer"]))
        part.insert(0, "subject", str(c["subject"]))
        part.insert(0, "setting", str(c["setting"]))
        parts.append(part)
    head = ["setting", "subject", "layer", "layer_index", "cell"]
    if not parts:
        return pd.DataFrame(columns=head + list(columns) + ["r2_gain"])
    out = pd.concat(parts, ignore_index=True)
    if "significant" in out:
        out["significant"] = out["significant"].fillna(False).astype(bool)
    for col in ("jne", "r2_linear", "r2_nonlinear"):
        if col in out:
            out[col] = out[col].astype(float)
    if "roi" in out:
        out["roi"] = out["roi"].astype(str)
    if "level" in out:
        out["level"] = out["level"].astype(str)
    out["r2_gain"] = out["r2_nonlinear"] - out["r2_linear"]
    return out
