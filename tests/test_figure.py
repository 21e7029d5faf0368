"""`jne figure`: a multi-view publication figure written with kaleido (system Chromium), no dashboard."""

import io
import shutil
from pathlib import Path

import numpy as np
import pytest

from jnecore.cli import main

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data" / "sample"
pytestmark = pytest.mark.skipif(shutil.which("chromium") is None, reason="needs the system Chromium")
pytest.importorskip("kaleido")


def test_png_has_four_different_views(tmp_path):
    from PIL import Image

    out = tmp_path / "fig.png"
    assert main(["figure", str(SAMPLE), "--metric", "jne", "--out", str(out), "--dpi", "96", "--width", "800"]) == 0
    raw = out.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n" and len(raw) > 30_000
    img = np.asarray(Image.open(io.BytesIO(raw)).convert("L"), dtype=float)
    h, w = img.shape
    quads = [img[:h // 2, :w // 2 - 40], img[:h // 2, w // 2:w - 80], img[h // 2:, :w // 2 - 40],
             img[h // 2:, w // 2:w - 80]]
    for q in quads:
        assert (q < 200).mean() > 0.1  # a surface is drawn in every panel
    for a in range(4):
        for b in range(a + 1, 4):
            s = min(quads[a].shape[0], quads[b].shape[0]), min(quads[a].shape[1], quads[b].shape[1])
            assert np.abs(quads[a][:s[0], :s[1]] - quads[b][:s[0], :s[1]]).mean() > 5  # the views differ


def test_svg_pdf_and_bad_suffix(tmp_path, capsys):
    for ext, head in (("svg", b"<svg"), ("pdf", b"%PDF")):
        out = tmp_path / f"fig.{ext}"
        assert main(["figure", str(SAMPLE), "--out", str(out), "--dpi", "96", "--width", "600"]) == 0
        raw = out.read_bytes()
        assert head in raw[:200] and len(raw) > 10_000
    assert main(["figure", str(SAMPLE), "--out", str(tmp_path / "fig.gif")]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0


def test_a_bad_option_value_names_the_flag(tmp_path, capsys):
    """The error line names the option as typed (``--metric``), not the library's parameter (``metric:``)."""
    out = tmp_path / "fig.png"
    assert main(["figure", str(SAMPLE), "--metric", "bogus", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --metric: ") and "'bogus'" in err[0]
    assert not out.exists()
