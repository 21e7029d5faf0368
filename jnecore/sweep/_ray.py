"""Run cells on a Ray cluster: one task per cell, one GPU per task when the cluster has GPUs.

Ray (``pip install 'jnecore[cluster]'``) is imported only here, and only when a sweep is given
``--address`` (or runs on a Ray instance already started in this process). The workers run the
same :func:`jnecore.sweep.run_cell` as a local sweep; they need jnecore installed and the study
folder, the study's input files and the feature file at the same paths (a shared filesystem).
"""

from __future__ import annotations

import threading

from ..validation import InputError
from ._execute import _first_line, _result, run_cell
from ._state import update_cell, utc_now

__all__ = ["connect_ray", "run_ray", "CONNECT_TIMEOUT"]

#: seconds to wait for a cluster to answer
CONNECT_TIMEOUT = 30.0


def _probe(address: str, timeout: float):
    """Fail fast when nothing listens at host:port (ray.init itself may retry for minutes)."""
    import socket

    target = address.split("://", 1)[-1]
    host, _, port = target.rpartition(":")
    if not host:
        host, port = target, ("10001" if address.startswith("ray://") else "6379")
    try:
        port = int(port)
    except ValueError:
        raise InputError("--address", f"{address!r} is not HOST:PORT, ray://HOST:PORT or auto") from None
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        raise InputError("--address", f"cannot reach a Ray cluster at {address} ({exc.strerror or exc}); "
                                      "start one with `ray start --head` or check the address") from None


def connect_ray(address: str | None, *, timeout: float = CONNECT_TIMEOUT):
    """Connect to the Ray cluster at ``address`` (unless this process already has one) within
    ``timeout`` seconds, else :class:`InputError` naming ``--address``. Returns the ray module."""
    try:
        import ray
    except ImportError:
        raise InputError("--address", "needs Ray: pip install 'jnecore[cluster]'") from None
    if ray.is_initialized():
        return ray
    if address is None:
        raise InputError("--address", "no Ray cluster: give its address (HOST:PORT, ray://HOST:PORT or auto)")
    if address != "auto":
        _probe(address, min(10.0, timeout))
    box = {}

    def connect():
        try:
            ray.init(address=address, logging_level="ERROR", log_to_driver=False)
        except Exception as exc:  # connection refused, version mismatch ...
            box["error"] = exc

    t = threading.Thread(target=connect, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise InputError("--address", f"the Ray cluster at {address} did not answer within {timeout:.0f} s")
    if "error" in box:
        raise InputError("--address", f"cannot connect to the Ray cluster at {address}: {_first_line(box['error'])}")
    return ray


def run_ray(specs: list, *, address: str | None = None, on_result=None) -> list:
    """Run every spec as one Ray task (``num_gpus=1`` when the cluster has GPUs, else one CPU)."""
    ray = connect_ray(address)
    gpus = ray.cluster_resources().get("GPU", 0)
    task = ray.remote(num_gpus=1 if gpus else 0, num_cpus=1, max_retries=0)(run_cell)
    refs = {task.remote(dict(spec, threads=1)): spec for spec in specs}
    pending, results = list(refs), []
    try:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                try:
                    res = ray.get(ref)
                except Exception as exc:  # the task or its worker died: the cell fails, the others go on
                    spec = refs[ref]
                    res = _result(spec["cell"], "failed", _first_line(exc))
                    update_cell(spec["folder"], spec["cell"]["id"], state="failed", reason=res["reason"],
                                finished=utc_now())
                results.append(res)
                if on_result is not None:
                    on_result(res)
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    return results
