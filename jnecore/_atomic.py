"""Atomic directory writes: build in a temporary sibling, then rename into place."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
from pathlib import Path

from .validation import InputError

__all__ = ["check_out", "clean_stale", "lock_out", "replace_dir", "tmp_prefix"]


def tmp_prefix(out) -> str:
    """Prefix of the temporary sibling a writer of ``out`` builds in; it names the writer's PID."""
    return f".{Path(out).name}.tmp-{os.getpid()}-"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


@contextlib.contextmanager
def lock_out(out):
    """Hold an exclusive lock on ``out`` for the duration of the block.

    The lock is ``.<out>.lock`` next to ``out`` (``flock``, so a killed holder releases it at
    once). A second writer fails at once with :class:`InputError` naming the holder's PID. On
    entry, stale temporary folders of dead writers of ``out`` are cleaned (:func:`clean_stale`).
    """
    import fcntl

    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(out, f"cannot create its folder: {exc.strerror or exc}") from None
    lock = out.parent / f".{out.name}.lock"
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise InputError(out, f"cannot write next to it: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            try:
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            finally:
                os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise InputError(out, f"is being written by another process (PID {holder}, lock {lock}); "
                                      "wait for it to finish or choose another --out") from None
            raise InputError(out, f"cannot lock {lock}: {exc.strerror or exc}") from None
        try:  # the holder before us may have removed the file between our open and our lock
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        clean_stale(out)
        yield lock
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock)
        os.close(fd)


_STALE = re.compile(r"\.(tmp|old)-(\d+)(-.*)?$")


def clean_stale(out) -> list:
    """Remove the temporary folders left next to ``out`` by writers that are gone.

    ``.<out>.tmp-<pid>-*`` (a bundle being built) is removed once ``pid`` is no longer alive.
    ``.<out>.old-<pid>`` (the previous bundle, moved aside during an ``--overwrite`` swap) is put
    back as ``out`` when ``out`` is missing, and removed only when the new ``out`` is in place.
    Call it while holding :func:`lock_out`. Returns the names removed or restored.
    """
    out = Path(out)
    done = []
    if not out.parent.is_dir():
        return done
    head = f".{out.name}."
    for p in sorted(out.parent.iterdir()):
        if not p.name.startswith(head):
            continue
        m = _STALE.fullmatch(p.name[len(head) - 1:])
        if m is None or _alive(int(m.group(2))) or not p.is_dir():
            continue
        if m.group(1) == "old" and not out.exists():
            os.replace(p, out)  # the swap was killed between its two renames: the old bundle is back
        else:
            shutil.rmtree(p, ignore_errors=True)
        done.append(p.name)
    return done


def check_out(out, overwrite: bool):
    """Refuse (:class:`InputError`) an existing, non-empty ``out`` unless ``overwrite``.

    Called before any work starts, so a refused run costs nothing and leaves ``out`` untouched.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise InputError(out, "exists and is not empty: choose another `out` or pass `overwrite`")


def out_state(out):
    """What ``out`` is now (None when absent): compare two of these to see if someone wrote it."""
    out = Path(out)
    try:
        st = os.stat(out)
    except FileNotFoundError:
        return None
    try:
        man = os.stat(out / "manifest.json")
        man = (man.st_ino, man.st_mtime_ns)
    except OSError:
        man = None
    return (st.st_ino, man)


def replace_dir(tmp: Path, out: Path, *, overwrite: bool = True, expect=False):
    """Rename the finished directory ``tmp`` to ``out``.

    An empty ``out`` is replaced; a non-empty one is moved aside, swapped and then removed when
    ``overwrite``, and refused (left untouched, :class:`InputError`) otherwise. If the rename fails
    the old ``out`` is put back.

    ``expect`` (an :func:`out_state` taken when the write began) makes the swap refuse an ``out``
    that another process wrote in the meantime, so ``overwrite`` only ever replaces what the
    caller saw.
    """
    tmp, out = Path(tmp), Path(out)
    check_out(out, overwrite)
    if expect is not False and out_state(out) != expect and out.exists() and any(out.iterdir()):
        raise InputError(out, "was written by another process while this one worked; it is left as it is "
                              "(run again with --overwrite to replace it)")
    old = None
    if out.exists():
        if out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        else:
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, old)
    try:
        os.replace(tmp, out)
    except BaseException:
        if old is not None and old.exists():
            os.replace(old, out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
