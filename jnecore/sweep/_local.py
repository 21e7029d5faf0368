"""Run cells on this machine, ``jobs`` at a time (one spawned process per job when jobs > 1)."""

from __future__ import annotations

import os

from ._execute import run_cell

__all__ = ["run_local", "threads_per_job"]


def threads_per_job(jobs: int) -> int:
    """torch threads of each job: the cores shared out (at least one)."""
    return max(1, (os.cpu_count() or 1) // max(1, jobs))


def _init_worker(threads: int):
    import signal

    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops the pool
    torch.set_num_threads(threads)


def run_local(specs: list, *, jobs: int = 1, threads: int | None = None, on_result=None) -> list:
    """Run every spec (:func:`jnecore.sweep.cell_spec`) with :func:`run_cell`, ``jobs`` at a time
    with ``threads`` torch threads each (default :func:`threads_per_job`); ``on_result`` is called
    with each result as it arrives. Returns the results in order of completion."""
    threads = threads or threads_per_job(jobs)
    results = []

    def done(res):
        results.append(res)
        if on_result is not None:
            on_result(res)

    if jobs <= 1 or len(specs) <= 1:
        for spec in specs:
            done(run_cell(dict(spec, threads=threads)))
        return results
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = multiprocessing.get_context("spawn")  # no fork of a process that holds torch's thread pools
    pool = ProcessPoolExecutor(max_workers=min(jobs, len(specs)), mp_context=ctx, initializer=_init_worker,
                               initargs=(threads,))
    try:
        futures = [pool.submit(run_cell, dict(spec, threads=threads)) for spec in specs]
        for fut in as_completed(futures):
            done(fut.result())
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return results
