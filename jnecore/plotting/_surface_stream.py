"""Surface figures for a browser viewer that keeps what it was sent: arrays travel once, by content.

:func:`split_figure` turns a :func:`~jnecore.plotting.plot_surface_map` or
:func:`~jnecore.plotting.plot_surface_views` figure into

- ``spec``: the figure as JSON, every large array replaced by ``{"$ref": id}`` (``id`` = a hash of
  the array's dtype, shape and bytes), plus ``roles`` (how the viewer rebuilds the surface and data
  layers) and ``presets`` (named cameras per scene, applied in the browser);
- ``index`` and ``payload``: the arrays the browser does not hold yet, as raw little-endian bytes
  (one ``bytes`` object; ``index[id] = {"o": offset, "n": nbytes, "t": dtype, "s": shape}``,
  ``"t": "json"`` for string arrays, UTF-8 JSON).

So the mesh (coordinates, faces, per-vertex hover text, the sulcal codes) is sent once per mesh,
and a change of data sends only the values: the "data" layer is rebuilt in the browser from the
"surface" layer's geometry (``"lift": {"mm", "flat"}``: lifted :data:`~jnecore.plotting._surface._DATA_LIFT`
mm along the outward vertex normals, or at z = 0.05 on a flat map; faces kept where all three
vertices have a value) and one float32 value per drawn vertex (NaN = not shown), from which the
browser keeps the shown vertices.

Compact forms: a string array with few distinct values travels as ``{"$cat": codes ref, "labels":
[...]}`` (uint16 codes; the per-vertex "ROI (level)" text is 64,984 strings but ~400 distinct), and
vertex ids that are a run of integers as ``{"$range": [start, n]}``. :func:`join_figure` does that rebuild in Python, exactly as the viewer's
JavaScript does (dashboard/viewer/index.html), for tests and for Python-side readers.
"""

from __future__ import annotations

import hashlib
import json
from types import SimpleNamespace

import numpy as np

from ._surface_figure import VIEWS, camera_for_view

_MIN_REF = 64  # arrays with fewer elements travel inline (JSON lists)
_LIFT_CACHE: dict = {}


def _norm(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype == np.float64:
        a = a.astype(np.float32)
    elif a.dtype == np.int64:
        a = a.astype(np.int32)
    elif a.dtype == bool:
        a = a.astype(np.uint8)
    return np.ascontiguousarray(a)


def _blob_id(a: np.ndarray) -> str:
    h = hashlib.sha1()
    if a.dtype.kind in "OUS":
        h.update(b"json")
        h.update(json.dumps(a.astype(str).tolist()).encode())
    else:
        h.update(f"{a.dtype.str}|{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:20]


def _plain(x):
    """JSON-safe copy: numpy scalars / small arrays to Python (NaN -> None)."""
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return _plain(x.tolist())
    if isinstance(x, (np.floating, float)):
        return None if not np.isfinite(x) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


class _Blobs:
    def __init__(self):
        self.arrays: dict = {}

    def ref(self, a) -> dict:
        a = _norm(a)
        i = _blob_id(a)
        self.arrays.setdefault(i, a)
        return {"$ref": i}

    def strings(self, a) -> dict:
        """A string array: ``{"$cat": uint16 codes, "labels"}`` when it has few distinct values."""
        a = np.asarray(a).astype(str)
        labels, codes = np.unique(a, return_inverse=True)
        if a.ndim == 1 and len(labels) <= min(65535, max(1, a.size // 4)):
            return {"$cat": self.ref(codes.astype(np.uint16)), "labels": labels.tolist()}
        return self.ref(a)

    def ids(self, a) -> dict:
        """Vertex ids: ``{"$range": [start, n]}`` when they are start, start + 1, ..."""
        a = np.asarray(a)
        if a.ndim == 1 and a.size and np.array_equal(a, np.arange(a[0], a[0] + a.size)):
            return {"$range": [int(a[0]), int(a.size)]}
        return self.ref(a.astype(np.int32))

    def walk(self, x):
        if isinstance(x, dict):
            return {k: self.walk(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [self.walk(v) for v in x]
        if isinstance(x, np.ndarray):
            if x.size < _MIN_REF:
                return _plain(x)
            return self.strings(x) if x.dtype.kind in "OUS" else self.ref(x)
        return _plain(x)


def _lifted(coords: np.ndarray, faces: np.ndarray, flat: bool) -> np.ndarray:
    """(n, 3) float32: the data layer's coordinates for every drawn vertex (cached per mesh)."""
    from ._surface import _data_layer

    k = (_blob_id(_norm(coords)), _blob_id(_norm(faces)), flat)
    if k not in _LIFT_CACHE:
        drawn = SimpleNamespace(coordinates=coords, faces=faces)
        xyz, _, _ = _data_layer(drawn, np.ones(len(coords), bool), None, flat)
        if len(_LIFT_CACHE) > 16:
            _LIFT_CACHE.clear()
        _LIFT_CACHE[k] = xyz
    return _LIFT_CACHE[k]


def surface_presets(fig) -> dict:
    """{view: {scene: camera}} for the views a figure's single scene can take; {} for panels / flat maps."""
    meta = fig.layout.meta or {}
    if meta.get("view") == "panels" or meta.get("surface") == "flat":
        return {}
    hemi = meta.get("hemi", "both")
    views = [v for v in VIEWS if not (hemi == "both" and v == "medial")]
    return {v: {"scene": camera_for_view(v, hemi)} for v in views}


def split_figure(fig, sent=()) -> tuple:
    """The viewer's message for a surface figure.

    Parameters
    ----------
    fig : go.Figure
        From :func:`plot_surface_map` or :func:`plot_surface_views`.
    sent : set of str
        Ids of the arrays the browser already holds (they are left out of the payload).

    Returns
    -------
    spec : dict
        ``data`` (traces), ``layout``, ``roles`` ([{"trace", "role": "surface" | "data", "ids",
        "partner"}]), ``presets`` (see :func:`surface_presets`), ``key`` (hash of the whole
        spec) and ``mesh`` (hash of the scenes' geometry: the viewer keeps its cameras while it
        does not change).
    index : dict
        {id: {"o", "n", "t", "s"}} of the arrays in ``payload``.
    payload : bytes
    ids : set of str
        Every array id the spec refers to.
    """
    from . import _surface

    blobs = _Blobs()
    meta = fig.layout.meta or {}
    flat = meta.get("surface") == "flat"
    raw = [t.to_plotly_json() for t in fig.data]
    surfaces = {}
    for i, d in enumerate(raw):
        if d.get("type") == "mesh3d" and d.get("name") == "surface":
            surfaces[d.get("scene", "scene")] = i
    data, roles, mesh_ids = [], [], []
    for i, d in enumerate(raw):
        d = dict(d)
        if d.get("type") == "mesh3d" and d.get("name") == "surface":
            ids = np.asarray(d.pop("customdata"))[:, 0].astype(np.int32)
            out = blobs.walk(d)
            roles.append({"trace": i, "role": "surface", "ids": blobs.ids(ids)})
            mesh_ids += [out[k]["$ref"] for k in ("x", "y", "z", "i", "j", "k")]
        elif d.get("type") == "mesh3d" and d.get("name") == "data" and d.get("scene", "scene") in surfaces:
            s = raw[surfaces[d.get("scene", "scene")]]
            ids_s = np.asarray(s["customdata"])[:, 0].astype(np.int64)
            ids_d = np.asarray(d.pop("customdata"))[:, 0].astype(np.int64)
            pos = np.searchsorted(ids_s, ids_d)
            if not (pos < len(ids_s)).all() or not np.array_equal(ids_s[pos], ids_d):
                raise ValueError("data layer vertices are not on the surface layer")
            full = np.full(len(ids_s), np.nan, dtype=np.float32)
            full[pos] = np.asarray(d.pop("intensity"), dtype=np.float32)
            for k in ("x", "y", "z", "i", "j", "k", "text"):
                d.pop(k, None)
            out = blobs.walk(d)
            out["lift"] = {"mm": float(_surface._DATA_LIFT), "flat": bool(flat)}  # coordinates: the partner's, lifted
            out.update({a: blobs.ref(s[a]) for a in "ijk"})
            out["intensity"] = blobs.ref(full)
            if s.get("text") is not None:
                out["text"] = blobs.strings(np.asarray(s["text"]))
            roles.append({"trace": i, "role": "data", "ids": blobs.ids(ids_s),
                          "partner": surfaces[d.get("scene", "scene")]})
        else:
            out = blobs.walk(d)
        data.append(out)
    layout = _plain(fig.layout.to_plotly_json())
    spec = {"data": data, "layout": layout, "roles": roles, "presets": _plain(surface_presets(fig))}
    spec["mesh"] = hashlib.sha1(json.dumps([mesh_ids, sorted(k for k in layout if k.startswith("scene")), flat])
                                .encode()).hexdigest()[:20]
    spec["key"] = hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:20]
    ids = set(blobs.arrays)
    index, parts, off = {}, [], 0
    for i, a in blobs.arrays.items():
        if i in sent:
            continue
        if a.dtype.kind in "OUS":
            b, t = json.dumps(a.astype(str).tolist()).encode(), "json"
        else:
            b, t = a.astype(a.dtype.newbyteorder("<")).tobytes(), a.dtype.name
        pad = (-off) % 8
        parts.append(b"\0" * pad)
        off += pad
        index[i] = {"o": off, "n": len(b), "t": t, "s": list(a.shape)}
        parts.append(b)
        off += len(b)
    return spec, index, b"".join(parts), ids


def decode_payload(index: dict, payload: bytes) -> dict:
    """{id: ndarray} of a :func:`split_figure` payload (string arrays as object arrays)."""
    out = {}
    for i, e in index.items():
        b = payload[e["o"]: e["o"] + e["n"]]
        if e["t"] == "json":
            out[i] = np.array(json.loads(b.decode()), dtype=object)
        else:
            out[i] = np.frombuffer(b, dtype=np.dtype(e["t"]).newbyteorder("<")).reshape(e["s"])
    return out


def _resolve(x, blobs):
    if isinstance(x, dict):
        if set(x) == {"$ref"}:
            return blobs[x["$ref"]]
        if set(x) == {"$cat", "labels"}:
            return np.asarray(x["labels"], dtype=object)[np.asarray(blobs[x["$cat"]["$ref"]], dtype=np.int64)]
        if set(x) == {"$range"}:
            return np.arange(x["$range"][0], x["$range"][0] + x["$range"][1], dtype=np.int32)
        return {k: _resolve(v, blobs) for k, v in x.items()}
    if isinstance(x, list):
        return [_resolve(v, blobs) for v in x]
    return x


def join_figure(spec: dict, blobs: dict) -> dict:
    """The figure the viewer draws from ``spec`` and the arrays it holds, as a plotly figure dict.

    The "surface" traces get ``customdata`` (n_drawn, 1) = [vertex]; the "data" traces keep the
    shown vertices only (those with a finite value; lifted coordinates, ``intensity`` (n_shown,),
    ``text``, ``customdata`` (n_shown, 2) = [vertex, value]) and the faces whose three vertices
    are shown, re-indexed: the figure's own "data" trace.

    Raises
    ------
    KeyError
        If an array the spec refers to is not in ``blobs``.
    """
    data = [_resolve(t, blobs) for t in spec["data"]]
    for r in spec["roles"]:
        t = data[r["trace"]]
        ids = np.asarray(_resolve(r["ids"], blobs))
        if r["role"] == "data":  # the partner surface's coordinates, lifted (as the viewer does)
            s = data[r["partner"]]
            coords = np.stack([np.asarray(s[k], dtype=np.float32) for k in "xyz"], axis=1)
            faces = np.stack([np.asarray(s[k]) for k in "ijk"], axis=1)
            xyz = _lifted(coords, faces, bool(t.pop("lift", {}).get("flat")))
            t.update({a: xyz[:, n] for n, a in enumerate("xyz")})
        if r["role"] == "surface":
            t["customdata"] = ids[:, None].astype(np.float32)
        else:
            val = np.asarray(t["intensity"], dtype=np.float32)
            shown = np.isfinite(val)
            remap = np.full(len(val), -1, dtype=np.int64)
            remap[shown] = np.arange(int(shown.sum()))
            f = np.stack([np.asarray(t[k], dtype=np.int64) for k in "ijk"], axis=1)
            f = remap[f[shown[f].all(axis=1)]]
            for n, k in enumerate("ijk"):
                t[k] = f[:, n]
            for k in ("x", "y", "z", "text"):
                if t.get(k) is not None:
                    t[k] = np.asarray(t[k])[shown]
            t["intensity"] = val[shown]
            t["customdata"] = np.stack([ids[shown].astype(np.float32), val[shown]], axis=1)
    return {"data": data, "layout": _resolve(spec["layout"], blobs)}
