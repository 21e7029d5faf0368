"""Figure assembly for :func:`~jnecore.plotting.plot_surface_map`: plotly traces, camera, layout.

nilearn's plotly backend (``nilearn.plotting.surface._plotly_backend``, private) has its own
cameras and layout for one mesh per figure; ours frame a hemisphere pair closer, handle flat maps
(orthographic, from above) and keep the colour bar to the data range, so they are kept here.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ..validation import InputError
from ._surface_hover import BG_HOVERTEMPLATE, HOVERTEMPLATE

VIEWS = ("lateral", "medial", "ventral", "dorsal", "posterior", "anterior")
_EYE = 1.5  # close enough that a hemisphere pair fills the scene
_LIGHT_3D = dict(ambient=0.45, diffuse=0.7, specular=0.05, roughness=0.9, fresnel=0.05)
_LIGHT_FLAT = dict(ambient=1.0, diffuse=0.0, specular=0.0, roughness=1.0, fresnel=0.0)
_AXIS = dict(visible=False, showbackground=False, showgrid=False, zeroline=False, showspikes=False)


def camera_for_view(view: str | dict = "lateral", hemi: str = "both", flat: bool = False) -> dict:
    """Plotly ``scene.camera`` for a named view of one hemisphere (or of both for the views that see both).

    Parameters
    ----------
    view : {"lateral", "medial", "ventral", "dorsal", "posterior", "anterior"} or dict
        lateral: from outside the hemisphere (-x for the left one, +x for the right one); medial:
        from the midline side (+x for the left, -x for the right). With ``hemi="both"`` in one
        scene the medial surfaces face each other and cannot be seen: use
        :func:`plot_surface_views` (a grid with one hemisphere per scene); lateral / medial then
        follow the left hemisphere. Ventral, dorsal, posterior and anterior are the same for both.
        A dict is returned as is.
    hemi : {"both", "left", "right"}
    flat : bool
        Flat maps are always seen from above (orthographic); ``view`` is then ignored.

    Returns
    -------
    camera : dict
        ``eye``, ``up``, ``center`` and ``projection`` (eye in plotly's scene units, relative to
        the centre of the scene's box, which with ``aspectmode="data"`` is the drawn mesh's
        bounding-box centre; see :func:`camera_position`).
    """
    if isinstance(view, dict):
        return view
    if flat:
        return dict(eye=dict(x=0, y=0, z=1.2), up=dict(x=0, y=1, z=0), center=dict(x=0, y=0, z=0),
                    projection=dict(type="orthographic"))
    if view not in VIEWS:
        raise InputError("view", f"must be one of {VIEWS} or a plotly camera dict, got {view!r}")
    side = 1.0 if hemi == "right" else -1.0
    eyes = {
        "lateral": ((side * _EYE, 0, 0), (0, 0, 1)),
        "medial": ((-side * _EYE, 0, 0), (0, 0, 1)),
        "ventral": ((0, 0, -_EYE), (0, 1, 0)),
        "dorsal": ((0, 0, _EYE), (0, 1, 0)),
        "posterior": ((0, -_EYE, 0), (0, 0, 1)),
        "anterior": ((0, _EYE, 0), (0, 0, 1)),
    }
    (ex, ey, ez), (ux, uy, uz) = eyes[view]
    return dict(eye=dict(x=ex, y=ey, z=ez), up=dict(x=ux, y=uy, z=uz), center=dict(x=0, y=0, z=0),
                projection=dict(type="perspective"))


def camera_position(camera: dict, coords) -> np.ndarray:
    """Where a plotly camera sits in the mesh's own coordinates (mm), for ``aspectmode="data"`` scenes.

    As plotly.js's gl3d scene does it: with ``aspectmode="data"`` each axis's aspect ratio is its
    data range over the geometric mean G of the three ranges, and each axis's range is padded by
    1/32 of it at both ends, so a length L of data is L / (1.0625 G) scene units. The eye is in
    those units, relative to the bounding-box centre. The surface viewer
    (dashboard/viewer/index.html) draws with the same scale.

    Parameters
    ----------
    camera : dict
        ``eye`` as from :func:`camera_for_view`.
    coords : ndarray of float, (n_vertices, 3)
        The scene's drawn coordinates.

    Returns
    -------
    position : ndarray of float, (3,)
    """
    coords = np.asarray(coords, dtype=float)
    lo, hi = coords.min(axis=0), coords.max(axis=0)
    return (lo + hi) / 2 + np.array([camera["eye"][k] for k in "xyz"], dtype=float) * scene_unit(coords)


def scene_unit(coords) -> float:
    """Millimetres per plotly scene unit of an ``aspectmode="data"`` scene (see :func:`camera_position`).

    Parameters
    ----------
    coords : ndarray of float, (n_points, 3)

    Returns
    -------
    unit : float
        1.0625 times the geometric mean of the three bounding-box sides (a flat side counts as 1).
    """
    coords = np.asarray(coords, dtype=float)
    sides = coords.max(axis=0) - coords.min(axis=0)
    sides = np.where(sides > 0, sides, 1.0)
    return float(1.0625 * np.exp(np.log(sides).mean()))


def surface_trace(drawn, codes, scale, customdata, text, value_name="value", flat=False) -> go.Mesh3d:
    """The "surface" trace: one ``Mesh3d`` coloured by uint8 codes on the combined scale.

    Parameters
    ----------
    drawn : DrawnMesh (``coordinates`` (n_drawn, 3), ``faces`` (n_faces, 3))
    codes : ndarray of uint8, (n_drawn,)
    scale : list of [float, str]
        Colour scale over codes 0..255 (see ``_surface_colors.combined_scale``).
    customdata : ndarray of float32, (n_drawn, 2)
    text : ndarray of str, (n_drawn,)
    value_name : str
    flat : bool
        Flat maps are lit evenly (no shading).

    Returns
    -------
    trace : go.Mesh3d
    """
    xyz, f = drawn.coordinates, drawn.faces
    return go.Mesh3d(
        x=xyz[:, 0], y=xyz[:, 1], z=xyz[:, 2],
        i=np.ascontiguousarray(f[:, 0]), j=np.ascontiguousarray(f[:, 1]), k=np.ascontiguousarray(f[:, 2]),
        intensity=codes, intensitymode="vertex", colorscale=scale, cmin=0, cmax=255, showscale=False,
        customdata=customdata, text=text, hovertemplate=BG_HOVERTEMPLATE.replace("%s", str(value_name)),
        lighting=_LIGHT_FLAT if flat else _LIGHT_3D, flatshading=False, name="surface", showlegend=False,
    )


def data_trace(coords, faces, values, stops, vmin, vmax, customdata, text, value_name="value",
               flat=False) -> go.Mesh3d:
    """The "data" trace: the shown vertices' faces in the data colour scale, just above the background.

    Parameters
    ----------
    coords : ndarray of float32, (n_shown, 3)
        Lifted coordinates of the shown vertices.
    faces : int array, (n_faces, 3)
        Faces whose three vertices are all shown, indexing ``coords``.
    values : ndarray of float32, (n_shown,)
    stops : list of [float, str]
    vmin, vmax : float
        The colour range (values outside are clipped by plotly).
    customdata : ndarray of float32, (n_shown, 2)
    text : ndarray of str, (n_shown,)
    value_name : str
    flat : bool

    Returns
    -------
    trace : go.Mesh3d
    """
    f = np.asarray(faces)
    return go.Mesh3d(
        x=coords[:, 0], y=coords[:, 1], z=coords[:, 2],
        i=np.ascontiguousarray(f[:, 0]), j=np.ascontiguousarray(f[:, 1]), k=np.ascontiguousarray(f[:, 2]),
        intensity=values, intensitymode="vertex", colorscale=stops, cmin=vmin, cmax=vmax, showscale=False,
        customdata=customdata, text=text, hovertemplate=HOVERTEMPLATE.replace("%s", str(value_name)),
        lighting=_LIGHT_FLAT if flat else _LIGHT_3D, flatshading=False, name="data", showlegend=False,
    )


def colorbar_title(value_name="value", units=None, threshold=None, note=None) -> str:
    """Colour bar title: the metric, its units, and what is hidden.

    Returns
    -------
    title : str
        E.g. "JNE (a.u.)<br>hidden: |value| < 0.01"; lines joined by "<br>".
    """
    lines = [f"{value_name} ({units})" if units else str(value_name)]
    if threshold:
        lines.append(f"hidden: |value| < {float(threshold):.3g}")
    if note:
        lines.append(str(note))
    return "<br>".join(lines)


def colorbar_trace(anchor, stops, vmin, vmax, value_name="value", title=None) -> go.Scatter3d:
    """The "colorbar" trace: one invisible point whose colour bar shows the data range only.

    Parameters
    ----------
    anchor : ndarray of float32, (1, 3) or (0, 3)
        Where the point sits (a drawn vertex; the origin if none).
    stops : list of [float, str]
        The data colour scale.
    vmin, vmax : float
    value_name : str
    title : str, optional
        Colour bar title (default ``value_name``; see :func:`colorbar_title`).

    Returns
    -------
    trace : go.Scatter3d
    """
    anchor = anchor[:1] if len(anchor) else np.zeros((1, 3), np.float32)
    return go.Scatter3d(
        x=anchor[:, 0], y=anchor[:, 1], z=anchor[:, 2], mode="markers", name="colorbar",
        marker=dict(size=0.1, opacity=0, color=[vmin], colorscale=stops, cmin=vmin, cmax=vmax, showscale=True,
                    colorbar=dict(title=dict(text=title or value_name, side="right"), thickness=14, len=0.6)),
        hoverinfo="skip", showlegend=False,
    )


def scene_layout(coords, view="lateral", hemi="both", flat=False) -> dict:
    """Plotly ``scene``: hidden axes, the camera, and the aspect (data aspect; flat maps framed).

    Parameters
    ----------
    coords : ndarray of float, (n_drawn, 3)
        Drawn vertex coordinates (the flat map's extent sets its aspect ratio).
    view, hemi, flat : see :func:`camera_for_view`

    Returns
    -------
    scene : dict
    """
    scene = dict(xaxis=_AXIS, yaxis=dict(_AXIS), zaxis=dict(_AXIS), camera=camera_for_view(view, hemi, flat=flat),
                 bgcolor="white")
    if flat:
        rx = float(np.ptp(coords[:, 0])) or 1.0
        ry = float(np.ptp(coords[:, 1])) or 1.0
        # the orthographic camera ignores the eye distance: the aspect ratio sets the size
        k = min(2.9, 1.8 * rx / ry)
        scene.update(aspectmode="manual", aspectratio=dict(x=k, y=k * ry / rx, z=0.02),
                     zaxis=dict(_AXIS, range=[-1, 1]), dragmode="pan")
    else:
        scene.update(aspectmode="data")
    return scene


def assemble_figure(traces, scene, title=None, meta=None) -> go.Figure:
    """A figure of the traces in one white 3D scene, no margins but the title's.

    Parameters
    ----------
    traces : list of plotly traces
    scene : dict
        From :func:`scene_layout`.
    title : str, optional
    meta : dict, optional
        Stored as ``fig.layout.meta``.

    Returns
    -------
    fig : go.Figure
    """
    fig = go.Figure(traces)
    fig.update_layout(
        scene=scene, margin=dict(l=0, r=0, t=40 if title else 0, b=0), showlegend=False,
        paper_bgcolor="white", hoverlabel=dict(align="left"), title=dict(text=title) if title else None, meta=meta,
    )
    return fig
