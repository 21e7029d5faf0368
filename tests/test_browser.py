"""The dashboard in a real browser: Debian's Chromium driven by Playwright.

Starts ``jne dashboard FOLDER --port P --headless`` on a folder with two bundles (the small demo and
a perturbed copy), opens every page, waits for its plotly figures to render, checks that no
Streamlit exception or error box is shown, and saves full-page screenshots to test-artifacts/.

Skipped when /usr/bin/chromium is missing, unless CI=true (then it fails: .ci/run installs it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from _bundles import bundle_folder

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts" / "browser"
# URL path, minimum number of plotly figures expected on the page (the maps page draws its map in the
# surface viewer's frame: see _viewer_frame)
PAGES = [
    ("", 0),
    ("Cortical_maps", 0),
    ("ROI_hierarchy", 5),
    ("Stimulus_selectivity", 4),
    ("Encoding_performance", 2),
    ("Simulations", 3),
    ("Compare_bundles", 2),
]


def _need_chromium():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{CHROMIUM} is missing in CI: install it with apt-get install chromium")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("playwright (python) is not installed")
        pytest.skip("playwright (python) is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc, timeout: float = 90.0):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"the dashboard server exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"the dashboard did not answer on {url} within {timeout:.0f} s")


@contextlib.contextmanager
def serve(folder, logdir):
    """``jne dashboard FOLDER`` on a free port, headless; yields its URL, stops it (SIGTERM, then SIGKILL)."""
    port = _free_port()
    jne = shutil.which("jne") or None
    cmd = [jne] if jne else [sys.executable, "-m", "jnecore.cli"]
    cmd += ["dashboard", str(folder), "--port", str(port), "--headless"]
    fh = open(Path(logdir) / "server.log", "w")
    proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True, cwd=REPO)
    url = f"http://localhost:{port}"
    try:
        _wait_healthy(url, proc)
        yield url
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        fh.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    _need_chromium()
    with serve(bundle_folder(tmp_path_factory), tmp_path_factory.mktemp("server")) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    _need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def _wait_idle(page, timeout_ms=60_000):
    """Wait until the app has finished its script run (the running indicator is gone)."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout_ms)
    t0 = time.time()
    while (time.time() - t0) * 1000 < timeout_ms:
        running = page.locator('[data-testid="stStatusWidget"]').count()
        if not running:
            return
        page.wait_for_timeout(250)


def _screenshot(page, name):
    """Screenshot of the whole page (Streamlit scrolls inside its main container, so grow the viewport)."""
    h = page.evaluate("() => Math.max(...[...document.querySelectorAll('[data-testid=\"stMain\"], "
                      "[data-testid=\"stMainBlockContainer\"]')].map(e => e.scrollHeight), 800)")
    page.set_viewport_size({"width": 1400, "height": min(int(h) + 120, 12000)})
    page.wait_for_timeout(1200)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _viewer_frame(page, timeout_ms=90_000):
    """The maps page's surface viewer (an iframe) once it has drawn its figure."""
    page.wait_for_selector('iframe[title*="jne_surface_viewer"]', timeout=timeout_ms, state="attached")
    t0 = time.time()
    while (time.time() - t0) * 1000 < timeout_ms:
        frames = [f for f in page.frames if "jne_surface_viewer" in f.url]
        if frames:
            frames[0].wait_for_selector("body[data-rendered]", timeout=timeout_ms, state="attached")
            return frames[0]
        page.wait_for_timeout(100)
    raise TimeoutError("the surface viewer did not draw")


def _check_no_errors(page, name):
    exc = page.locator('[data-testid="stException"]')
    assert exc.count() == 0, f"{name}: Streamlit exception: {exc.first.inner_text()[:800]}"
    err = page.locator('[data-testid="stAlertContentError"]')
    assert err.count() == 0, f"{name}: error box: {err.first.inner_text()[:800]}"


@pytest.mark.parametrize("path,n_plots", PAGES, ids=[p or "home" for p, _ in PAGES])
def test_page_renders(server, browser, path, n_plots):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    console_errors = []
    page.on("pageerror", lambda e: console_errors.append(str(e)))
    try:
        t0 = time.perf_counter()
        page.goto(f"{server}/{path}", wait_until="domcontentloaded", timeout=60_000)
        if path == "Cortical_maps":
            _viewer_frame(page)
        elif n_plots:
            page.wait_for_selector(".js-plotly-plot .main-svg", timeout=90_000)
        else:
            page.wait_for_selector('[data-testid="stMetric"]', timeout=90_000)
        first = time.perf_counter() - t0
        _wait_idle(page)
        page.wait_for_timeout(800)  # let plotly finish drawing WebGL scenes
        _check_no_errors(page, path or "home")
        n = page.locator(".js-plotly-plot").count()
        assert n >= n_plots, f"{path}: {n} plotly figures rendered, expected at least {n_plots}"
        assert not [e for e in console_errors if "plotly" in e.lower()], console_errors
        _screenshot(page, path or "home")
        print(f"{path or 'home'}: first figure after {first:.2f} s, {n} figures")
    finally:
        page.close()


def test_widget_change_rerenders_map(server, browser):
    """Change the map metric in the browser: the page reruns without errors and redraws the map."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(f"{server}/Cortical_maps", wait_until="domcontentloaded", timeout=60_000)
        frame = _viewer_frame(page)
        _wait_idle(page)
        box = page.locator('[data-testid="stSelectbox"]').filter(has_text="Map").first
        box.click()
        page.get_by_role("option", name="R² nonlinear", exact=True).click()
        t0 = time.perf_counter()
        frame.wait_for_function("() => window.jneViewer.title().includes('R² nonlin') && window.jneViewer.draws() > 0",
                                timeout=30_000)
        dt = time.perf_counter() - t0
        _wait_idle(page)
        _check_no_errors(page, "Cortical_maps after metric change")
        _screenshot(page, "Cortical_maps_r2")
        print(f"metric change redrawn in {dt:.2f} s")
    finally:
        page.close()


def test_downloads_from_maps_page(server, browser, tmp_path):
    """The figure (HTML), shown values (CSV) and GIfTI downloads deliver files with the right content."""
    import nibabel as nib

    page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    try:
        page.goto(f"{server}/Cortical_maps", wait_until="domcontentloaded", timeout=60_000)
        _viewer_frame(page)
        _wait_idle(page)
        got = {}
        for label in ("Download figure (HTML)", "Shown values (CSV)", "Map as GIfTI (L)"):
            with page.expect_download(timeout=60_000) as info:
                page.get_by_role("button", name=label).first.click()
            d = info.value
            target = tmp_path / d.suggested_filename
            d.save_as(target)
            got[label] = target
        html = got["Download figure (HTML)"].read_text()
        assert "plotly" in html.lower() and "Mesh3d".lower() in html.lower()
        csv = got["Shown values (CSV)"].read_text().splitlines()
        assert csv[0].startswith("vertex,hemi,roi,level,significant") and len(csv) > 10
        gii = nib.load(got["Map as GIfTI (L)"])
        assert gii.darrays[0].data.shape == (32492,)
        _check_no_errors(page, "Cortical_maps after downloads")
    finally:
        page.close()
