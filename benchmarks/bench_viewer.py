"""The maps page in Chromium: first map render, widget change, camera change and bytes per change.

Usage::

    python benchmarks/bench_viewer.py --roots DIR [--roots DIR2 ...] [--code CHECKOUT] [--pythonpath P]
                                      [--repeats 3] [--json OUT] [--write BEFORE.json AFTER.json]

Starts ``streamlit run CHECKOUT/dashboard/app.py`` (default: this checkout) on each folder of
bundles (the sidebar opens its first bundle), opens the home page once (the app is up), then in
Playwright + Debian's Chromium (software WebGL, ``--disable-gpu``):

- *first map render*: a new tab on /Cortical_maps, from the navigation until the map is drawn
  (this checkout: the surface viewer's frame has drawn; a checkout with the old ``st.plotly_chart``
  map: a plotly 3D scene is in the page), seen by one check in the page run on every animation
  frame; the bytes the websocket received meanwhile;
- *from the home page's link*: a tab on the home page, a click on "Cortical maps" in the sidebar
  (Streamlit switches the page in the tab), until the map is drawn;
- *widget change*: the metric JNE <-> R² nonlinear, from the browser's rerun request until the
  redrawn map (its new title), and the bytes received meanwhile (the per-change payload);
- *camera change*: a view preset (this checkout: the viewer's preset button, timed in the frame
  from the click to two animation frames after the new camera is drawn; the old page: its "View"
  selectbox, a server round trip, until the scene's camera is the new one); websocket frames and
  bytes meanwhile.

``--json`` writes the raw numbers; ``--write BEFORE.json AFTER.json`` puts a before/after table
between ``<!-- viewer:start -->`` and ``<!-- viewer:end -->`` in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

from bench_dashboard import VIEWER, Server, _choose, _idle, _wait_map  # benchmarks/ is on sys.path when run as a script

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "RESULTS.md"
START, END = "<!-- viewer:start -->", "<!-- viewer:end -->"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]


class Frames:
    def __init__(self, page):
        self.sent, self.received = [], []

        def hook(ws):
            ws.on("framesent", lambda f: self.sent.append((time.perf_counter(), len(f))))
            ws.on("framereceived", lambda f: self.received.append((time.perf_counter(), len(f))))

        page.on("websocket", hook)

    def first_sent(self, t0, t1):
        ts = [t for t, _ in self.sent if t0 <= t <= t1]
        return min(ts) if ts else t0

    def bytes_received(self, t0, t1):
        return sum(n for t, n in self.received if t0 <= t <= t1)

    def count(self, t0, t1):
        return (sum(1 for t, _ in self.sent if t0 <= t <= t1), sum(1 for t, _ in self.received if t0 <= t <= t1))


def _viewer_frame(page):
    if not page.locator(VIEWER).count():
        return None
    for f in page.frames:
        if "jne_surface_viewer" in f.url:
            return f
    return None


def bench(code: Path, roots: str, repeats: int, pythonpath: str | None = None) -> dict:
    from playwright.sync_api import sync_playwright

    out = {"first_render_s": [], "first_bytes": [], "widget_s": [], "widget_bytes": [], "camera_s": [],
           "camera_frames": [], "camera_bytes": []}
    srv = Server(roots, code, pythonpath)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            home = browser.new_page()
            home.goto(srv.url + "/", wait_until="domcontentloaded")
            home.wait_for_selector('[data-testid="stMetric"]', timeout=180_000)
            _idle(home)
            home.wait_for_timeout(4000)  # the background atlas warm-up of the first page
            home.close()
            for r in range(repeats):
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                frames = Frames(page)
                t0 = time.perf_counter()
                page.goto(srv.url + "/Cortical_maps", wait_until="commit")
                kind = _wait_map(page, "JNE")
                t1 = time.perf_counter()
                out["first_render_s"].append(t1 - t0)
                out["first_bytes"].append(frames.bytes_received(t0, t1))
                out["kind"] = kind
                if kind == "viewer":  # where the time goes: the frame's start, its script, the render message, drawn
                    f = _viewer_frame(page)
                    page_origin = page.evaluate("performance.timeOrigin")
                    t = f.evaluate("() => [performance.timeOrigin, window.jneTimes]")
                    out.setdefault("viewer_times", []).append(
                        dict(frame_created_s=(t[0] - page_origin) / 1000, script_s=t[1]["start"] / 1000,
                             args_s=t[1]["firstArgs"] / 1000, drawn_s=t[1]["rendered"] / 1000, **t[1]["last"]))
                _idle(page)
                page.wait_for_timeout(1000)
                if r == 0:  # the changes, in the first tab
                    for i in range(repeats):
                        target = ("R² nonlinear", "R² nonlin") if i % 2 == 0 else ("JNE", "JNE ·")
                        t0 = time.perf_counter()
                        _choose(page, "Map", target[0])
                        _wait_map(page, target[1])
                        t1 = time.perf_counter()
                        start = frames.first_sent(t0, t1)
                        out["widget_s"].append(t1 - start)
                        out["widget_bytes"].append(frames.bytes_received(start, t1))
                        _idle(page)
                        page.wait_for_timeout(800)
                    for i in range(repeats):
                        view = "dorsal" if i % 2 == 0 else "ventral"
                        t0 = time.perf_counter()
                        if kind == "viewer":
                            f = _viewer_frame(page)
                            dt, js = f.evaluate("(v) => new Promise(res => { const t = performance.now();"
                                                " document.querySelector(`button[data-view=${v}]`).click();"
                                                " const js = performance.now() - t;"
                                                " requestAnimationFrame(() => requestAnimationFrame(() =>"
                                                " res([(performance.now() - t) / 1000, js / 1000]))); })", view)
                            out.setdefault("camera_js_s", []).append(js)
                            page.wait_for_timeout(1000)
                            t1 = time.perf_counter()
                        else:
                            _choose(page, "View", view)
                            sign = 1 if view == "dorsal" else -1
                            page.wait_for_function(
                                "(s) => [...document.querySelectorAll('.js-plotly-plot')].some(p => p._fullLayout && "
                                "p._fullLayout.scene && s * p._fullLayout.scene.camera.eye.z > 1)", arg=sign,
                                timeout=180_000)
                            t1 = time.perf_counter()
                            dt = t1 - frames.first_sent(t0, t1)
                            _idle(page)
                        out["camera_s"].append(dt)
                        out["camera_frames"].append(frames.count(t0, t1))
                        out["camera_bytes"].append(frames.bytes_received(t0, t1))
                page.close()
            for r in range(repeats):  # the usual way in: the home page's link (Streamlit switches pages in the tab)
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(srv.url + "/", wait_until="domcontentloaded")
                page.wait_for_selector('[data-testid="stMetric"]', timeout=180_000)
                _idle(page)
                page.wait_for_timeout(1500)
                t0 = time.perf_counter()
                page.locator('[data-testid="stSidebarNav"] a').filter(has_text="Cortical maps").click()
                _wait_map(page, "JNE")
                out.setdefault("nav_s", []).append(time.perf_counter() - t0)
                page.close()
            browser.close()
    finally:
        srv.stop()
    return out


def _med(xs):
    return statistics.median(xs) if xs else float("nan")


def table(before: dict, after: dict) -> str:
    lines = [START, "", "### Maps page in Chromium: before / after", "",
             "Measured with `python benchmarks/bench_viewer.py --roots DIR --code CHECKOUT --repeats 3 --json OUT` "
             "(Playwright + Debian's Chromium, software WebGL (SwiftShader), 1400x1000), the home page opened once "
             "first; medians (first render: new tabs on a warm server; changes: in the first tab). " + before.get("label", "")
             + " 1-min load average at the runs' starts: before " + before.get("load", "?") + ", after "
             + after.get("load", "?") + ". *First map render* is from Playwright's navigation call until the "
             "page's own check (run on every animation frame) sees the map drawn; *in the browser* is from the navigation's start "
             "(performance.timeOrigin) to the viewer's drawn frame, as the page's own clocks say.", "",
             "| bundle | measure | before | after | target |", "|---|---|---|---|---|"]
    for name in after["bundles"]:
        b, a = before["bundles"].get(name, {}), after["bundles"][name]

        def s(d, k):
            return f"{_med(d.get(k, [])):.2f} s" if d.get(k) else "-"

        def first(d):  # each run's first metric change (JNE -> R² nonlinear) brings new values
            r = d.get("runs", 1)
            n = len(d.get("widget_bytes", [])) // r
            return {"widget_bytes": [d["widget_bytes"][i * n] for i in range(r)]} if n else {}

        def rest(d):  # then back and forth: Streamlit and the viewer already hold those
            r = d.get("runs", 1)
            n = len(d.get("widget_bytes", [])) // r
            return {"widget_bytes": [x for i, x in enumerate(d.get("widget_bytes", [])) if n and i % n]}

        def mb(d, k):
            return f"{_med(d.get(k, [])) / 1e6:.2f} MB" if d.get(k) else "-"

        def inb(d):
            vt = d.get("viewer_times") or []
            xs = [x["frame_created_s"] + x["drawn_s"] for x in vt]
            return f"{_med(xs):.2f} s" if xs else "-"

        lines += [f"| {name} | first map render (new tab) | {s(b, 'first_render_s')} | {s(a, 'first_render_s')} | ≤ 2 s |",
                  f"| {name} | of it in the browser: navigation start to the drawn map | {inb(b)} | {inb(a)} | |",
                  f"| {name} | first map render from the home page's link (click to drawn) | {s(b, 'nav_s')} | "
                  f"{s(a, 'nav_s')} | ≤ 2 s |",
                  f"| {name} | bytes to the first map | {mb(b, 'first_bytes')} | {mb(a, 'first_bytes')} | |",
                  f"| {name} | widget change (metric) | {s(b, 'widget_s')} | {s(a, 'widget_s')} | ≤ 0.5 s |",
                  f"| {name} | payload, change to a map not seen before | {mb(first(b), 'widget_bytes')} | "
                  f"{mb(first(a), 'widget_bytes')} | ≤ 1 MB |",
                  f"| {name} | payload, change back to a map seen in this tab | {mb(rest(b), 'widget_bytes')} | "
                  f"{mb(rest(a), 'widget_bytes')} | |",
                  f"| {name} | camera change (view preset) | {s(b, 'camera_s')} | {s(a, 'camera_s')} | ≤ 0.1 s |",
                  f"| {name} | of which JavaScript (the preset's call) | {s(b, 'camera_js_s')} | {s(a, 'camera_js_s')} | |",
                  f"| {name} | websocket bytes per camera change | {mb(b, 'camera_bytes')} | {mb(a, 'camera_bytes')} | 0 |"]
    notes = []
    for name, a in after["bundles"].items():
        vt = a.get("viewer_times")
        if vt:
            def m(k):
                return _med([x[k] for x in vt])

            notes.append(f"- {name}, after, where the first render goes (medians): the viewer's frame is created "
                         f"{m('frame_created_s'):.2f} s after the navigation, its script runs "
                         f"{m('script_s'):.2f} s later, the server's figure message arrives {m('args_s'):.2f} s "
                         f"after the frame's start, and the map is drawn {m('drawn_s') - m('args_s'):.2f} s after "
                         f"that (decoding {m('decode_ms'):.0f} ms, building the scenes {m('build_ms'):.0f} ms, "
                         f"WebGL drawing {m('draw_ms'):.0f} ms).")
    if notes:
        lines += [""] + notes
    lines += ["", END]
    return "\n".join(lines)


def write_section(text: str):
    old = RESULTS.read_text() if RESULTS.exists() else "# Benchmarks\n"
    if START in old and END in old:
        new = old[: old.index(START)] + text + old[old.index(END) + len(END):]
    else:
        new = old.rstrip() + "\n\n" + text + "\n"
    RESULTS.write_text(new)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--roots", action="append", default=[], help="a folder of bundles (repeatable)")
    ap.add_argument("--code", default=str(REPO), help="the checkout whose dashboard is served")
    ap.add_argument("--pythonpath", help="PYTHONPATH of the server (default: this process's)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", help="write the raw numbers here")
    ap.add_argument("--label", default="", help="a sentence saying what before and after are (stored with --json)")
    ap.add_argument("--write", nargs=2, metavar=("BEFORE", "AFTER"), help="RESULTS.md table from two --json files")
    a = ap.parse_args(argv)
    if a.write:
        before, after = (json.loads(Path(x).read_text()) for x in a.write)
        text = table(before, after)
        write_section(text)
        print(text)
        return
    res = {"code": a.code, "bundles": {}, "label": a.label, "load": " ".join(f"{x:.1f}" for x in os.getloadavg())}
    for roots in a.roots:
        print(f"{roots} ...", flush=True)
        res["bundles"][Path(roots).name] = bench(Path(a.code), roots, a.repeats, a.pythonpath)
        print(json.dumps(res["bundles"][Path(roots).name]), flush=True)
    res["load_after"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
