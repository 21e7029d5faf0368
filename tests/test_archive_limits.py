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


def _tiny_bundle(path):
    import numpy as np
    import pandas as pd

    from jnecore.bundle import write_bundle

    v = pd.DataFrame({"vertex": np.arange(4), "hemi": "none", "roi": "V1", "level": "primary", "r2_linear": 0.1,
                      "r2_nonlinear": 0.2, "p_fdr": 0.01, "significant": True, "jne": 0.3})
    s = pd.DataFrame({"stimulus": ["a", "b", "c"], "split": ["test", "test", "train"], "category": "all"})
    return write_bundle(path, vertices=v, jne_ss=np.zeros((2, 4), np.float32), stimuli=s, manifest={"space": "none"})


def _zip_folder(folder, arc):
    with zipfile.ZipFile(arc, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                z.write(f, f"b/{f.relative_to(folder)}")
    return arc


def test_parquet_that_decodes_to_gigabytes_is_refused_before_decoding(tmp_path):
    """One 1 MB string repeated 2000 times, dictionary-encoded: ~50 KB on disk, a footer stating
    ~1 MB, 2 GB once decoded. The refusal names the limit; memory stays small."""
    import resource

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from jnecore.bundle import MAX_TABLE_BYTES

    b = _tiny_bundle(tmp_path / "b")
    n = 2000
    roi = pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array(["x" * 2 ** 20]))
    t = pq.read_table(b / "vertices.parquet")
    table = pa.table({"vertex": np.arange(n), "hemi": ["none"] * n, "roi": roi, "level": ["primary"] * n,
                      **{c: np.full(n, 0.1) for c in ("r2_linear", "r2_nonlinear", "p_fdr", "jne")},
                      "significant": np.ones(n, bool)})
    assert set(t.column_names) <= set(table.column_names)
    pq.write_table(table, b / "vertices.parquet")
    footer = pq.ParquetFile(b / "vertices.parquet").metadata
    assert sum(footer.row_group(i).total_byte_size for i in range(footer.num_row_groups)) < MAX_TABLE_BYTES
    np.save(b / "jne_ss.npy", np.zeros((2, n), np.float32))
    arc = _zip_folder(b, tmp_path / "bomb.zip")
    assert arc.stat().st_size < 200_000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(InputError, match=r"decodes to more than the 1,073,741,824 bytes a table may have") as e:
        extract_bundle_archive(arc, tmp_path / "up")
    assert "\n" not in str(e.value) and str(e.value).startswith(str(arc))
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 600 * 1024  # KB: far below 2 GB
    assert not [p for p in (tmp_path / "up").iterdir() if not p.name.startswith(".")]


def test_parquet_row_count_from_the_footer(tmp_path, monkeypatch):
    import jnecore.io._limits as limits

    b = _tiny_bundle(tmp_path / "b")
    arc = _zip_folder(b, tmp_path / "b.zip")
    monkeypatch.setattr(limits, "MAX_TABLE_ROWS", 3)  # the tiny bundle's vertices have 4 rows
    with pytest.raises(InputError, match=r"is not a valid result bundle \(vertices\.parquet: states 4 rows, more than the 3 allowed: not read\)"):
        extract_bundle_archive(arc, tmp_path / "up")
    monkeypatch.setattr(limits, "MAX_TABLE_ROWS", 4)
    assert (extract_bundle_archive(arc, tmp_path / "up") / "manifest.json").is_file()


def test_bounded_parquet_reader_matches_pandas(tmp_path):
    import numpy as np
    import pandas as pd

    from jnecore.io._limits import read_parquet

    t = pd.DataFrame({"i": np.arange(5), "f": np.linspace(0, 1, 5), "s": list("abcab"), "b": [True, False] * 2 + [True],
                      "c": pd.Categorical(list("xyxyx")), "n": [None, "q", None, "r", "q"]})
    t.to_parquet(tmp_path / "t.parquet", index=False)
    pd.testing.assert_frame_equal(read_parquet(tmp_path / "t.parquet"), pd.read_parquet(tmp_path / "t.parquet"))
    pd.testing.assert_frame_equal(read_parquet(tmp_path / "t.parquet", columns=["s", "f"]),
                                  pd.read_parquet(tmp_path / "t.parquet", columns=["s", "f"]))
