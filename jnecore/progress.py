"""A small progress-bar helper so every long loop reports the same way."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm

__all__ = ["progress_bar"]


def progress_bar(iterable=None, *, total=None, desc=None, enabled=True, unit="it"):
    """Wrap ``iterable`` in a tqdm bar on stderr, or return it unchanged when disabled."""
    if not enabled:
        return iterable if iterable is not None else _NullBar()
    return tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True, leave=False)


class _NullBar:
    def update(self, n=1):
        pass

    def close(self):
        pass

    def set_postfix_str(self, s):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
