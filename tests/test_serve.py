"""Serving to others (issue 14, item 5): loopback by default; any other address warns and needs a
token, which every page checks once per browser session."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from jnecore import dashboard_launch
from jnecore.cli import main

DASH = Path(__file__).resolve().parents[1] / "dashboard"


@pytest.fixture()
def started(monkeypatch):
    calls = []

    class Child:  # a Streamlit server that exits at once
        def __init__(self, cmd, env, cwd):
            calls.append((cmd, env))

        def poll(self):
            return 0

        def wait(self, timeout=None):
            return 0

    monkeypatch.setattr(dashboard_launch.subprocess, "Popen", Child)
    monkeypatch.delenv(dashboard_launch.TOKEN_ENV, raising=False)
    return calls


def _opt(cmd, name):
    return cmd[cmd.index(name) + 1]


def test_loopback_by_default_without_token(tmp_path, started, capsys):
    assert main(["dashboard", str(tmp_path), "--headless"]) == 0
    cmd, env = started[0]
    assert _opt(cmd, "--server.address") == "127.0.0.1"
    assert dashboard_launch.TOKEN_ENV not in env
    out, err = capsys.readouterr()
    assert "http://localhost:8501  (" in out and err == ""


def test_other_host_warns_and_generates_a_token(tmp_path, started, capsys):
    assert main(["dashboard", str(tmp_path), "--headless", "--host", "0.0.0.0"]) == 0
    cmd, env = started[0]
    assert _opt(cmd, "--server.address") == "0.0.0.0"
    token = env[dashboard_launch.TOKEN_ENV]
    assert len(token) >= 24
    out, err = capsys.readouterr()
    assert err.startswith("warning: --host 0.0.0.0: the dashboard is reachable from other machines")
    assert f"http://0.0.0.0:8501/?token={token}" in out
    assert main(["dashboard", str(tmp_path), "--headless", "--host", "0.0.0.0"]) == 0
    assert started[1][1][dashboard_launch.TOKEN_ENV] != token  # a fresh one each start


def test_given_token_is_used_and_checked(tmp_path, started, capsys):
    assert main(["dashboard", str(tmp_path), "--host", "0.0.0.0", "--token", "s3cret-token"]) == 0
    assert started[0][1][dashboard_launch.TOKEN_ENV] == "s3cret-token"
    capsys.readouterr()
    assert main(["dashboard", str(tmp_path), "--host", "0.0.0.0", "--token", "short"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --token: must be at least 8") and "\n" not in err


def test_pages_refuse_a_session_without_the_token(tmp_path, monkeypatch):
    pytest.importorskip("streamlit.testing.v1")
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("JNE_BUNDLE_ROOTS", str(tmp_path))
    monkeypatch.setenv(dashboard_launch.TOKEN_ENV, "right-token-123")
    for page in (DASH / "app.py", DASH / "pages" / "4_Encoding_performance.py"):
        at = AppTest.from_file(str(page), default_timeout=120)
        at.query_params["token"] = "wrong-token-123"
        at.run()
        assert not at.exception
        assert [e.value for e in at.error] and "access token" in at.error[0].value
        assert "_jne_token_ok" not in at.session_state
        assert len(at.main.children) <= 2  # the page stopped at the gate

        at = AppTest.from_file(str(page), default_timeout=120)
        at.query_params["token"] = "right-token-123"
        at.run()
        assert not at.exception
        assert not any("access token" in e.value for e in at.error)
        assert at.session_state["_jne_token_ok"] is True


def test_uploads_belong_to_their_session(tmp_path, monkeypatch):
    """Two browser sessions of one server process: a folder made by one is not a root of the other."""
    pytest.importorskip("streamlit.testing.v1")
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("JNE_BUNDLE_ROOTS", str(tmp_path))
    monkeypatch.delenv(dashboard_launch.TOKEN_ENV, raising=False)

    def script():
        import sys

        import streamlit as st

        sys.path.insert(0, st.session_state["dash"])
        import _state

        if st.session_state.get("upload"):
            up = _state.uploads_root(create=True)
            (up / "bundle").mkdir(exist_ok=True)
        st.session_state["roots"] = _state.bundle_roots()

    a = AppTest.from_function(script, default_timeout=60)
    a.session_state["dash"], a.session_state["upload"] = str(DASH), True
    a.run()
    assert not a.exception
    mine = a.session_state["roots"]
    assert len(mine) == 2 and mine[0] == str(tmp_path) and "session-" in Path(mine[1]).name

    b = AppTest.from_function(script, default_timeout=60)
    b.session_state["dash"], b.session_state["upload"] = str(DASH), False
    b.run()
    assert not b.exception
    assert b.session_state["roots"] == [str(tmp_path)]


def test_manifest_text_is_never_rendered(tmp_path, monkeypatch):
    """A manifest's warnings and label reach the page as literal text: no image, link or HTML."""
    pytest.importorskip("streamlit.testing.v1")
    import json
    import shutil

    from streamlit.testing.v1 import AppTest

    from jnecore.bundle import find_bundles
    from jnecore.sample import sample_data_dir

    src = Path(find_bundles(sample_data_dir())[0])
    dst = tmp_path / "evil"
    shutil.copytree(src, dst)
    man = json.loads((dst / "manifest.json").read_text())
    evil = "![x](http://example.invalid/beacon.png) <img src=http://example.invalid/b> **bold**"
    man["warnings"] = [evil]
    man["label"] = evil
    (dst / "manifest.json").write_text(json.dumps(man))
    monkeypatch.setenv("JNE_BUNDLE_ROOTS", str(tmp_path))
    monkeypatch.delenv(dashboard_launch.TOKEN_ENV, raising=False)
    at = AppTest.from_file(str(DASH / "app.py"), default_timeout=180)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    shown = [e.value for e in at.info] + [e.value for e in at.warning]
    assert any("beacon" in t for t in shown), shown
    for t in shown:
        if "beacon" in t:
            body = t[t.index("x\\]"):]  # from the manifest's text on
            assert not re.search(r"(?<!\\)[\[\]()<>!*]", body), body  # every mark escaped
            assert "\\<img" in body and "\\*\\*bold\\*\\*" in body


def test_viewer_is_one_page_that_fetches_nothing():
    """The surface viewer is served from the package's own folder (nothing copied to a shared temp
    dir, where another user could plant a page) and is one HTML file that loads nothing: no script,
    style, image or font from a URL, and no fetch or XMLHttpRequest."""
    import re

    from jnecore.dashboard import _viewer

    folder = _viewer.HERE
    assert sorted(p.name for p in folder.iterdir()) == ["index.html"]
    html = (folder / "index.html").read_text()
    assert not re.search(r"<(script|link|img|iframe)[^>]*(src|href)\s*=", html, re.I), "loads a file"
    assert not re.search(r"\b(fetch|XMLHttpRequest|importScripts|WebSocket)\s*\(", html)
    assert not re.search(r"url\(|@import|https?://", html), "refers to a URL"
