"""The maps page's surface viewer in AppTest: the figure it draws, rebuilt from its component's arguments."""

from __future__ import annotations

import json

import numpy as np


def viewer_figure(at, key: str = "surface_map", blobs: dict | None = None):
    """(message size in bytes, figure dict, [vertex, value] (n_shown, 2) of the "data" layers).

    ``blobs`` accumulates the arrays over runs, as the browser keeps them (a run after the first
    sends only the arrays the browser does not hold yet). When an array is missing (runs this
    helper did not see), the page is asked for everything again and rerun, as the browser does.
    """
    blobs = {} if blobs is None else blobs
    try:
        return _viewer_figure(at, key, blobs)
    except KeyError:
        at.session_state[f"_sent_{key}"] = set()
        at.run()
        return _viewer_figure(at, key, blobs)


def _viewer_figure(at, key, blobs):
    from jnecore.plotting import decode_payload, join_figure

    for el in at.get("component_instance"):
        if not el.proto.component_name.endswith("jne_surface_viewer"):
            continue
        args = json.loads(el.proto.json_args)
        if args.get("key") != key:
            continue
        payload = next((a.bytes for a in el.proto.special_args if a.key == "payload"), b"")
        blobs.update(decode_payload(args["index"], payload))
        fig = join_figure(args["spec"], blobs)
        data = [t for t in fig["data"] if t.get("name") == "data"]
        custom = np.concatenate([t["customdata"] for t in data]) if data else np.zeros((0, 2), np.float32)
        return len(el.proto.json_args) + len(payload), dict(fig, args=args, presets=args["spec"]["presets"]), custom
    raise AssertionError(f"no surface viewer {key!r} on the page")
