"""ROI sets: the bundle's parcels, or the functional names the paper's readers think in.

The paper names its ROIs functionally (FFA, PPA, EBA, OPA, RSC, plus V1-V4), while bundles on
fs_LR carry HCP-MMP1.0 parcel names. ``jnecore/data/functional_rois.csv`` maps parcels to those
names; it is data, with the literature's caveats in a column, because the correspondences are
approximate (Glasser et al. 2016 define parcels on a group average; functional ROIs are localised
per person):

- FFA ~ FFC; PPA ~ PHA1-3; RSC ~ RSC (anatomical; the scene-selective RSC lies mostly posterior);
- EBA ~ LO2 / PH / TPOJ1 and OPA ~ V3CD / IP0: no single parcel, rough regions;
- V1-V4 keep their names; NSD's V1v/V1d ... hV4, FFA-1/FFA-2, PPA, EBA, OPA (and Kastner2015's
  PHC1-2 ~ PPA) map onto the same names, so NSD bundles regroup too.

Parcels the table does not list are not in the functional set. Any CSV with the columns ``roi``
and ``functional`` (optional: ``level``, ``caveat``, ``reference``) replaces the table
(``table=path``; in the dashboard, the environment variable ``JNE_FUNCTIONAL_ROIS``).
"""

from __future__ import annotations

import functools
import os
from importlib import resources

import numpy as np
import pandas as pd

from ._hierarchy import LEVELS, roi_level, strip_hemi, text_table, unique_rois

__all__ = ["ROI_SETS", "FUNCTIONAL_ENV", "functional_table", "functional_names", "apply_roi_set", "roi_set_order"]

#: ROI sets: the bundle's own ROI names, or the functional names of functional_rois.csv
ROI_SETS = {"parcels": "MMP parcels", "functional": "functional names"}
#: environment variable naming a user CSV that replaces the shipped table (read by the dashboard)
FUNCTIONAL_ENV = "JNE_FUNCTIONAL_ROIS"
_COLUMNS = ("roi", "functional", "level", "caveat", "reference")


@functools.lru_cache(maxsize=16)
def _read(path: str, mtime: float) -> pd.DataFrame:
    return _validate(pd.read_csv(path, dtype=str, keep_default_na=False), source=path)


def _validate(df: pd.DataFrame, source: str) -> pd.DataFrame:
    kind = "functional ROI table"
    df = text_table(df, kind=kind, source=source, columns=_COLUMNS, required=("roi", "functional"))
    if (df["roi"] == "").any() or (df["functional"] == "").any():
        raise ValueError(f"functional ROI table {source!r}: empty roi or functional name")
    df = unique_rois(df, kind=kind, source=source, columns=_COLUMNS)
    df["level"] = df["level"].str.lower()
    blank = df["level"] == ""
    df.loc[blank, "level"] = roi_level(df.loc[blank, "roi"].tolist()) if blank.any() else []
    bad = sorted(set(df["level"]) - set(LEVELS))
    if bad:
        raise ValueError(f"functional ROI table {source!r}: unknown level(s) {bad}; allowed: {LEVELS}")
    clash = df.groupby("functional")["level"].nunique()
    if (clash > 1).any():
        raise ValueError(f"functional ROI table {source!r}: functional name(s) {list(clash[clash > 1].index)} "
                         f"have more than one level")
    return df


def functional_table(source=None) -> pd.DataFrame:
    """The parcel -> functional name table.

    Parameters
    ----------
    source : None (the shipped ``jnecore/data/functional_rois.csv``), a CSV path or a DataFrame
        with at least the columns ``roi`` and ``functional``. A blank ``level`` is the hierarchy
        level of the ``roi`` (:func:`jnecore.atlas.roi_level`).

    Returns
    -------
    table : DataFrame, (n_rows, 5+): roi, functional, level, caveat, reference (blank cells "").
        Rows keep the file's order, which is the display order of the functional names.
    """
    if isinstance(source, pd.DataFrame):
        return _validate(source, source="DataFrame")
    if source is None:
        path = str(resources.files("jnecore") / "data" / "functional_rois.csv")
    else:
        path = os.fspath(source)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"functional ROI table {path!r} not found; give a CSV with the columns "
                                    f"roi and functional")
    return _read(path, os.path.getmtime(path)).copy()


def functional_names(rois, table=None) -> np.ndarray:
    """The functional name of each ROI ("" where the table has none).

    Parameters
    ----------
    rois : array-like of str, (n,)
        ROI names; as in :func:`jnecore.atlas.roi_level`, an exact match comes first, then the
        name without its hemisphere prefix / ``_ROI`` suffix, then a case-insensitive match.
    table : see :func:`functional_table`

    Returns
    -------
    names : ndarray of str, (n,)
    """
    df = functional_table(table)
    lut = dict(zip(df["roi"], df["functional"]))
    lower = {k.lower(): v for k, v in lut.items()}

    def one(name: str) -> str:
        if name in lut:
            return lut[name]
        base = strip_hemi(name)
        return lut.get(base, lower.get(base.lower(), ""))

    rois = np.asarray(rois, dtype=object).ravel()
    if not len(rois):
        return np.array([], dtype=str)
    uniq, inv = np.unique(rois.astype(str), return_inverse=True)
    mapped = np.array([one(u) for u in uniq], dtype=object)
    return mapped[inv.ravel()].astype(str)


def apply_roi_set(vertices: pd.DataFrame, roi_set: str = "functional", table=None) -> pd.DataFrame:
    """The vertex table with its ROIs regrouped into an ROI set.

    Parameters
    ----------
    vertices : DataFrame, (V, ...) with a ``roi`` column (the bundle's vertex table)
    roi_set : "parcels" (returned unchanged) or "functional"
    table : see :func:`functional_table`

    Returns
    -------
    DataFrame, (V', ...): for "functional", only the rows whose ROI has a functional name, with
    ``roi`` = that name, ``level`` = its level in the table and ``parcel`` = the original ROI.
    Every summary of :mod:`jnecore.summaries` then groups by the functional names.
    """
    if roi_set not in ROI_SETS:
        raise ValueError(f"unknown ROI set {roi_set!r}: use one of {', '.join(ROI_SETS)}")
    if roi_set == "parcels":
        return vertices
    df = functional_table(table)
    names = functional_names(vertices["roi"].astype(str).to_numpy(), df)
    keep = names != ""
    out = vertices.loc[keep].copy()
    out["parcel"] = out["roi"].astype(str)
    out["roi"] = names[keep]
    levels = dict(zip(df["functional"], df["level"]))
    out["level"] = [levels[n] for n in names[keep]]
    return out


def roi_set_order(rois, roi_set: str = "functional", table=None) -> list:
    """ROI names of a set in display order: the functional table's order for "functional" (names
    it lacks last, by name), else the hierarchy order (:func:`jnecore.atlas.level_order`)."""
    if roi_set == "parcels":
        from ._hierarchy import level_order

        return level_order(list(rois))
    order = list(dict.fromkeys(functional_table(table)["functional"]))
    rank = {n: i for i, n in enumerate(order)}
    uniq = list(dict.fromkeys(str(r) for r in rois))
    return sorted(uniq, key=lambda r: (rank.get(r, len(rank)), r))
