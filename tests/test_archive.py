"""The checks of :func:`jnecore.bundle.extract_bundle_archive`, one at a time (the end-to-end
refusals and a real extraction are in test_bad_inputs.py)."""

import io
import stat
import tarfile
import warnings
import zipfile

import pytest

from jnecore.bundle import _archive as A
from jnecore.validation import InputError


@pytest.mark.parametrize("name, parts", [
    ("a/b.txt", ("a", "b.txt")), ("./a//b", ("a", "b")), ("a\\b", ("a", "b")), ("d/", ("d",)), (".", ()),
])
def test_safe_parts_keeps_plain_relative_paths(name, parts):
    assert A._safe_parts(name, "up.zip") == parts


@pytest.mark.parametrize("name, needle", [
    ("/etc/passwd", "absolute path"), ("\\\\server\\x", "absolute path"), ("C:/x", "absolute path"),
    ("c:x", "absolute path"), ("a/../../x", "points outside"), ("..", "points outside"), ("a/\x00b", "NUL byte"),
])
def test_safe_parts_refuses_escaping_paths(name, needle):
    with pytest.raises(InputError, match=needle) as info:
        A._safe_parts(name, "up.zip")
    assert info.value.source == "up.zip"


def test_check_sizes_limits_are_inclusive_and_ignore_folders():
    members = [(("d",), True, 10 ** 9, None), (("d", "a"), False, 600, None), (("d", "b"), False, 400, None)]
    A._check_sizes(members, "x.zip", max_files=3, max_bytes=1000)  # exactly at both limits: fine
    with pytest.raises(InputError, match="holds 3 members, more than the 2 allowed"):
        A._check_sizes(members, "x.zip", max_files=2, max_bytes=1000)
    with pytest.raises(InputError, match="unpacks to 1,000 bytes, more than the 999 allowed"):
        A._check_sizes(members, "x.zip", max_files=3, max_bytes=999)


def test_archive_kind_by_content(tmp_path):
    z = tmp_path / "bundle.tar.gz"  # a zip, whatever the name says
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("a.txt", "x")
    assert A._archive_kind(z) == "zip"
    t = tmp_path / "b.zip"
    with tarfile.open(t, "w:gz") as tf:
        info = tarfile.TarInfo("a.txt")
        info.size = 1
        tf.addfile(info, io.BytesIO(b"x"))
    assert A._archive_kind(t) == "tar"
    (tmp_path / "empty.zip").write_bytes(b"")
    (tmp_path / "text.zip").write_text("hello")
    for name, needle in (("missing.zip", "no such file"), ("empty.zip", "is empty"),
                         ("text.zip", "is not a zip or tar")):
        with pytest.raises(InputError, match=needle):
            A._archive_kind(tmp_path / name)


def _zip_info_members(path, infos):
    with zipfile.ZipFile(path, "w") as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns about the duplicate name
        for info, data in infos:
            zf.writestr(info, data)
    return zipfile.ZipFile(path)


def test_zip_member_types(tmp_path):
    fifo = zipfile.ZipInfo("b/pipe")
    fifo.external_attr = (stat.S_IFIFO | 0o644) << 16
    plain = zipfile.ZipInfo("b/ok.txt")
    plain.external_attr = (stat.S_IFREG | 0o644) << 16
    with _zip_info_members(tmp_path / "ok.zip", [(plain, "x"), (zipfile.ZipInfo("b/"), "")]) as zf:
        got = A._zip_members(zf, "ok.zip")
    assert [(parts, is_dir, size) for parts, is_dir, size, _ in got] == [(("b", "ok.txt"), False, 1), (("b",), True, 0)]
    with _zip_info_members(tmp_path / "fifo.zip", [(fifo, "x")]) as zf, \
            pytest.raises(InputError, match="is not a regular file or folder"):
        A._zip_members(zf, "fifo.zip")
    # zipfile clears the flags when writing: set the encryption bit in the central directory
    _zip_info_members(tmp_path / "enc.zip", [(zipfile.ZipInfo("b/secret"), "x")]).close()
    raw = bytearray((tmp_path / "enc.zip").read_bytes())
    i = raw.find(b"PK\x01\x02")
    raw[i + 8] |= 0x1
    (tmp_path / "enc.zip").write_bytes(bytes(raw))
    with zipfile.ZipFile(tmp_path / "enc.zip") as zf, pytest.raises(InputError, match="is encrypted"):
        A._zip_members(zf, "enc.zip")


def test_duplicate_member_refused_and_nothing_left(tmp_path):
    path = tmp_path / "dup.zip"
    _zip_info_members(path, [(zipfile.ZipInfo("b/manifest.json"), "{}")] * 2).close()
    with pytest.raises(InputError, match="holds 'b/manifest.json' twice"):
        A.extract_bundle_archive(path, tmp_path / "dest")
    assert list((tmp_path / "dest").iterdir()) == []


def test_extract_members_counts_real_bytes(tmp_path):
    path = tmp_path / "a.zip"
    infos = [(zipfile.ZipInfo("d/a.bin"), b"x" * 300), (zipfile.ZipInfo("d/b.bin"), b"y" * 300)]
    with _zip_info_members(path, infos) as zf:
        members = A._zip_members(zf, path)
        A._extract_members(zf, "zip", members, tmp_path / "out1", path, max_bytes=600)
        assert (tmp_path / "out1" / "d" / "b.bin").read_bytes() == b"y" * 300
        (tmp_path / "out2").mkdir()
        with pytest.raises(InputError, match="unpacks to more than 599 bytes"):
            A._extract_members(zf, "zip", members, tmp_path / "out2", path, max_bytes=599)


def test_move_into_picks_a_free_name(tmp_path):
    dest = tmp_path / "dest"
    (dest / "my_run").mkdir(parents=True)
    tmp = dest / ".upload-tmp-1"
    tmp.mkdir()
    assert A._move_into(tmp, tmp_path / "my run.tar.gz", tmp, dest) == dest / "my_run-1"
    inner = dest / ".upload-tmp-2" / "..hidden"
    inner.mkdir(parents=True)
    assert A._move_into(inner, tmp_path / "x.zip", inner.parent, dest) == dest / "hidden"
