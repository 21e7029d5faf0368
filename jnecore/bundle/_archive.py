"""Safe extraction of uploaded bundle archives (zip or tar, optionally gzip-compressed).

An archive is untrusted input. :func:`extract_bundle_archive` refuses, before writing anything:

- anything that is not a zip or tar archive;
- members whose paths escape the destination (absolute paths, drive letters, ``..``
  components), symbolic and hard links, device files and other special members;
- more than ``max_files`` members, or an uncompressed total above ``max_bytes`` (counted again
  while extracting, so a lying header cannot get past it).

It extracts into a temporary directory inside ``dest_root``, checks that the result is a valid
result bundle with :func:`jnecore.bundle.load_bundle` (the bundle may sit at the archive's root
or in one top-level folder), and only then renames it into ``dest_root``. Any failure removes the
temporary directory and raises :class:`~jnecore.validation.InputError` naming the archive.
"""

from __future__ import annotations

import lzma
import os
import re
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from ..validation import InputError

__all__ = ["extract_bundle_archive", "MAX_ARCHIVE_BYTES", "MAX_ARCHIVE_FILES"]

MAX_ARCHIVE_BYTES = 500 * 1024 * 1024
MAX_ARCHIVE_FILES = 10000
#: one member unpacked (a whole-brain jne_ss.npy of 1000 x 60k float32 is 240 MB)
MAX_MEMBER_BYTES = 400 * 1024 * 1024
#: unpacked / packed bytes, above 1 MB unpacked: the sample bundle zips at 1.1x, a jne_ss.npy 97.5% NaN
#: (1000 x 20000) at 40x (measured); runs of zeros (bombs) reach ~1000x, deflate's ceiling
MAX_COMPRESSION_RATIO = 200
_CHUNK = 1 << 20
#: what zipfile / tarfile / gzip / lzma raise for a damaged archive (found by tests/test_fuzz_readers.py)
_DAMAGED = (OSError, EOFError, zipfile.BadZipFile, tarfile.TarError, RuntimeError, zlib.error, NotImplementedError,
            ValueError, UnicodeError, lzma.LZMAError, OverflowError)


def _safe_parts(name: str, archive) -> tuple:
    """The path components of member ``name``, or raise when it could escape."""
    raw = name.replace("\\", "/")
    if raw.startswith("/") or re.match(r"^[A-Za-z]:", raw):
        raise InputError(archive, f"member {name!r} has an absolute path: refused")
    parts = [p for p in PurePosixPath(raw).parts if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise InputError(archive, f"member {name!r} points outside the archive ('..'): refused")
    if any("\x00" in p for p in parts):
        raise InputError(archive, f"member {name!r} has a NUL byte in its name: refused")
    return tuple(parts)


def _zip_members(zf: zipfile.ZipFile, archive):
    members = []
    for info in zf.infolist():
        mode = (info.external_attr >> 16) & 0xFFFF
        if mode and stat.S_ISLNK(mode):
            raise InputError(archive, f"member {info.filename!r} is a symbolic link: refused")
        if mode and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)) and stat.S_IFMT(mode):
            raise InputError(archive, f"member {info.filename!r} is not a regular file or folder: refused")
        if info.flag_bits & 0x1:
            raise InputError(archive, f"member {info.filename!r} is encrypted: refused")
        if not info.filename:  # zipfile's is_dir() fails on it (found by the fuzz test)
            raise InputError(archive, "holds a member with an empty name: damaged")
        parts = _safe_parts(info.filename, archive)
        members.append((parts, info.is_dir(), info.file_size, info))
    return members


def _tar_members(tf: tarfile.TarFile, archive):
    members = []
    for m in tf.getmembers():
        if m.issym() or m.islnk():
            raise InputError(archive, f"member {m.name!r} is a {'symbolic' if m.issym() else 'hard'} link: refused")
        if not (m.isfile() or m.isdir()):
            raise InputError(archive, f"member {m.name!r} is not a regular file or folder: refused")
        parts = _safe_parts(m.name, archive)
        members.append((parts, m.isdir(), m.size, m))
    return members


def _copy_limited(src, dst_path: Path, budget: list, max_bytes: int, archive):
    with open(dst_path, "xb") as out:
        while True:
            chunk = src.read(_CHUNK)
            if not chunk:
                break
            budget[0] += len(chunk)
            if budget[0] > max_bytes:
                raise InputError(archive, f"unpacks to more than {max_bytes:,} bytes: refused")
            out.write(chunk)


def _bundle_root(tmp: Path, archive) -> Path:
    if (tmp / "manifest.json").is_file():
        return tmp
    entries = [p for p in tmp.iterdir() if not p.name.startswith(".") and p.name != "__MACOSX"]
    dirs = [p for p in entries if p.is_dir() and (p / "manifest.json").is_file()]
    if len(dirs) == 1:
        return dirs[0]
    if len(dirs) > 1:
        raise InputError(archive, f"holds {len(dirs)} bundles: upload one bundle per archive")
    raise InputError(archive, "holds no result bundle (no manifest.json at its root or in one top-level folder)")


def _target_name(archive: Path, root: Path, tmp: Path) -> str:
    if root != tmp:
        name = root.name
    else:
        name = archive.name
        for suffix in (".tar.gz", ".tgz", ".tar", ".zip"):
            if name.lower().endswith(suffix):
                name = name[: -len(suffix)]
                break
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "bundle"
    return name


def _archive_kind(archive: Path) -> str:
    """"zip" or "tar" (by content, not by name), or raise: no such file, empty, not an archive."""
    if not archive.is_file():
        raise InputError(archive, "no such file")
    if archive.stat().st_size == 0:
        raise InputError(archive, "is empty")
    if zipfile.is_zipfile(archive):
        return "zip"
    try:
        if tarfile.is_tarfile(archive):
            return "tar"
    except _DAMAGED:
        pass
    raise InputError(archive, "is not a zip or tar(.gz) archive")


def _open_archive(archive: Path, kind: str):
    try:
        return zipfile.ZipFile(archive) if kind == "zip" else tarfile.open(archive, mode="r:*")
    except _DAMAGED as exc:
        raise InputError(archive, f"not a readable archive ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None


def _checked_members(arc, kind: str, archive) -> list:
    """(parts, is_dir, size, member) per member, after the path and member-type checks."""
    try:
        return _zip_members(arc, archive) if kind == "zip" else _tar_members(arc, archive)
    except InputError:
        raise
    except _DAMAGED as exc:
        raise InputError(archive, f"is truncated or damaged ({type(exc).__name__})") from None


def _check_sizes(members: list, archive, *, max_files: int, max_bytes: int):
    """Refuse more than ``max_files`` members or a declared uncompressed total above ``max_bytes``."""
    if len(members) > max_files:
        raise InputError(archive, f"holds {len(members):,} members, more than the {max_files:,} allowed: refused")
    declared = sum(size for _, is_dir, size, _ in members if not is_dir)
    if declared > max_bytes:
        raise InputError(archive, f"unpacks to {declared:,} bytes, more than the {max_bytes:,} allowed: refused")
    biggest = max((size for _, is_dir, size, _ in members if not is_dir), default=0)
    if biggest > MAX_MEMBER_BYTES:
        raise InputError(archive, f"holds a member of {biggest:,} bytes, more than the {MAX_MEMBER_BYTES:,} "
                                  "allowed per member: refused")
    try:
        packed = max(Path(archive).stat().st_size, 1) if declared > 1 << 20 else None
    except OSError:
        packed = None
    if packed is not None and declared / packed > MAX_COMPRESSION_RATIO:
        raise InputError(archive, f"unpacks to {declared / packed:,.0f} times its size, more than the "
                                  f"{MAX_COMPRESSION_RATIO}:1 compression ratio allowed: refused")


def _extract_file(arc, kind: str, member, target: Path, budget: list, max_bytes: int, archive, name: str):
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        src = arc.open(member) if kind == "zip" else arc.extractfile(member)
        if src is None:
            raise InputError(archive, f"member {member.name!r} cannot be read")
        with src:
            _copy_limited(src, target, budget, max_bytes, archive)
    except InputError:
        raise
    except _DAMAGED as exc:
        raise InputError(archive, f"member {name!r} cannot be extracted: truncated, damaged "
                                  f"or clashing with another member ({type(exc).__name__})") from None


def _extract_members(arc, kind: str, members: list, tmp: Path, archive, max_bytes: int):
    """Write the checked ``members`` under ``tmp``, counting the bytes really written against
    ``max_bytes``; a file member that appears twice is refused."""
    budget = [0]
    seen = set()
    for parts, is_dir, _, member in members:
        if not parts:
            continue
        target = tmp.joinpath(*parts)
        if is_dir:
            target.mkdir(parents=True, exist_ok=True)
            continue
        if parts in seen:
            raise InputError(archive, f"holds {'/'.join(parts)!r} twice: refused")
        seen.add(parts)
        _extract_file(arc, kind, member, target, budget, max_bytes, archive, "/".join(parts))


def _checked_bundle(tmp: Path, archive) -> Path:
    """The extracted bundle's folder (``tmp`` or its one top-level folder), once
    :func:`jnecore.bundle.load_bundle` accepts it."""
    from ._bundle import load_bundle

    root = _bundle_root(tmp, archive)
    try:
        load_bundle(root)
    except InputError as exc:
        try:
            where = f"{Path(exc.source).relative_to(root).as_posix()}: " if Path(exc.source) != root else ""
        except ValueError:
            where = ""
        raise InputError(archive, f"is not a valid result bundle ({where}{exc.problem})") from None
    return root


def _move_into(root: Path, archive: Path, tmp: Path, dest_root: Path) -> Path:
    """Rename the bundle ``root`` to a free name in ``dest_root`` (``-1``, ``-2``... when taken)."""
    base = _target_name(archive, root, tmp)
    final = dest_root / base
    i = 1
    while final.exists():
        final = dest_root / f"{base}-{i}"
        i += 1
    os.replace(root, final)
    return final


def extract_bundle_archive(archive_path, dest_root, *, max_bytes: int = MAX_ARCHIVE_BYTES,
                           max_files: int = MAX_ARCHIVE_FILES) -> Path:
    """Extract an uploaded bundle archive into ``dest_root`` and return the bundle's path.

    Parameters
    ----------
    archive_path : a .zip, .tar, .tar.gz or .tgz file (recognised by content, not by name)
    dest_root : folder that receives the bundle (created if missing); the bundle lands in
        ``dest_root / <name>`` where name is the archive's top-level folder or file stem, with
        ``-1``, ``-2``... added when taken
    max_bytes : refuse archives whose members add up to more (uncompressed)
    max_files : refuse archives with more members

    Raises
    ------
    InputError naming the archive, for anything unsafe, too big or not a valid bundle.
    """
    archive = Path(archive_path)
    kind = _archive_kind(archive)
    opener = _open_archive(archive, kind)
    dest_root = Path(dest_root)
    dest_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest_root, prefix=".upload-tmp-"))
    try:
        with opener as arc:
            members = _checked_members(arc, kind, archive)
            _check_sizes(members, archive, max_files=max_files, max_bytes=max_bytes)
            _extract_members(arc, kind, members, tmp, archive, max_bytes)
        final = _move_into(_checked_bundle(tmp, archive), archive, tmp, dest_root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(tmp, ignore_errors=True)
    return final
