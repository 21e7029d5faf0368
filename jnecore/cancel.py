"""Cooperative cancellation of long work (encoder fits, Jacobian chunks)."""

from __future__ import annotations

import threading

__all__ = ["Terminated", "request_stop", "clear_stop", "check_stop", "stop_requested"]


# Cooperative cancellation. The CLI's signal handlers set the flag below instead of raising: an
# exception raised from a handler can land in a finaliser (__del__, weakref callback), where Python
# drops it. The long loops (encoder batches, Jacobian chunks, pipeline steps) check the flag and
# raise KeyboardInterrupt from ordinary code.
_stop = threading.Event()
_reason = [KeyboardInterrupt]


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised as a KeyboardInterrupt so that the same cleanup runs."""


def request_stop(reason=KeyboardInterrupt):
    """Ask running fits and Jacobian computations to stop: they raise ``reason`` (a
    KeyboardInterrupt subclass) at their next check."""
    _reason[0] = reason
    _stop.set()


def clear_stop():
    _stop.clear()
    _reason[0] = KeyboardInterrupt


def stop_requested() -> bool:
    return _stop.is_set()


def check_stop():
    """Raise KeyboardInterrupt if :func:`request_stop` was called."""
    if _stop.is_set():
        raise _reason[0]()
