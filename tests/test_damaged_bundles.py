"""Damaged bundles are read as untrusted input: one schema check (jnecore.bundle.check_bundle), one
line per problem in `jne info`, and dashboard pages that show what is usable, never a traceback.

Every damaged bundle is made here from one good tiny bundle: files removed, emptied, truncated,
manifest fields of the wrong type, a 50 MB manifest, 10^5-deep nesting, columns of the wrong type.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from jnecore.bundle import (MAX_JSON_DEPTH, MAX_MANIFEST_BYTES, BundleError, check_bundle, load_bundle,
                            read_manifest, summary_tables, write_bundle)

ROOT = Path(__file__).resolve().parents[1]
V, N_TEST = 30, 6


def _good(path: Path) -> Path:
    rng = np.random.default_rng(0)
    v = pd.DataFrame({"vertex": np.arange(V), "hemi": "none", "roi": ["V1"] * 10 + ["V2"] * 10 + ["FFC"] * 10,
                      "level": ["primary"] * 10 + ["intermediate"] * 10 + ["higher"] * 10,
                      "r2_linear": rng.uniform(0, 0.3, V), "r2_nonlinear": rng.uniform(0.1, 0.4, V), "p": 0.01,
                      "p_fdr": 0.02, "significant": True, "excluded": False, "jne": rng.uniform(0.1, 0.2, V),
                      "noise_ceiling": rng.uniform(40, 60, V)})
    ss = rng.gamma(2, 0.01, (N_TEST, V)).astype(np.float32)
    stimuli = pd.DataFrame({"stimulus": [f"s{i}" for i in range(N_TEST + 4)], "split": ["test"] * N_TEST + ["train"] * 4,
                            "category": ["face", "body"] * ((N_TEST + 4) // 2)})
    tables = summary_tables(v, ss, stimuli.iloc[:N_TEST].reset_index(drop=True))
    return write_bundle(path, vertices=v, jne_ss=ss, stimuli=stimuli, tables=tables,
                        manifest={"space": "none", "config": {"norm": "l1"}, "name": path.name,
                                  "counts": {"excluded": 0}, "timings": {"fit": 1.5}, "device": {"type": "cpu"}})


def _truncate(p: Path, keep=0.5):
    data = p.read_bytes()
    p.write_bytes(data[: int(len(data) * keep)])


def _manifest(p: Path, **fields):
    man = json.loads((p / "manifest.json").read_text())
    man.update(fields)
    (p / "manifest.json").write_text(json.dumps(man))


def _deep_field(p: Path):
    text = (p / "manifest.json").read_text().rstrip()
    depth = 10 ** 5
    (p / "manifest.json").write_text(text[:-1] + ', "extra": ' + "[" * depth + "]" * depth + "}")


def _big_manifest(p: Path):
    man = json.loads((p / "manifest.json").read_text())
    with open(p / "manifest.json", "w") as fh:  # a valid JSON object of 50 MB
        fh.write(json.dumps(man)[:-1] + ', "pad": "' + "x" * (50 * 2 ** 20) + '"}')


def _column(p: Path, file: str, **cols):
    t = pd.read_parquet(p / file)
    for k, val in cols.items():
        t[k] = val
    t.to_parquet(p / file, index=False)


def _no_test_rows(p: Path):  # an empty JNE-SS: no test stimuli, jne_ss (0, V)
    _column(p, "stimuli.parquet", split="train")
    np.save(p / "jne_ss.npy", np.zeros((0, V), np.float32))


#: name -> (damage, fatal, words in the problem)
DAMAGE = {
    "no-manifest": (lambda p: (p / "manifest.json").unlink(), True, "no manifest.json"),
    "empty-manifest": (lambda p: (p / "manifest.json").write_text(""), True, "is empty"),
    "truncated-manifest": (lambda p: _truncate(p / "manifest.json"), True, "not valid JSON"),
    "manifest-50MB": (_big_manifest, True, "more than the"),
    "manifest-deep-1e5": (lambda p: (p / "manifest.json").write_text("[" * 10 ** 5 + "]" * 10 ** 5), True, "nests deeper"),
    "manifest-deep-field": (_deep_field, True, "nests deeper"),
    "manifest-list": (lambda p: (p / "manifest.json").write_text("[1, 2]"), True, "JSON object"),
    "space-wrong-type": (lambda p: _manifest(p, space={"a": 1}), True, "manifest space dict"),
    "version-wrong-type": (lambda p: _manifest(p, schema_version=1.1), True, "schema version float"),
    "no-vertices": (lambda p: (p / "vertices.parquet").unlink(), True, "missing"),
    "empty-vertices": (lambda p: (p / "vertices.parquet").write_bytes(b""), True, "is empty"),
    "truncated-vertices": (lambda p: _truncate(p / "vertices.parquet"), True, "not a readable parquet"),
    "vertices-text-r2": (lambda p: _column(p, "vertices.parquet", r2_linear="high"), True, "'r2_linear' holds"),
    "vertices-no-jne": (lambda p: pd.read_parquet(p / "vertices.parquet").drop(columns="jne").to_parquet(
        p / "vertices.parquet"), True, "lacks the columns jne"),
    "no-stimuli": (lambda p: (p / "stimuli.parquet").unlink(), True, "missing"),
    "truncated-stimuli": (lambda p: _truncate(p / "stimuli.parquet", 0.9), True, "not a readable parquet"),
    # usable, with a part left out
    "no-tables-folder": (lambda p: shutil.rmtree(p / "tables"), False, "folder missing"),
    "truncated-table": (lambda p: _truncate(p / "tables" / "roi_summary.parquet"), False, "not a readable parquet"),
    "tables-wrong-columns": (lambda p: [pd.DataFrame({"x": ["a"]}).to_parquet(t) for t in (p / "tables").glob("*")],
                             False, "lacks the columns roi (text), level (text), n (numbers)"),
    "no-jne-ss": (lambda p: (p / "jne_ss.npy").unlink(), False, "missing"),
    "empty-jne-ss-file": (lambda p: (p / "jne_ss.npy").write_bytes(b""), False, "is empty"),
    "truncated-jne-ss": (lambda p: _truncate(p / "jne_ss.npy"), False, "header claims"),
    "jne-ss-wrong-shape": (lambda p: np.save(p / "jne_ss.npy", np.zeros((N_TEST, V + 1), np.float32)), False,
                           "expected (n_test=6, n_vertices=30)"),
    "empty-jne-ss": (_no_test_rows, False, "no test stimuli"),
    "optional-column-text": (lambda p: _column(p, "vertices.parquet", noise_ceiling="n/a"), False,
                             "'noise_ceiling' holds"),
    "tables-wrong-type": (lambda p: _manifest(p, tables="roi_summary"), False, "'tables' should be a list"),
    "counts-wrong-type": (lambda p: _manifest(p, counts=[1, 2]), False, "'counts' should be an object"),
    "timings-text": (lambda p: _manifest(p, timings={"fit": "slow", "jne": 2.0}), False, "1 entry that is not a number: ignored"),
    "fields-wrong-type": (lambda p: _manifest(p, name=5, simulated="yes", label={"x": 1}, config=[], trunk="roi",
                                              device="cpu", volume=3), False, "should be"),
}


@pytest.fixture(scope="module")
def damaged(tmp_path_factory):
    """{case: bundle path}, plus "good"."""
    root = tmp_path_factory.mktemp("damaged")
    good = _good(root / "good")
    out = {"good": good}
    for name, (damage, _, _) in DAMAGE.items():
        p = root / name
        shutil.copytree(good, p)
        damage(p)
        out[name] = p
    return out


def test_good_bundle_has_no_problem(damaged):
    assert check_bundle(damaged["good"]) == []
    assert load_bundle(damaged["good"]).problems == []


@pytest.mark.parametrize("name", list(DAMAGE))
def test_check_names_each_problem(damaged, name):
    _, fatal, words = DAMAGE[name]
    problems = check_bundle(damaged[name])
    assert problems, name
    assert any(words in p.message for p in problems), [str(p) for p in problems]
    assert problems[-1].fatal == fatal
    assert all(str(p).startswith(str(damaged[name])) for p in problems)  # each names its file
    assert all("\n" not in str(p) for p in problems)
    if fatal:
        with pytest.raises(BundleError):
            load_bundle(damaged[name])
    else:  # opens; what it lost is listed, the rest reads as before
        b = load_bundle(damaged[name])
        assert [str(p) for p in b.problems] == [str(p) for p in problems]
        good = load_bundle(damaged["good"])
        pd.testing.assert_series_equal(b.vertices["jne"], good.vertices["jne"])


def test_lost_parts_are_left_out(damaged):
    b = load_bundle(damaged["no-jne-ss"])  # JNE-SS: all NaN of the right shape, nothing allocated
    assert b.jne_ss.shape == (N_TEST, V) and np.isnan(b.jne_ss).all() and b.jne_ss.strides == (0, 0)
    assert load_bundle(damaged["empty-jne-ss"]).jne_ss.shape == (0, V)
    b = load_bundle(damaged["truncated-table"])
    assert "roi_summary" not in b.table_names and "level_summary" in b.table_names
    with pytest.raises(KeyError):
        b.table("roi_summary")
    assert load_bundle(damaged["no-tables-folder"]).table_names == []
    assert load_bundle(damaged["tables-wrong-columns"]).table_names == []  # each recomputed by the pages
    assert "noise_ceiling" not in load_bundle(damaged["optional-column-text"]).vertices
    m = load_bundle(damaged["fields-wrong-type"]).manifest
    assert not {"name", "simulated", "label", "config", "trunk", "device", "volume"} & set(m)
    assert load_bundle(damaged["timings-text"]).manifest["timings"] == {"jne": 2.0}


def test_manifest_limits_hold_before_parsing(tmp_path):
    p = tmp_path / "b"
    p.mkdir()
    d = MAX_JSON_DEPTH - 1  # the object itself is one level
    ok = {"schema_version": "1.1", "space": "none", "deep": json.loads("[" * d + "]" * d)}
    (p / "manifest.json").write_text(json.dumps(ok))
    assert read_manifest(p)["space"] == "none"  # exactly at the depth limit: read
    (p / "manifest.json").write_text(json.dumps(dict(ok, deep=json.loads("[" * (d + 1) + "]" * (d + 1)))))
    with pytest.raises(BundleError, match=f"nests deeper than {MAX_JSON_DEPTH}"):
        read_manifest(p)
    # brackets inside strings (escaped quotes too) are text, not nesting
    (p / "manifest.json").write_text(json.dumps(dict(ok, deep="[" * 1000 + '\\"{' * 100)))
    assert read_manifest(p)["deep"].startswith("[[")
    with open(p / "manifest.json", "wb") as fh:
        fh.truncate(MAX_MANIFEST_BYTES + 1)  # sparse: refused from its size alone
    with pytest.raises(BundleError, match="is 16,777,217 bytes, more than the 16,777,216"):
        read_manifest(p)


def _info_all(paths: dict) -> dict:
    """`jne info` on every bundle in ONE python process (each import costs seconds on 2 cores):
    {case: (exit code, stdout, stderr, traceback or "")}."""
    driver = r"""
import contextlib, io, json, sys, traceback
from jnecore.cli import main
out = {}
for name, path in json.loads(sys.argv[1]).items():
    o, e, tb = io.StringIO(), io.StringIO(), ""
    try:
        with contextlib.redirect_stdout(o), contextlib.redirect_stderr(e):
            code = main(["info", path])
    except BaseException:
        code, tb = -1, traceback.format_exc()
    out[name] = [code, o.getvalue(), e.getvalue(), tb]
print(json.dumps(out))
"""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-c", driver, json.dumps({k: str(v) for k, v in paths.items()})],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_info_one_line_per_problem(damaged):
    results = _info_all(damaged)
    code, out, err, tb = results.pop("good")
    assert (code, err, tb) == (0, "", "") and "vertices 30" in out
    for name, (code, out, err, tb) in results.items():
        assert tb == "" and "Traceback" not in out + err, (name, tb)
        problems = [str(p) for p in check_bundle(damaged[name])]
        if DAMAGE[name][1]:  # unusable: exit 2, one error/warning line per problem, nothing on stdout
            assert code == 2 and out == "", (name, out)
            lines = err.splitlines()
            assert len(lines) == len(problems) and lines[-1] == f"error: {problems[-1]}", (name, err)
        else:  # usable: the summary, then one `problem` line per problem
            assert code == 1 and err == "", (name, err)
            assert [ln[len("problem  "):] for ln in out.splitlines() if ln.startswith("problem  ")] == problems
            assert "vertices 30" in out


@pytest.mark.parametrize("name", ["manifest-deep-1e5", "truncated-jne-ss"])
def test_info_as_a_user_runs_it(damaged, name):
    r = subprocess.run([sys.executable, "-m", "jnecore.cli", "info", str(damaged[name])], capture_output=True,
                       text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert "Traceback" not in r.stdout + r.stderr
    if DAMAGE[name][1]:  # one error line, nothing on stdout
        assert (r.returncode, r.stdout, len(r.stderr.splitlines())) == (2, "", 1)
        assert r.stderr.startswith(f"error: {damaged[name] / 'manifest.json'}: nests deeper than 64 levels")
    else:  # the summary and one problem line
        assert (r.returncode, r.stderr) == (1, "")
        assert [ln for ln in r.stdout.splitlines() if ln.startswith("problem  ")] == [
            f"problem  {damaged[name] / 'jne_ss.npy'}: is truncated or damaged: its header claims 720 bytes of data "
            "(shape (6, 30), float32), the file holds 296: the JNE-SS views show no values"]


# ------------------------------------------------------------------------------------------ dashboard

DASH = ROOT / "dashboard"
PAGES = ["app.py"] + sorted(p.name for p in (DASH / "pages").glob("*.py"))


def _combined(root: Path, good: Path) -> Path:
    """A usable bundle with every non-fatal kind of damage at once."""
    p = root / "a_usable_damaged"
    if not p.exists():
        shutil.copytree(good, p)
        shutil.rmtree(p / "tables")
        _truncate(p / "jne_ss.npy")
        _column(p, "vertices.parquet", noise_ceiling="n/a")
        _manifest(p, tables=["roi_summary"], counts=[1], timings={"fit": "slow"}, name=5, simulated="yes",
                  label={"x": 1}, config=[], trunk="roi", device="cpu", volume=3)
    return p


@pytest.mark.parametrize("case", ["manifest-deep-field", "truncated-vertices", "combined", "empty-jne-ss",
                                  "tables-wrong-columns"])
@pytest.mark.parametrize("page", PAGES)
def test_every_page_on_damaged_bundles(damaged, tmp_path_factory, monkeypatch, page, case):
    pytest.importorskip("streamlit.testing.v1")
    from streamlit.testing.v1 import AppTest

    root = damaged["good"].parent
    path = _combined(root, damaged["good"]) if case == "combined" else damaged[case]
    # the damaged bundle is chosen; a bundle with wrong-typed fields is listed too
    monkeypatch.setenv("JNE_BUNDLE_ROOTS", os.pathsep.join([str(path), str(damaged["fields-wrong-type"])]))
    at = AppTest.from_file(str(DASH / page if page == "app.py" else DASH / "pages" / page), default_timeout=120)
    at.session_state["jne_bundle"] = str(path.resolve())
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    if page == "7_Study.py":  # reads studies, not the sidebar's bundle: neither bundle here is a study cell
        assert not at.error and any("No study found" in i.value for i in at.info), [i.value for i in at.info]
        return
    if case in ("manifest-deep-field", "truncated-vertices"):  # one error naming the file and the problem
        assert len(at.error) == 1 and "Could not read the bundle" in at.error[0].value
        assert ("nests deeper" if case == "manifest-deep-field" else "not a readable parquet") in at.error[0].value
    else:  # usable: one warning per problem, the page drawn
        assert not at.error, [e.value for e in at.error]
        want = len(check_bundle(path))
        shown = [w.value for w in at.warning if "Simulated data" not in w.value]
        assert len(shown) >= want, (shown, want)
        if page in ("2_ROI_hierarchy.py", "4_Encoding_performance.py"):  # drawn from what is usable
            assert at.get("plotly_chart")


@pytest.mark.parametrize("page", ["app.py", "6_Compare_bundles.py"])
def test_the_bundles_own_text_in_an_error_is_plain(damaged, monkeypatch, page):
    """A refused manifest's text quoted in the error must not render as markdown (no image fetch)."""
    pytest.importorskip("streamlit.testing.v1")
    from streamlit.testing.v1 import AppTest

    p = damaged["good"].parent / "markdown-version"
    if not p.exists():
        shutil.copytree(damaged["good"], p)
        _manifest(p, schema_version="![x](http://e.invalid/a.png)")
    monkeypatch.setenv("JNE_BUNDLE_ROOTS", os.pathsep.join([str(p), str(damaged["good"])]))
    at = AppTest.from_file(str(DASH / page if page == "app.py" else DASH / "pages" / page), default_timeout=120)
    key = "jne_bundle" if page == "app.py" else "jne_compare_b"
    at.session_state[key] = str(p.resolve())
    if page != "app.py":
        at.session_state["jne_bundle"] = at.session_state["jne_compare_a"] = str(damaged["good"].resolve())
    at.run()
    assert not at.exception and len(at.error) == 1
    text = at.error[0].value
    assert "schema version" in text and "](http" not in text and r"\]\(http" in text
