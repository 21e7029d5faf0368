"""Start the Streamlit dashboard (``jne dashboard``) on bundles or folders of bundles."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from .validation import InputError

__all__ = ["app_path", "default_bundle_roots", "launch", "ROOTS_ENV", "TOKEN_ENV"]

#: environment variable carrying the bundle roots (os.pathsep-separated) to the app
ROOTS_ENV = "JNE_BUNDLE_ROOTS"
#: environment variable carrying the access token to the app (pages refuse a session without it)
TOKEN_ENV = "JNE_DASHBOARD_TOKEN"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


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


# no usage statistics (nothing leaves the machine) and no source watching: after every script run
# the watcher resolves the path of each loaded module (thousands, with torch) on the server's event
# loop, holding up the messages to the browser
SERVER_FLAGS = ("--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none")


def launch(paths, *, port: int = 8501, headless: bool = False, host: str = "127.0.0.1",
           token: str | None = None) -> int:
    """Run ``streamlit run dashboard/app.py`` with the bundle roots; returns its exit code.

    Listens on ``host`` (loopback by default, like Jupyter). Any other address prints a warning
    and requires a token: ``token``, or one generated here; every page refuses a browser session
    that did not open the printed ``?token=`` address. A ``token`` given on loopback is required too.
    """
    import secrets

    if token is not None and (len(token) < 8 or not token.isprintable() or " " in token):
        raise InputError("--token", "must be at least 8 printable characters without spaces")
    roots = [str(Path(p).resolve()) for p in paths] or default_bundle_roots()
    for r in roots:
        if not Path(r).exists():
            raise InputError(r, "no such bundle or folder")
    env = dict(os.environ)
    env[ROOTS_ENV] = os.pathsep.join(roots)
    env.pop(TOKEN_ENV, None)
    if host not in LOOPBACK:
        token = token or secrets.token_urlsafe(24)
        print(f"warning: --host {host}: the dashboard is reachable from other machines; "
              "only browsers that open the address with its token get in", file=sys.stderr, flush=True)
    if token:
        env[TOKEN_ENV] = token
    cmd = [sys.executable, "-m", "streamlit", "run", str(app_path()), "--server.port", str(port),
           "--server.address", host, *SERVER_FLAGS]
    if headless:
        cmd += ["--server.headless", "true"]
    shown = "localhost" if host in LOOPBACK else host
    query = f"/?token={token}" if token else ""
    print(f"JNE Explorer on http://{shown}:{port}{query}  (bundles from: {', '.join(roots)})", flush=True)
    # cwd: Streamlit reads .streamlit/config.toml from the working directory
    child = subprocess.Popen(cmd, env=env, cwd=app_path().parent)
    return _wait_forwarding_signals(child)


def _wait_forwarding_signals(child, grace_s: float = 4.0) -> int:
    """Wait for the Streamlit child; SIGTERM / SIGINT to us are passed on to it, and it is killed if
    it has not stopped ``grace_s`` later, so that the server always stops within 5 s.

    (``jne``'s own handlers only *request* a stop, to be acted on by long loops; a blocking wait
    never polls them, which once left the server running after SIGTERM.)
    """
    import signal
    import threading

    got = []

    def forward(signum, frame):
        got.append(signum)
        if child.poll() is None:
            child.send_signal(signal.SIGTERM if signum == signal.SIGTERM else signal.SIGINT)

    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        while not got:  # short waits, so that a forwarded signal is acted on at once
            try:
                return child.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                continue
            except KeyboardInterrupt:
                forward(signal.SIGINT, None)
        return _stop(child, grace_s)
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        if child.poll() is None:
            child.kill()
            child.wait()


def _stop(child, grace_s: float) -> int:
    """Exit code after a forwarded signal: the child's, or 143 after a kill once ``grace_s`` has passed."""
    try:
        child.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
    return 0
