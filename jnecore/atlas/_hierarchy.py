"""ROI -> visual-hierarchy level tables (kept as data in ``jnecore/data/*.csv``).

Two tables ship with the package:

- ``mmp``: HCP-MMP1.0 parcel names (without the ``L_``/``R_`` prefix) of visual cortex, with a
  level (primary / intermediate / higher), a coarse region (early / ventral / lateral / dorsal /
  medial), the approximate functional ROI of the paper it stands for (FFA ~ FFC, PPA ~ PHA1-3,
  RSC ~ RSC, EBA ~ LO2/PH/TPOJ1, OPA ~ V3CD/IP0) and a comment giving the Glasser et al. (2016)
  section. The visual set is the paper's list plus V6A, V8, MT, MST, FST, V4t (all in Glasser's
  visual sections 3-5) and IP0 (inferior parietal section, but a retinotopic map in the OPA/TOS
  region).
- ``nsd``: the Natural Scenes Dataset ROI names (prf-visualrois and floc-* ROIs).

Any CSV with at least the columns ``roi`` and ``level`` can replace them (``table=path``).
"""

from __future__ import annotations

import functools
import os
import re
from importlib import resources

import numpy as np
import pandas as pd

__all__ = ["LEVELS", "REGIONS", "hierarchy_table", "roi_level", "level_order", "strip_hemi"]

#: Hierarchy levels in display order; "other" is for ROIs the table does not know.
LEVELS = ("primary", "intermediate", "higher", "other")
#: Coarse anatomical regions used in the shipped tables.
REGIONS = ("early", "ventral", "lateral", "dorsal", "medial")

_COLUMNS = ("roi", "level", "region", "functional_analogue", "comment")
_BUILTIN = {"mmp": "mmp_hierarchy.csv", "nsd": "nsd_hierarchy.csv"}
_HEMI_PREFIX = re.compile(r"^(?:L_|R_|lh[._-]|rh[._-]|left[._-]|right[._-])", re.IGNORECASE)
_ROI_SUFFIX = re.compile(r"_ROI$")


@functools.lru_cache(maxsize=32)
def _read_table(path: str, mtime: float) -> pd.DataFrame:
    df = pd.read_csv(path, dtype=str, keep_default_na=False, comment=None)
    return _validate(df, source=path)


def text_table(df: pd.DataFrame, *, kind: str, source, columns: tuple, required: tuple) -> pd.DataFrame:
    """A copy of an ROI table (a hierarchy or functional-name CSV) with stripped headers and every
    one of ``columns`` present as stripped text ("" when absent); ValueError naming ``kind`` and
    ``source`` when a ``required`` column is missing."""
    df = df.copy()
    df.columns = [str(c).strip() for c in df.columns]
    missing = set(required) - set(df.columns)
    if missing:
        optional = ", ".join(c for c in columns if c not in required)
        raise ValueError(f"{kind} {source!r} lacks the column(s) {sorted(missing)}; "
                         f"expected at least {' and '.join(repr(c) for c in required)} (optional: {optional})")
    for col in columns:
        if col not in df.columns:
            df[col] = ""
        df[col] = df[col].fillna("").astype(str).str.strip()
    return df


def unique_rois(df: pd.DataFrame, *, kind: str, source, columns: tuple) -> pd.DataFrame:
    """``df`` with ``columns`` first (other columns kept after them); ValueError when an roi repeats."""
    dup = df["roi"][df["roi"].duplicated()].unique()
    if len(dup):
        raise ValueError(f"{kind} {source!r}: duplicated roi(s) {list(dup)}")
    extra = [c for c in df.columns if c not in columns]
    return df[list(columns) + extra].reset_index(drop=True)


def _validate(df: pd.DataFrame, source="table") -> pd.DataFrame:
    df = text_table(df, kind="hierarchy table", source=source, columns=_COLUMNS, required=("roi", "level"))
    df["level"] = df["level"].str.lower()
    bad = sorted(set(df["level"]) - set(LEVELS))
    if bad:
        raise ValueError(f"hierarchy table {source!r}: unknown level(s) {bad}; allowed: {LEVELS}")
    if (df["roi"] == "").any():
        raise ValueError(f"hierarchy table {source!r}: empty roi name")
    return unique_rois(df, kind="hierarchy table", source=source, columns=_COLUMNS)


def hierarchy_table(source="mmp") -> pd.DataFrame:
    """Return an ROI hierarchy table.

    Parameters
    ----------
    source : {"mmp", "nsd", "all"}, path to a CSV, or DataFrame
        ``"mmp"``: HCP-MMP1.0 visual parcels; ``"nsd"``: NSD ROI names; ``"all"``: both (MMP
        first; names present in both keep the MMP row). A path or DataFrame needs at least the
        columns ``roi`` and ``level`` (level in :data:`LEVELS`); missing optional columns are
        filled with "".

    Returns
    -------
    table : DataFrame, (n_rois, 5+)
        Columns ``roi, level, region, functional_analogue, comment`` (plus any extra columns of
        a user table), in table order. Blank cells are "" (never NaN). A fresh copy each call.
    """
    if isinstance(source, pd.DataFrame):
        return _validate(source, source="DataFrame")
    if source is None:
        source = "mmp"
    if isinstance(source, str) and source.lower() == "all":
        mmp, nsd = hierarchy_table("mmp"), hierarchy_table("nsd")
        nsd = nsd[~nsd["roi"].isin(mmp["roi"])]
        return pd.concat([mmp, nsd], ignore_index=True)
    if isinstance(source, str) and source.lower() in _BUILTIN:
        path = str(resources.files("jnecore") / "data" / _BUILTIN[source.lower()])
    else:
        path = os.fspath(source)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"hierarchy table {path!r} not found; use 'mmp', 'nsd', 'all', "
                                    f"a CSV path or a DataFrame")
    return _read_table(path, os.path.getmtime(path)).copy()


def strip_hemi(name: str) -> str:
    """Drop a hemisphere prefix (``L_``, ``R_``, ``lh.``, ``rh.``, ``left_``...) and an ``_ROI`` suffix."""
    return _ROI_SUFFIX.sub("", _HEMI_PREFIX.sub("", str(name)))


def _lookup(table) -> dict:
    df = hierarchy_table("all" if table is None else table)
    return dict(zip(df["roi"], df["level"]))


def roi_level(names, table=None):
    """Hierarchy level of each ROI name.

    Parameters
    ----------
    names : str or array-like of str, (n,)
        ROI names; a hemisphere prefix (``L_V1``, ``lh.FFA-1``) and an ``_ROI`` suffix are
        ignored when the exact name is not in the table; a case-insensitive match is the last
        resort.
    table : None, "mmp", "nsd", "all", path or DataFrame
        None: the MMP and NSD tables together.

    Returns
    -------
    levels : str, or ndarray of str, (n,)
        One of :data:`LEVELS`; "other" for unknown, empty or missing names.
    """
    lut = _lookup(table)
    lower = {k.lower(): v for k, v in lut.items()}

    def one(name):
        if name is None or (isinstance(name, float) and np.isnan(name)):
            return "other"
        name = str(name)
        if name in lut:
            return lut[name]
        base = strip_hemi(name)
        if base in lut:
            return lut[base]
        return lower.get(base.lower(), "other")

    if isinstance(names, str) or np.ndim(names) == 0:
        return one(names)
    names = np.asarray(names, dtype=object).ravel()
    uniq, inv = np.unique(names.astype(str), return_inverse=True)
    lv = np.array([one(u) if u not in ("nan", "None") else "other" for u in uniq], dtype="<U12")
    return lv[inv.ravel()] if len(names) else np.array([], dtype="<U12")


def level_order(rois, table=None) -> list:
    """Sort ROI names by hierarchy level, then by table order (unknown ROIs last, by name).

    Parameters
    ----------
    rois : array-like of str, (n,)
        ROI names (duplicates are dropped; hemisphere prefixes are understood as in
        :func:`roi_level`).
    table : see :func:`roi_level`.

    Returns
    -------
    ordered : list of str, the unique input names in display order.
    """
    df = hierarchy_table("all" if table is None else table)
    pos = {r: i for i, r in enumerate(df["roi"])}
    pos_lower = {r.lower(): i for r, i in pos.items()}
    rank = {lv: i for i, lv in enumerate(LEVELS)}
    uniq = list(dict.fromkeys(str(r) for r in rois))
    levels = roi_level(uniq, table=df) if uniq else []

    def key(item):
        name, lv = item
        base = strip_hemi(name)
        p = pos.get(name, pos.get(base, pos_lower.get(base.lower(), len(pos))))
        return (rank[lv], p, name)

    return [name for name, _ in sorted(zip(uniq, levels), key=key)]
