"""Cooperative cancellation of long work (encoder fits, Jacobian chunks)."""

from __future__ import annotations

import threading

__all__ = ["request_stop", "clear_stop", "check_stop"]


# Cooperative cancellation. A signal handler raises KeyboardInterrupt at once, but Python drops an
# exception raised while a finaliser (__del__, weakref callback) runs; the flag below survives that,
# and the long loops (encoder epochs, Jacobian chunks) check it.
_stop = threading.Event()


def request_stop():
    """Ask running fits and Jacobian computations to stop (they raise KeyboardInterrupt)."""
    _stop.set()


def clear_stop():
    _stop.clear()


def check_stop():
    """Raise KeyboardInterrupt if :func:`request_stop` was called."""
    if _stop.is_set():
        raise KeyboardInterrupt
