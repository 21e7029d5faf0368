"""``run_sweep``: check a study file, then run its cells locally or on Ray, recording study.json."""

from __future__ import annotations

import sys
from pathlib import Path

from ..validation import InputError
from ._cells import expand_cells
from ._execute import cell_namespace, cell_spec
from ._state import init_state
from ._studyfile import for_checking, read_study

__all__ = ["run_sweep", "check_cells"]


def check_cells(study, specs: list, *, remote: bool = False):
    """Check each subject x setting's `jne run` options (no file is read) before any cell runs;
    a problem names the study file and the subject's key (``remote``: see :func:`for_checking`)."""
    from .._run_cli import check_run_args, error_text

    seen = set()
    for spec in specs:
        key = (spec["cell"]["subject"], spec["cell"]["setting"])
        if key in seen:
            continue
        seen.add(key)
        try:
            spec = dict(spec, params=for_checking(spec["params"], remote))
            check_run_args(cell_namespace(spec, Path(spec["folder"]) / spec["cell"]["bundle"]))
        except InputError as exc:
            raise InputError(study.path, f"subjects.{key[0]} (setting {key[1]}): {error_text(exc)}") from None


def run_sweep(study_file, *, out=None, jobs: int = 1, threads: int | None = None, address: str | None = None,
              ray: bool = False, resume: bool = False, overwrite: bool = False, log=None):
    """Run every cell of the study file that is not done.

    Parameters
    ----------
    jobs, threads : int
        Cells at a time on this machine, and torch threads per cell (default cores // jobs);
        ignored on Ray (one thread per task).
    address, ray :
        Run on the Ray cluster at ``address`` (or, with ``ray``, on the Ray instance this process
        already started); otherwise locally, without importing Ray.
    resume, overwrite :
        An existing study folder needs one: ``resume`` runs the cells not done, ``overwrite``
        every cell again (replacing their bundles).
    log : callable, optional
        Called with each progress line (default: print to stdout).

    Returns
    -------
    (path of study.json, {"done", "failed", "skipped", "total"} counts, list of results)
    """
    log = log or (lambda line: print(line, flush=True))
    if jobs < 1:
        raise InputError("--jobs", f"must be an integer >= 1, got {jobs}")
    if threads is not None and threads < 1:
        raise InputError("--threads", f"must be an integer >= 1, got {threads}")
    remote = bool(address or ray)
    study = read_study(study_file, out=out, remote=remote)
    cells = expand_cells(study)
    specs = [cell_spec(study, c, overwrite=overwrite) for c in cells]
    check_cells(study, specs, remote=remote)
    state = init_state(study.out, name=study.name, study_file=study_file, cells=cells, resume=resume,
                       overwrite=overwrite)
    states = {c["id"]: c["state"] for c in state["cells"]}
    todo = [s for s in specs if overwrite or states.get(s["cell"]["id"]) != "done"]
    where = f"Ray ({address or 'this process'})" if (address or ray) else f"this machine, {jobs} at a time"
    log(f"sweep {study.name}: {len(todo)} of {len(specs)} cells to run on {where}; study folder {study.out}")
    counts = {"done": len(specs) - len(todo), "failed": 0, "skipped": 0, "total": len(specs)}
    seen = [0]

    def on_result(res):
        seen[0] += 1
        counts[res["state"]] += 1
        took = f" in {res['seconds']:.1f} s" if res.get("seconds") is not None else ""
        why = f": {res['reason']}" if res.get("reason") else ""
        log(f"[{seen[0]}/{len(todo)}] {res['id']}: {res['state']}{took}{why}")
        for w in res.get("warnings", []):
            print(f"warning: {res['id']}: {w}", file=sys.stderr)

    if address or ray:
        from ._ray import run_ray

        results = run_ray(todo, address=address, on_result=on_result)
    else:
        from ._local import run_local

        results = run_local(todo, jobs=jobs, threads=threads, on_result=on_result)
    path = Path(study.out) / "study.json"
    log(f"study {study.name}: {counts['done']} of {counts['total']} cells done, {counts['failed']} failed"
        + (f", {counts['skipped']} left to another sweep" if counts["skipped"] else "") + f"; {path}")
    return path, counts, results
