"""The maps page's surface viewer: a Streamlit component (components.v1) kept in the browser.

Why a component and not ``st.plotly_chart``: a chart re-sends its whole figure (geometry included,
~4 MB for fs_LR 32k) on every change, its camera lives in the server's figure, and a click on a 3D
mesh returns nothing. The component (``viewer/index.html``, no build step) keeps every array it was
sent under a content id, so the server sends a mesh once and then only per-vertex values
(:func:`jnecore.plotting.split_figure`); view presets and camera moves are handled by plotly.js in
the browser with no message to the server; a click on a vertex returns ``{"vertex": id}``.

plotly.js comes from the installed plotly package: it is copied with index.html into a folder
Streamlit serves (Streamlit refuses symlinks out of a component folder), so nothing is fetched from
outside the machine.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import streamlit as st

HERE = Path(__file__).resolve().parent / "viewer"


def _plotly_js() -> Path:
    import plotly

    return Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"


@st.cache_resource(show_spinner=False)
def _component():
    import streamlit.components.v1 as components

    html = (HERE / "index.html").read_bytes()
    js = _plotly_js()
    tag = hashlib.sha1(html + str(js.stat().st_size).encode() + str(js.stat().st_mtime_ns).encode()).hexdigest()[:12]
    folder = Path(tempfile.gettempdir()) / f"jne-viewer-{os.getuid()}-{tag}"
    if not _own_private(folder):
        tmp = Path(tempfile.mkdtemp(prefix="jne-viewer-", dir=tempfile.gettempdir()))  # mode 0700
        shutil.copyfile(js, tmp / "plotly.min.js")
        (tmp / "index.html").write_bytes(html)
        try:
            os.rename(tmp, folder)
        except OSError:  # another process made it first (ours, if _own_private says so), or a stranger's
            if _own_private(folder):
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                folder = tmp
    return components.declare_component("jne_surface_viewer", path=str(folder))


def _own_private(folder: Path) -> bool:
    """True when ``folder`` holds the viewer and only this user can have written it (a shared /tmp
    must not let another user plant the page the browser runs)."""
    import stat

    try:
        st_ = os.lstat(folder)
        files = [os.lstat(folder / n) for n in ("index.html", "plotly.min.js")]
    except OSError:
        return False
    return all(stat.S_ISDIR(st_.st_mode) if i == 0 else stat.S_ISREG(x.st_mode)
               for i, x in enumerate([st_, *files])) and \
        all(x.st_uid == os.getuid() and not x.st_mode & 0o022 for x in [st_, *files])


def new_click(key: str):
    """The vertex (L+R index of the drawn mesh) clicked since the last call, or None.

    Read before drawing the viewer, so that this run already marks and explains the new selection.
    """
    value = st.session_state.get(key)
    if not isinstance(value, dict) or value.get("vertex") is None or value.get("need"):
        return None
    n = value.get("n")
    if st.session_state.get(f"_click_{key}") == n:
        return None
    st.session_state[f"_click_{key}"] = n
    return int(value["vertex"])


def surface_viewer(fig, *, key: str, height: int = 640, view: str | None = None, selected: int | None = None):
    """Draw a surface figure in the viewer; return what the component returned (see :func:`new_click`).

    Parameters
    ----------
    fig : go.Figure
        From :func:`jnecore.plotting.plot_surface_map` / :func:`plot_surface_views`.
    key : str
        Widget key. ``st.session_state[f"_sent_{key}"]`` records the array ids this browser session
        holds (cleared when the viewer reports it lost them).
    height : int
        Pixels.
    view : str, optional
        Preset to open on (when the mesh is new to the viewer), e.g. from the URL.
    selected : int, optional
        Vertex (L+R index of the drawn mesh) to mark.

    Returns
    -------
    value : dict or None
        The component's last value: ``{"vertex": id, "n": click count}`` after a click.
    """
    from jnecore.plotting import split_figure

    sent_key = f"_sent_{key}"
    sent = st.session_state.setdefault(sent_key, set())
    value = st.session_state.get(key) or {}
    seen = st.session_state.get(f"_nonce_{key}")
    if isinstance(value, dict) and value.get("need") and value.get("n") != seen:
        sent.clear()  # the frame was reloaded: everything again
        st.session_state[f"_nonce_{key}"] = value.get("n")
    spec, index, payload, ids = split_figure(fig, sent)
    st.session_state[f"_last_payload_{key}"] = len(payload)
    value = _component()(spec=spec, index=index, payload=payload, height=int(height), view=view,
                         selected=None if selected is None else int(selected), key=key, default=None)
    sent |= ids
    return value
