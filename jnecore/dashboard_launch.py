"""Start the Streamlit dashboard (``jne dashboard``) on bundles or folders of bundles."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from .validation import InputError

__all__ = ["app_path", "default_bundle_roots", "launch", "ROOTS_ENV"]

#: environment variable carrying the bundle roots (os.pathsep-separated) to the app
ROOTS_ENV = "JNE_BUNDLE_ROOTS"


def app_path() -> Path:
    """The dashboard's ``app.py``: shipped as ``jnecore.dashboard`` (the repository's ``dashboard/``)."""
    spec = importlib.util.find_spec("jnecore.dashboard")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("jnecore.dashboard", "the dashboard is not installed: pip install jnecore")
    return Path(list(spec.submodule_search_locations)[0]) / "app.py"


def default_bundle_roots() -> list:
    """The bundled sample results: ``sample_data/`` shipped with the package."""
    from .sample import sample_data_dir

    return [str(sample_data_dir())]


def launch(paths, *, port: int = 8501, headless: bool = False) -> int:
    """Run ``streamlit run dashboard/app.py`` with the bundle roots; returns its exit code."""
    roots = [str(Path(p).resolve()) for p in paths] or default_bundle_roots()
    for r in roots:
        if not Path(r).exists():
            raise InputError(r, "no such bundle or folder")
    env = dict(os.environ)
    env[ROOTS_ENV] = os.pathsep.join(roots)
    cmd = [sys.executable, "-m", "streamlit", "run", str(app_path()), "--server.port", str(port),
           "--browser.gatherUsageStats", "false"]
    if headless:
        cmd += ["--server.headless", "true"]
    print(f"JNE Explorer on http://localhost:{port}  (bundles from: {', '.join(roots)})", flush=True)
    try:
        # cwd: Streamlit reads .streamlit/config.toml from the working directory
        return subprocess.call(cmd, env=env, cwd=app_path().parent)
    except KeyboardInterrupt:
        return 0
