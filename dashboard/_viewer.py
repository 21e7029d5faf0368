"""The maps page's surface viewer: a Streamlit component (components.v1) kept in the browser.

Why a component and not ``st.plotly_chart``: a chart re-sends its whole figure (geometry included,
~4 MB for fs_LR 32k) on every change, its camera lives in the server's figure, and a click on a 3D
mesh returns nothing. The component (``viewer/index.html``, no build step) keeps every array it was
sent under a content id, so the server sends a mesh once and then only per-vertex values
(:func:`jnecore.plotting.split_figure`); view presets and camera moves are handled by the page's
own WebGL drawing in the browser with no message to the server; a click on a vertex returns ``{"vertex": id}``.

The page is a single file with no library: Streamlit serves it from this folder, and nothing is
fetched from outside the machine (a plotly.js of 4.8 MB, parsed in every new tab, and plotly's
gl3d scenes were most of the first render's time).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

HERE = Path(__file__).resolve().parent / "viewer"


@st.cache_resource(show_spinner=False)
def _component():
    import streamlit.components.v1 as components

    return components.declare_component("jne_surface_viewer", path=str(HERE))


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
