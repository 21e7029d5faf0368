"""Result bundles: the directory that is the contract between the pipeline and the dashboard.

Layout (schema version :data:`SCHEMA_VERSION`; names, columns and tables in
:mod:`jnecore.bundle._contract`)::

    manifest.json        schema_version, jnecore_version, created, space, simulated, config,
                         sources, device, timings, tables, encoders, extra
    vertices.parquet     one row per modelled vertex, fixed order (REQUIRED_VERTEX_COLUMNS)
    jne_ss.npy           float32 (n_test, n_vertices), NaN where not computed
    stimuli.parquet      stimulus, split, category[, cluster]; test rows in order index jne_ss
    tables/NAME.parquet  summary tables (roi_summary, level_summary, level_tests, roi_group, ...)
    encoders/NAME.safetensors
    simulations/         Result I simulations, when run

Bundles are written to a temporary sibling directory and renamed into place, so a reader never
sees half a bundle.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from .._atomic import check_out, out_state, replace_dir, tmp_prefix
from ..atlas import LEVELS
from ..validation import InputError
from ._contract import (FILES, REQUIRED_STIMULUS_COLUMNS, REQUIRED_VERTEX_COLUMNS, SCHEMA_VERSION, SPACES,
                        encoder_filename)

__all__ = [
    "SCHEMA_VERSION", "SPACES", "LEVELS", "REQUIRED_VERTEX_COLUMNS", "Bundle", "write_bundle",
    "load_bundle", "validate_bundle", "find_bundles", "BundleError",
]


class BundleError(InputError):
    """A directory that is not a valid result bundle."""


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return None if not np.isfinite(obj) else float(obj)
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_bundle(out, *, vertices: pd.DataFrame, jne_ss: np.ndarray, stimuli: pd.DataFrame,
                 manifest: dict, tables: dict | None = None, encoders: dict | None = None,
                 simulations=None, overwrite: bool = False) -> Path:
    """Validate and write a bundle to ``out`` atomically; return its path.

    Parameters
    ----------
    vertices : DataFrame, one row per modelled vertex (REQUIRED_VERTEX_COLUMNS at least)
    jne_ss : ndarray (n_test, n_vertices)
    stimuli : DataFrame with stimulus, split, category; its test rows number n_test
    manifest : dict; must hold ``space`` and ``config``; versions and time are added
    tables : {name: DataFrame} written to tables/NAME.parquet
    encoders : {name: ResidualMLP} written to encoders/NAME.safetensors
    simulations : a directory whose files are copied into simulations/, or None
    overwrite : replace an existing non-empty ``out`` (it is left untouched otherwise)
    """
    from .. import __version__
    from ..encoders import save_encoder

    out = Path(out)
    check_out(out, overwrite)
    seen = out_state(out)
    man = dict(manifest)
    man.setdefault("schema_version", SCHEMA_VERSION)
    man.setdefault("jnecore_version", __version__)
    man.setdefault("created", _now())
    man.setdefault("simulated", False)
    tables = dict(tables or {})
    man["tables"] = sorted(tables)
    man["encoders"] = sorted(encoders or {})
    _check_parts(out, vertices, np.asarray(jne_ss), stimuli, man)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=tmp_prefix(out)))
    try:
        vertices.reset_index(drop=True).to_parquet(tmp / FILES["vertices"], index=False)
        stimuli.reset_index(drop=True).to_parquet(tmp / FILES["stimuli"], index=False)
        np.save(tmp / FILES["jne_ss"], np.asarray(jne_ss, dtype=np.float32), allow_pickle=False)
        if tables:
            (tmp / FILES["tables"]).mkdir()
            for name, df in tables.items():
                df.reset_index(drop=True).to_parquet(tmp / FILES["tables"] / f"{name}.parquet", index=False)
        for name, model in (encoders or {}).items():
            save_encoder(model, tmp / FILES["encoders"] / f"{encoder_filename(name)}.safetensors")
        if simulations is not None:
            shutil.copytree(simulations, tmp / FILES["simulations"])
        (tmp / FILES["manifest"]).write_text(json.dumps(_jsonable(man), indent=2, sort_keys=True))
        replace_dir(tmp, out, overwrite=overwrite, expect=seen)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _check_parts(where, vertices, jne_ss, stimuli, man):
    missing = [c for c in REQUIRED_VERTEX_COLUMNS if c not in vertices.columns]
    if missing:
        raise BundleError(where, f"vertices table lacks columns {', '.join(missing)}")
    missing = [c for c in REQUIRED_STIMULUS_COLUMNS if c not in stimuli.columns]
    if missing:
        raise BundleError(where, f"stimuli table lacks columns {', '.join(missing)}")
    if man.get("space") not in SPACES:
        raise BundleError(where, f"manifest space {man.get('space')!r} is not one of {', '.join(SPACES)}")
    bad = set(vertices["level"].astype(str)) - set(LEVELS)
    if bad:
        raise BundleError(where, f"unknown hierarchy levels {sorted(bad)}: use {', '.join(LEVELS)}")
    n_test = int((stimuli["split"].astype(str) == "test").sum())
    if jne_ss.ndim != 2 or jne_ss.shape != (n_test, len(vertices)):
        raise BundleError(where, f"jne_ss has shape {jne_ss.shape}, expected (n_test={n_test}, n_vertices={len(vertices)})")
    if vertices["vertex"].duplicated().any():
        raise BundleError(where, "vertices table repeats a vertex index")


@dataclass
class Bundle:
    """A loaded result bundle. Large arrays are read lazily; ``jne_ss`` is memory-mapped.

    Attributes
    ----------
    path : Path
    manifest : dict
    vertices : DataFrame (n_vertices rows)
    stimuli : DataFrame (all stimuli); ``test_stimuli`` holds the rows that index ``jne_ss``
    problems : list of :class:`jnecore.bundle.Problem`, the non-fatal problems found on loading
        (the parts they name are left out: fields and columns dropped, tables unlisted, ``jne_ss``
        all NaN)
    """

    path: Path
    manifest: dict
    vertices: pd.DataFrame
    stimuli: pd.DataFrame
    problems: list = field(default_factory=list)
    jne_ss_ok: bool = True
    _tables: dict = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return self.manifest.get("name") or self.path.name

    @property
    def space(self) -> str:
        return self.manifest["space"]

    @property
    def simulated(self) -> bool:
        return bool(self.manifest.get("simulated", False))

    @cached_property
    def jne_ss(self) -> np.ndarray:
        """(n_test, n_vertices) float32, memory-mapped read-only; all NaN (a read-only view of one
        value, no memory) when the file is missing or damaged (``problems`` says why)."""
        if self.jne_ss_ok:
            try:
                return np.load(self.path / FILES["jne_ss"], mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError):  # changed on disk since it was checked
                pass
        return np.broadcast_to(np.float32(np.nan), (len(self.test_stimuli), len(self.vertices)))

    @cached_property
    def test_stimuli(self) -> pd.DataFrame:
        return self.stimuli[self.stimuli["split"].astype(str) == "test"].reset_index(drop=True)

    @property
    def table_names(self) -> list:
        return list(self.manifest.get("tables", []))

    def table(self, name: str) -> pd.DataFrame:
        """A summary table from tables/NAME.parquet."""
        if name not in self._tables:
            p = self.path / FILES["tables"] / f"{name}.parquet"
            if name not in self.table_names or not p.exists():
                raise KeyError(f"bundle {self.path} has no table {name!r} (it has {', '.join(self.table_names)})")
            from ..io._limits import read_parquet

            try:
                self._tables[name] = read_parquet(p)
            except InputError as exc:  # damaged pages behind a sound footer, or over the size limit
                raise BundleError(p, exc.problem) from None
        return self._tables[name]

    def vertex_columns(self, columns) -> pd.DataFrame:
        """Some columns of vertices.parquet, read from the file alone (a whole-brain bundle has
        327,684 rows: a page that needs a few columns reads only those).

        Parameters
        ----------
        columns : list of str

        Returns
        -------
        table : DataFrame, (n_vertices, len(columns))
            The columns in the order asked, in the bundle's row order.

        Raises
        ------
        KeyError
            A column the bundle does not have (the message lists those it has).
        """
        import pyarrow.parquet as pq

        columns = list(columns)
        path = self.path / FILES["vertices"]
        names = pq.read_schema(path).names
        missing = [c for c in columns if c not in names]
        if missing:
            raise KeyError(f"bundle {self.path} has no vertex column {', '.join(map(repr, missing))} "
                           f"(it has {', '.join(names)})")
        from ..io._limits import read_parquet

        return read_parquet(path, columns=columns)

    @property
    def simulations_dir(self) -> Path | None:
        p = self.path / FILES["simulations"]
        return p if p.is_dir() else None

    def encoder(self, name: str):
        from ..encoders import load_encoder

        return load_encoder(self.path / FILES["encoders"] / f"{encoder_filename(name)}.safetensors")


def load_bundle(path) -> Bundle:
    """Load the bundle at ``path`` after :func:`jnecore.bundle.check_bundle`'s checks.

    Raises :class:`BundleError` naming the file of the first fatal problem. Non-fatal problems (a
    missing table, a damaged jne_ss.npy, a manifest field of the wrong type) are kept in
    ``Bundle.problems`` and the bundle opens with what is usable.
    """
    from ._check import _examine, _Fatal

    path = Path(path)
    problems: list = []
    try:
        ex = _examine(path, problems)
    except _Fatal as exc:
        raise BundleError(exc.problem.file, exc.problem.message) from None
    return Bundle(path=path, manifest=ex.manifest, vertices=ex.vertices, stimuli=ex.stimuli,
                  problems=problems, jne_ss_ok=ex.jne_ss_ok)


def validate_bundle(path) -> list:
    """Problems found in the bundle at ``path`` as strings (an empty list when it is valid); see
    :func:`jnecore.bundle.check_bundle` for the structured list."""
    from ._check import check_bundle

    return [str(p) for p in check_bundle(path)]


def find_bundles(*roots, max_depth: int = 5) -> list:
    """Bundle directories (holding manifest.json) at or below each root, sorted, no duplicates.

    The default depth reaches a study's cells under the folder that holds it
    (``<root>/<study>/cells/<subject>/<layer>/<setting>``).
    """
    found = []
    for root in roots:
        root = Path(root)
        if (root / "manifest.json").is_file():
            found.append(root.resolve())
            continue
        if not root.is_dir():
            continue
        base = len(root.resolve().parts)
        for dirpath, dirnames, filenames in os.walk(root.resolve()):
            depth = len(Path(dirpath).parts) - base
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")) if depth < max_depth else []
            if "manifest.json" in filenames:
                found.append(Path(dirpath))
                dirnames[:] = []
    return sorted(dict.fromkeys(found))
