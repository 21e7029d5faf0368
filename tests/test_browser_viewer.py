"""The maps page's surface viewer in a real browser (Debian's Chromium driven by Playwright).

On the committed sample bundle (sample_data/, read only): camera presets and rotation happen in
the browser with no websocket message to the server; a click on a vertex selects it and the panel
shows that vertex's row of vertices.parquet; the page's URL, opened in a new tab, gives the same
view (metric, preset camera, selected vertex).

Skipped when /usr/bin/chromium or playwright is missing, unless CI=true (then it fails).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from test_browser import (ARTIFACTS, _need_chromium, _screenshot, _viewer_frame, _wait_idle,  # noqa: F401
                          browser, serve)  # browser: a fixture

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_data"
VIEWER = 'iframe[title*="jne_surface_viewer"]'


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    _need_chromium()
    if not (SAMPLE / "sample" / "manifest.json").exists():
        pytest.skip("sample_data/sample is not in this checkout")
    with serve(SAMPLE, tmp_path_factory.mktemp("viewer_server")) as url:
        yield url


class Frames:
    """Websocket frames between the page and the Streamlit server."""

    def __init__(self, page):
        self.sent, self.received = [], []

        def hook(ws):
            ws.on("framesent", lambda f: self.sent.append(len(f)))
            ws.on("framereceived", lambda f: self.received.append(len(f)))

        page.on("websocket", hook)

    def count(self):
        return len(self.sent), len(self.received)


def _eye(frame):
    """The scene's live camera eye (the viewer's own, not the figure's record)."""
    return frame.evaluate("() => { const e = window.jneViewer.camera('scene').eye;"
                          " return [e.x, e.y, e.z].map(v => Math.round(v * 1e6) / 1e6); }")


def _query(page) -> dict:
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def _metrics(page) -> dict:
    out = {}
    for m in page.locator('[data-testid="stMetric"]').all():
        label = m.locator('[data-testid="stMetricLabel"]').inner_text().strip()
        out[label] = m.locator('[data-testid="stMetricValue"]').inner_text().strip()
    return out


def _click_vertex(page, frame, fx, fy):
    """Hover a point of the viewer (fractions of its plot area) until it picks a vertex there, then click."""
    plot = frame.locator("#plot").bounding_box()  # in the page's coordinates
    x, y = plot["x"] + plot["width"] * fx, plot["y"] + plot["height"] * fy
    for dx in (0, 3, -3, 6):
        page.mouse.move(x + dx, y)
        try:  # the viewer has picked a vertex under the pointer (its hover)
            frame.wait_for_function("() => hovered !== null", timeout=8000)
            x += dx
            break
        except Exception:
            continue
    page.mouse.click(x, y)


def test_viewer_presets_rotation_click_and_link(server, browser):
    import numpy as np
    import pandas as pd

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1300})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    frames = Frames(page)
    try:
        page.goto(f"{server}/Cortical_maps", wait_until="domcontentloaded", timeout=60_000)
        frame = _viewer_frame(page, timeout_ms=120_000)
        _wait_idle(page)
        page.wait_for_timeout(1500)
        assert _query(page).get("view") == "posterior"  # the default preset, written into the link
        start = _eye(frame)

        # a preset is a camera change in the browser: not one websocket frame either way
        n0 = frames.count()
        frame.click("button[data-view=dorsal]")
        page.wait_for_timeout(1500)
        assert frames.count() == n0
        eye = _eye(frame)
        assert eye[2] > 1.0 and abs(eye[0]) < 1e-6 and abs(eye[1]) < 1e-6 and eye != start  # from above
        assert _query(page)["view"] == "dorsal"

        # rotating with the mouse: no frame either, and the camera moved
        box = page.locator(VIEWER).bounding_box()
        cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.mouse.move(cx, cy)
        page.mouse.down()
        page.mouse.move(cx + 150, cy + 40, steps=10)
        page.mouse.up()
        page.wait_for_timeout(1500)
        assert frames.count() == n0, "rotating the camera reached the server"
        assert _eye(frame) != eye

        # a click on a vertex selects it: the panel shows its row of vertices.parquet
        frame.click("button[data-view=posterior]")
        page.wait_for_timeout(800)
        _click_vertex(page, frame, 0.36, 0.55)
        page.wait_for_function("() => new URLSearchParams(location.search).has('vertex')", timeout=60_000)
        page.wait_for_selector('[data-testid="stMetric"]', timeout=60_000)
        _wait_idle(page)
        vertex = int(_query(page)["vertex"])
        rows = pd.read_parquet(SAMPLE / "sample" / "vertices.parquet")
        row = rows[rows["vertex"] == vertex]
        assert len(row) == 1, f"the click selected vertex {vertex}, which the sample does not model"
        row = row.iloc[0]
        m = _metrics(page)

        def fmt(x):
            return "no data" if not np.isfinite(x) else f"{x:.4g}"

        assert m["Vertex"].startswith(str(vertex))
        assert m["ROI (level)"] == f"{row['roi']} ({row['level']})"
        assert m["JNE"] == fmt(row["jne"]) and m["R² linear"] == fmt(row["r2_linear"])
        assert m["R² nonlinear"] == fmt(row["r2_nonlinear"])
        if np.isfinite(row["jne"]):  # significant: the JNE-SS profile by category is drawn
            page.wait_for_selector(".js-plotly-plot", timeout=60_000)
        assert frame.evaluate("() => window.jneViewer.marked()")
        _screenshot(page, "viewer_selected_vertex")

        # the link, opened in a new tab, gives the same view
        frame.click("button[data-view=ventral]")
        page.wait_for_timeout(800)
        link = page.url
        q = _query(page)
        assert q["view"] == "ventral" and q["metric"] == "jne" and int(q["vertex"]) == vertex
        other = browser.new_page(viewport={"width": 1400, "height": 1300})
        try:
            other.goto(link, wait_until="domcontentloaded", timeout=60_000)
            f2 = _viewer_frame(other, timeout_ms=120_000)
            _wait_idle(other)
            other.wait_for_selector('[data-testid="stMetric"]', timeout=60_000)
            other.wait_for_timeout(1000)
            eye2 = _eye(f2)
            assert eye2[2] < -1.0 and abs(eye2[0]) < 1e-6  # ventral: from below
            assert _metrics(other)["Vertex"] == m["Vertex"]
            assert _query(other)["view"] == "ventral" and _query(other)["vertex"] == str(vertex)
            assert f2.evaluate("() => window.jneViewer.marked()")
            _screenshot(other, "viewer_reopened_link")
        finally:
            other.close()
        assert not errors, errors
    finally:
        page.close()


def test_viewer_that_lost_its_arrays_asks_and_gets_them_again(server, browser):
    """The server sends an array once per browser session; a frame that no longer holds one (its
    cache emptied, as after a reload or its memory bound) asks for everything again with
    {"need": true}, and the next message carries the whole mesh, so the map is drawn."""
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    received = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda f: received.append(len(f))))
    try:
        page.goto(f"{server}/Cortical_maps", wait_until="domcontentloaded", timeout=60_000)
        frame = _viewer_frame(page, timeout_ms=120_000)
        _wait_idle(page)
        first = sum(received)
        assert first > 1_000_000  # the mesh travelled once
        frame.evaluate("() => { cache.clear(); cats.clear(); }")  # the frame forgets every array
        n0 = len(received)
        page.locator('[data-testid="stSelectbox"]').filter(has_text="Map").first.click()
        page.get_by_role("option", name="R² nonlinear", exact=True).click()
        frame.wait_for_function("() => window.jneViewer.title().includes('R² nonlin') && "
                                "document.body.dataset.rendered", timeout=60_000)
        _wait_idle(page)
        again = sum(received[n0:])
        # the change alone would be ~0.3 MB of values; the frame asked, so the mesh came again
        assert again > 0.8 * first, (again, first)
        assert frame.evaluate("() => window.jneViewer.scenes().length") == 1
        assert frame.evaluate("() => window.jneViewer.pick(500, 400) !== undefined")
        assert not errors, errors
    finally:
        page.close()


def test_four_views_show_the_sides_they_name(server, browser):
    """In the four-view layout, the vertex the viewer draws at each panel's centre (its own picking)
    belongs to the panel's hemisphere and lies on the named side of that hemisphere's mesh: lateral
    views see the outer side (-x for the left hemisphere, +x for the right), medial views the
    midline side."""
    import numpy as np

    from jnecore import atlas

    n_left = 32492
    meshes = {h: np.asarray(atlas.load_mesh("fsLR32k", "inflated", h).coords, dtype=float) for h in ("left", "right")}
    page = browser.new_page(viewport={"width": 1400, "height": 1300})
    try:
        page.goto(f"{server}/Cortical_maps?layout=panels", wait_until="domcontentloaded", timeout=60_000)
        frame = _viewer_frame(page, timeout_ms=120_000)
        _wait_idle(page)
        page.wait_for_timeout(1000)
        labels = frame.evaluate("() => [...document.querySelectorAll('.lbl')].map(e => e.textContent)")
        assert labels == ["L lateral", "L medial", "R medial", "R lateral"]
        centres = frame.evaluate(
            "() => window.jneViewer.scenes().map(n => { const r = window.jneViewer.rect(n); return [n, r[0] + r[2] / 2, r[1] + r[3] / 2]; })")
        assert len(centres) == 4
        for (name, x, y), label in zip(centres, labels):
            hemi = "left" if label.startswith("L") else "right"
            v = frame.evaluate("([x, y]) => window.jneViewer.pick(x, y)", [x, y])
            assert v is not None, f"{label}: nothing drawn at the panel's centre"
            local = v if hemi == "left" else v - n_left
            xyz = meshes[hemi]
            assert 0 <= local < len(xyz), f"{label}: vertex {v} is not in the {hemi} hemisphere"
            centre_x = (xyz[:, 0].min() + xyz[:, 0].max()) / 2
            outer = -1 if hemi == "left" else 1
            side = outer if label.endswith("lateral") else -outer
            assert side * (xyz[local, 0] - centre_x) > 0, f"{label}: vertex {v} is on the wrong side"
    finally:
        page.close()
