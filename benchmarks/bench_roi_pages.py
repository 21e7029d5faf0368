"""The ROI hierarchy and stimulus-selectivity pages on a whole-brain bundle (V = 327,684): script time per run.

Usage::

    python benchmarks/bench_roi_pages.py [--bundle DIR] [--repo DIR] [--repeats 3] [--json FILE]

Without ``--bundle`` the synthetic whole-brain fsaverage bundle of tests/test_wholebrain.py
(``write_wholebrain_bundle``: 327,684 vertices, 180 parcels per hemisphere, 20 test stimuli) is
written to a temporary folder. ``--repo`` runs the page scripts of another checkout (e.g. an
export of an older commit, with PYTHONPATH pointing at it) for a before/after comparison.

streamlit.testing.v1.AppTest, server-side script time: the page's first run in this process (the
bundle read included), reruns with nothing changed (median of ``--repeats``), then one rerun per
widget change. Peak RSS of the process is printed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "tests")]


def _changes(page: str, at):
    keys = {w.key for w in at.selectbox} | {w.key for w in at.radio} | {w.key for w in at.checkbox}
    if page.startswith("2_"):
        out = [("metric -> R² nonlinear", lambda a: a.selectbox(key="h_metric").select("R² nonlinear")),
               ("significant only -> off", lambda a: a.checkbox(key="h_sig_only").uncheck()),
               ("test -> Welch", lambda a: a.selectbox(key="h_test").select("welch")),
               ("metric -> JNE", lambda a: a.selectbox(key="h_metric").select("JNE")),
               ("significant only -> on", lambda a: a.checkbox(key="h_sig_only").check())]
        if "h_roi_set" in keys:
            out.append(("ROI set -> functional names", lambda a: a.radio(key="h_roi_set").set_value("functional")))
        return out
    out = []
    if "s_scale" in keys:
        out.append(("heatmap scale -> min-max per ROI", lambda a: a.radio(key="s_scale").set_value("roi")))
    if "s_roi_set" in keys:
        out.append(("ROI set -> functional names", lambda a: a.radio(key="s_roi_set").set_value("functional")))
    return out


def bench(repo: Path, roots: str, repeats: int) -> list:
    os.environ["JNE_BUNDLE_ROOTS"] = roots
    from streamlit.testing.v1 import AppTest

    rows = []
    for page in ("2_ROI_hierarchy.py", "3_Stimulus_selectivity.py"):
        t0 = time.perf_counter()
        at = AppTest.from_file(str(repo / "dashboard" / "pages" / page), default_timeout=600).run()
        rows.append(dict(page=page, run="first run", s=time.perf_counter() - t0, errors=len(at.exception) + len(at.error)))
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            at.run()
            times.append(time.perf_counter() - t0)
        rows.append(dict(page=page, run="rerun, nothing changed (median)", s=statistics.median(times),
                         errors=len(at.exception) + len(at.error)))
        for name, change in _changes(page, at):
            change(at)
            t0 = time.perf_counter()
            at.run()
            rows.append(dict(page=page, run=name, s=time.perf_counter() - t0, errors=len(at.exception) + len(at.error)))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", help="a whole-brain bundle (default: write the synthetic one)")
    ap.add_argument("--repo", default=str(HERE.parent), help="checkout whose dashboard/pages are run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", help="also write the rows to this file")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = a.bundle
        if path is None:
            from test_wholebrain import write_wholebrain_bundle

            path = str(write_wholebrain_bundle(Path(tmp) / "wholebrain"))
        rows = bench(Path(a.repo), path, a.repeats)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    for r in rows:
        print(f"| {r['page']} | {r['run']} | {r['s']:.2f} | {r['errors']} |")
    print(f"peak RSS {rss:.2f} GB")
    if a.json:
        Path(a.json).write_text(json.dumps(dict(rows=rows, peak_rss_gb=rss), indent=1))


if __name__ == "__main__":
    main()
