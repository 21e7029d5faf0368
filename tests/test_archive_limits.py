"""Archive limits checked before reading (issue 14, item 5): crafted archives made here."""

import zipfile

import pytest

from jnecore.bundle import extract_bundle_archive
from jnecore.validation import InputError


def test_compression_ratio_limit(tmp_path):
    arc = tmp_path / "bomb.zip"
    with zipfile.ZipFile(arc, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("b/manifest.json", "{}")
        z.writestr("b/jne_ss.npy", b"\0" * (50 * 2**20))  # 50 MB of zeros packs to ~50 KB
    with pytest.raises(InputError, match=r"compression ratio allowed: refused") as e:
        extract_bundle_archive(arc, tmp_path / "up")
    assert "\n" not in str(e.value) and str(e.value).startswith(str(arc))
    assert not any((tmp_path / "up").iterdir())  # nothing was written


def test_ordinary_ratio_is_not_refused_by_that_limit(tmp_path):
    import os

    arc = tmp_path / "ok.zip"
    with zipfile.ZipFile(arc, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("b/jne_ss.npy", os.urandom(2 * 2**20))
    with pytest.raises(InputError) as e:  # not a bundle, but it got past the size checks
        extract_bundle_archive(arc, tmp_path / "up")
    assert "compression ratio" not in str(e.value) and "allowed: refused" not in str(e.value)
