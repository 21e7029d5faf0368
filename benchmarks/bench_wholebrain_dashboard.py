"""Whole-brain fsaverage bundles (V = 327,684 vertices) in the dashboard: opening, first map, bytes sent.

Usage::

    python benchmarks/bench_wholebrain_dashboard.py [--bundle DIR] [--n-test 20] [--repeats 3] [--browser] [--write]

Without ``--bundle`` a synthetic whole-brain bundle (every fsaverage vertex modelled, 180 parcels
per hemisphere, ``--n-test`` JNE-SS stimuli; ``write_wholebrain_bundle`` in
tests/test_wholebrain.py) is written to a temporary folder. The measurements mirror
benchmarks/bench_dashboard.py (whose functions are reused):

1. ``load_bundle`` and ``plot_surface_map`` as the maps page calls it, per surface and
   hemisphere: build time and figure JSON size (what Streamlit sends for the map). The first
   build of the process is reported apart: it builds the fsaverage5 cells on fsaverage.
2. streamlit.testing.v1.AppTest, each case in a fresh Python process after the imports:
   *opens*: the maps page is the first page run, so its time includes reading the bundle, the
   fsaverage5 meshes and cells, and the first figure; *after home*: the home page first (it reads
   the bundle and starts the background mesh read), then every page's first run and rerun, and
   the maps page's widget changes (``bench_dashboard.bench_apptest``). Server-side script time.
3. ``--browser``: Playwright + Chromium against ``streamlit run`` (``bench_dashboard.Server``):
   the maps page as the first request of a fresh server, until its map is drawn, and the bytes
   the browser received over the websocket meanwhile (all of Streamlit's messages).

``--write`` puts the results between ``<!-- wholebrain:start -->`` and ``<!-- wholebrain:end -->``
in benchmarks/RESULTS.md (the rest of the file is left alone).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE), str(REPO / "tests")]

import bench_dashboard as bd  # noqa: E402

START, END = "<!-- wholebrain:start -->", "<!-- wholebrain:end -->"
MAPS = REPO / "dashboard" / "pages" / "1_Cortical_maps.py"


def bench_load_and_figures(path: str, repeats: int):
    """(load_bundle seconds, first figure seconds, bench_dashboard.bench_figures rows)."""
    from jnecore.bundle import load_bundle
    from jnecore.plotting import plot_surface_map

    t0 = time.perf_counter()
    bundle = load_bundle(path)
    t_load = time.perf_counter() - t0
    v = bundle.vertices
    t0 = time.perf_counter()
    plot_surface_map(v["jne"].to_numpy(dtype=float), vertices=v["vertex"].to_numpy(), space=bundle.space)
    t_first = time.perf_counter() - t0
    return t_load, t_first, bd.bench_figures(bundle, repeats)


def _apptest_case(case: str, roots: str, repeats: int) -> dict:
    """One AppTest case in this process (run by :func:`apptest_case` in a fresh one)."""
    os.environ["JNE_BUNDLE_ROOTS"] = roots
    t0 = time.perf_counter()
    import jnecore.bundle  # noqa: F401
    import jnecore.plotting  # noqa: F401
    from streamlit.testing.v1 import AppTest
    out = {"imports_s": time.perf_counter() - t0}
    if case == "after-home":
        out.update(bd.bench_apptest(roots, repeats))
        return out
    t0 = time.perf_counter()
    at = AppTest.from_file(str(MAPS), default_timeout=300).run()
    out["first_s"] = time.perf_counter() - t0
    out["errors"] = len(at.exception) + len(at.error)
    out["figure_json_bytes"] = max(len(el.proto.spec) for el in at.get("plotly_chart"))
    reruns = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        at.run()
        reruns.append(time.perf_counter() - t0)
    out["rerun_s"] = bd._med(reruns)
    return out


def apptest_case(case: str, roots: str, repeats: int) -> dict:
    cmd = [sys.executable, __file__, "--_case", case, "--bundle", roots, "--repeats", str(repeats)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def browser_bytes(roots: str) -> dict:
    """Bytes received over the websocket from the navigation to the maps page until its map is drawn."""
    from playwright.sync_api import sync_playwright

    frames = []  # (time, bytes) of each message received
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=bd.CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        srv = bd.Server(roots)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("websocket", lambda ws: ws.on(
                "framereceived", lambda payload: frames.append((time.perf_counter(), len(payload)))))
            t0 = time.perf_counter()
            page.goto(srv.url + "/Cortical_maps", wait_until="domcontentloaded")
            bd._wait_map(page, "JNE")
            t1 = time.perf_counter()
        finally:
            srv.stop()
            browser.close()
    got = [(t, n) for t, n in frames if t <= t1]
    return {"ws_bytes": sum(n for _, n in got), "ws_frames": len(got), "cold_drawn_s": t1 - t0,
            "cold_delivered_s": max(t for t, _ in got) - t0}


def render(info, load, figs, opens, home, browser, repeats) -> str:
    t_load, t_first, _ = load
    maps_home = next(r for r in home["pages"] if r["page"] == "1_Cortical_maps")
    lines = [START, "## Dashboard: a whole-brain fsaverage bundle", "",
             f"Measured with `python benchmarks/bench_wholebrain_dashboard.py --repeats {repeats}"
             f"{' --browser' if browser else ''} --write` on "
             f"{info['cpu']}; bundle: {info['bundle']}: fsaverage, {info['n_vertices']:,} vertices (every fsaverage "
             f"vertex), {info['n_significant']:,} significant, {info['n_test']} test stimuli, "
             f"vertices.parquet {info['parquet_mb']:.1f} MB, jne_ss.npy {info['jne_ss_mb']:.1f} MB. Medians over the "
             "repeats; the machine was shared with other jobs, so the numbers are upper bounds.", "",
             "fsaverage maps are drawn on fsaverage5 (20,484 vertices): each fsaverage5 vertex shows the NaN-aware "
             "mean of its cell on fsaverage (`jnecore.atlas.fsaverage_to_fsaverage5`), so the figure is the size "
             "of an fsaverage5 map whatever V is.", "",
             "| what | seconds | figure JSON (MB) |", "|---|---|---|",
             f"| `load_bundle` (vertices.parquet read whole and checked, jne_ss.npy memory-mapped) | {t_load:.2f} | |",
             f"| first `plot_surface_map` of the process (builds the fsaverage5 cells) | {t_first:.2f} | |",
             f"| maps page, the bundle opens on it (AppTest first run: bundle, meshes, cells, figure) | "
             f"{opens['first_s']:.2f} | {opens['figure_json_bytes'] / 1e6:.2f} |",
             f"| maps page after the home page (AppTest first run) | {maps_home['first_s']:.2f} | |",
             f"| maps page rerun (nothing changed) | {opens['rerun_s']:.2f} | |"]
    if browser:
        lines += [f"| browser, maps page as a fresh server's first request (its imports included): until the "
                  f"last message arrived ({browser['ws_bytes'] / 1e6:.2f} MB over the websocket in "
                  f"{browser['ws_frames']} messages) | {browser['cold_delivered_s']:.2f} | |",
                  f"| the same, until plotly.js has drawn the map (Chromium `--disable-gpu`: WebGL in software) | "
                  f"{browser['cold_drawn_s']:.2f} | |"]
    lines += ["", f"Imports before the first page (streamlit, jnecore): {opens['imports_s']:.2f} s (not counted above).", "",
              "### Surface figure (`plot_surface_map` as the maps page calls it, cells built)", "",
              "| surface | hemi | build (s) | to_json (s) | JSON (MB) |", "|---|---|---|---|---|"]
    lines += [f"| {r['surface']} | {r['hemi']} | {r['build_s']:.3f} | {r['json_s']:.3f} | {r['json_mb']:.2f} |"
              for r in figs]
    lines += ["", "### Server-side script runs after the home page (streamlit.testing.v1.AppTest)", "",
              "| page | first run (s) | rerun (s) |", "|---|---|---|"]
    lines += [f"| {r['page']} | {r['first_s']:.2f} | {r['rerun_s']:.2f} |" for r in home["pages"]]
    lines += ["", "| maps page widget change | rerun (s) |", "|---|---|"]
    lines += [f"| {r['change']} | {r['rerun_s']:.2f} |" for r in home["widgets"]]
    return "\n".join(lines + [END]) + "\n"


def write_section(text: str):
    """bench_dashboard's writer (replace between the markers, else append), with this section's markers."""
    bd.START, bd.END = START, END
    bd.write_section(text)


def _bundle_info(path: Path, cpu: str, synthetic: bool) -> dict:
    from jnecore.bundle import load_bundle

    b = load_bundle(path)
    return dict(cpu=cpu, bundle="synthetic (`write_wholebrain_bundle` in tests/test_wholebrain.py)" if synthetic
                else f"`{b.name}`", n_vertices=len(b.vertices), n_significant=int(b.vertices["significant"].sum()),
                n_test=len(b.test_stimuli), parquet_mb=(path / "vertices.parquet").stat().st_size / 1e6,
                jne_ss_mb=(path / "jne_ss.npy").stat().st_size / 1e6)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", help="a whole-brain fsaverage bundle (default: write a synthetic one)")
    ap.add_argument("--n-test", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--browser", action="store_true", help="also drive Chromium (slow on 2 cores)")
    ap.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    ap.add_argument("--json", help="also write the raw numbers to this file")
    ap.add_argument("--_case", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a._case:
        print(json.dumps(_apptest_case(a._case, a.bundle, a.repeats)))
        return
    cpu = bd._cpu_info()
    with tempfile.TemporaryDirectory(prefix="jne-wholebrain-") as tmp:
        path = Path(a.bundle) if a.bundle else None
        if path is None:
            from test_wholebrain import write_wholebrain_bundle

            path = write_wholebrain_bundle(Path(tmp) / "fsaverage_wb", n_test=a.n_test)
        roots = str(path.resolve())
        info = _bundle_info(path, cpu, synthetic=not a.bundle)
        load = bench_load_and_figures(roots, a.repeats)
        opens = apptest_case("opens", roots, a.repeats)
        home = apptest_case("after-home", roots, a.repeats)
        browser = browser_bytes(roots) if a.browser and Path(bd.CHROMIUM).exists() else None
        raw = dict(info=info, load=load, opens=opens, home=home, browser=browser)
        print(json.dumps(raw, indent=1, default=float), flush=True)
        text = render(info, load, load[2], opens, home, browser, a.repeats)
    print(text)
    if a.json:
        Path(a.json).write_text(json.dumps(raw, indent=1, default=float))
    if a.write:
        write_section(text)


if __name__ == "__main__":
    main()
