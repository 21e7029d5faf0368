"""Fuzz test of the readers (issue 14, item 6): a seeded loop of mutated files per format.

For each format (npy, npz, h5, parquet, csv, gii, mgh, nii, annot, bundle archive) a small valid
file is written, then ``FUZZ_N`` (default 1000) mutated copies are read through the project's own
reader: random byte flips, "interesting" values (0x00, 0xFF, 0x7F, 0x80 runs, big integers),
deletions, insertions, duplicated spans and truncation. Each read must give a value or the
one-line :class:`~jnecore.validation.InputError`; any other exception type is a failure.

Each format runs in its own Python process, with its address space capped (``RLIMIT_AS``) so that
a header whose size claim got past the checks fails as MemoryError rather than eating the
machine, and so a crash in a C decoder is reported instead of killing pytest. The test prints
each format's counts and seconds; the lead sees the total on the `-s` line or with --durations.

Run one format by hand: ``python tests/test_fuzz_readers.py npy 1000 0``.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import pytest

FORMATS = ["npy", "npz", "h5", "parquet", "csv", "gii", "mgh", "nii", "annot", "archive", "bundle"]
N = int(os.environ.get("FUZZ_N", "1000"))
ROOT = Path(__file__).resolve().parents[1]
MEMORY_CAP = 3 * 1024 ** 3  # address space of one fuzz process: the readers plus a few 100 MB
#: the seed bundle's manifest, with a fixed creation time and version, so every run mutates the same bytes
FIXED = {"space": "none", "config": {}, "created": "2026-01-01T00:00:00+00:00", "jnecore_version": "0"}


# ------------------------------------------------------------------------------ seeds (small valid files)


def _seed_files(fmt: str, d: Path) -> dict:
    """{"main": path of the file to mutate, ...extra paths the reader needs}."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 5)).astype(np.float32)
    if fmt == "npy":
        np.save(d / "x.npy", X)
        return {"main": d / "x.npy"}
    if fmt == "npz":
        np.savez_compressed(d / "x.npz", x=X)
        return {"main": d / "x.npz"}
    if fmt == "h5":
        import h5py

        with h5py.File(d / "x.h5", "w") as f:
            f.create_dataset("x", data=X, chunks=(4, 5), compression="gzip")
        return {"main": d / "x.h5"}
    if fmt == "parquet":
        import pandas as pd

        pd.DataFrame(X, columns=[f"f{i}" for i in range(5)]).to_parquet(d / "x.parquet", index=False)
        return {"main": d / "x.parquet"}
    if fmt == "csv":
        np.savetxt(d / "x.csv", X, delimiter=",", header=",".join(f"f{i}" for i in range(5)), comments="")
        return {"main": d / "x.csv"}
    import nibabel as nib

    if fmt == "gii":
        img = nib.gifti.GiftiImage(darrays=[nib.gifti.GiftiDataArray(r, intent="NIFTI_INTENT_TIME_SERIES")
                                            for r in X[:4, :]])
        nib.save(img, str(d / "lh.x.func.gii"))
        return {"main": d / "lh.x.func.gii"}
    if fmt == "mgh":
        nib.save(nib.MGHImage(X.T[:, None, None, :].copy(), np.eye(4)), str(d / "lh.x.mgh"))
        return {"main": d / "lh.x.mgh"}
    if fmt == "nii":
        nib.save(nib.Nifti1Image(rng.normal(size=(3, 4, 2, 6)).astype(np.float32), np.eye(4)), str(d / "x.nii"))
        nib.save(nib.Nifti1Image(np.ones((3, 4, 2), np.uint8), np.eye(4)), str(d / "mask.nii"))
        return {"main": d / "x.nii", "mask": d / "mask.nii"}
    if fmt == "annot":
        labels = np.repeat(np.arange(3), 4).astype(np.int32)
        ctab = np.array([[10, 20, 30, 0], [40, 50, 60, 0], [70, 80, 90, 0]], dtype=np.int32)
        nib.freesurfer.write_annot(str(d / "lh.x.annot"), labels, ctab, [b"V1", b"V2", b"FFC"])
        return {"main": d / "lh.x.annot"}
    if fmt == "bundle":  # a bundle folder: each mutation damages one of its files (in turn)
        b = _seed_files("archive", d)["main"].parent / "b"
        tables = summary_tables_for(b)
        return {"main": b / "manifest.json", "bundle": b, "rotate": [
            b / "manifest.json", b / "vertices.parquet", b / "stimuli.parquet", b / "jne_ss.npy", *tables]}
    if fmt == "archive":
        import zipfile

        import pandas as pd

        from jnecore.bundle import write_bundle

        v = pd.DataFrame({"vertex": np.arange(4), "hemi": "none", "roi": ["V1", "V1", "V2", "FFC"],
                          "level": ["primary", "primary", "intermediate", "higher"], "r2_linear": 0.1,
                          "r2_nonlinear": 0.2, "p_fdr": 0.01, "significant": True, "jne": 0.3})
        s = pd.DataFrame({"stimulus": ["a", "b", "c"], "split": ["test", "test", "train"], "category": "all"})
        b = write_bundle(d / "b", vertices=v, jne_ss=np.ones((2, 4), np.float32), stimuli=s, manifest=FIXED)
        with zipfile.ZipFile(d / "b.zip", "w", zipfile.ZIP_DEFLATED) as z:  # fixed times: the same bytes each run
            for f in sorted(b.rglob("*")):
                if f.is_file():
                    z.writestr(zipfile.ZipInfo(f"b/{f.relative_to(b)}", (2026, 1, 1, 0, 0, 0)), f.read_bytes(),
                               compress_type=zipfile.ZIP_DEFLATED)
        return {"main": d / "b.zip"}
    raise ValueError(fmt)


def summary_tables_for(b: Path) -> list:
    """Write the summary tables of the seed bundle ``b`` (so its tables are fuzzed too)."""
    from jnecore.bundle import load_bundle, summary_tables, write_bundle

    bundle = load_bundle(b)
    tables = summary_tables(bundle.vertices, np.asarray(bundle.jne_ss), bundle.test_stimuli)
    write_bundle(b, vertices=bundle.vertices, jne_ss=np.asarray(bundle.jne_ss), stimuli=bundle.stimuli,
                 manifest=FIXED, tables=tables, overwrite=True)
    return sorted((b / "tables").glob("*.parquet"))


def _open_all(path):
    """load_bundle, then every part a page reads (JNE-SS rows, each listed table)."""
    from jnecore.bundle import check_bundle, load_bundle

    check_bundle(path)
    b = load_bundle(path)
    np.asarray(b.jne_ss[: min(2, len(b.jne_ss))], dtype=float)
    for name in b.table_names:
        try:
            b.table(name)
        except KeyError:  # listed but not there: the documented answer
            pass
    return b


def _reader(fmt: str, files: dict):
    """The project's reader of that format, as a user's file reaches it."""
    from jnecore.bundle import extract_bundle_archive
    from jnecore.io import read_array, read_responses
    from jnecore.io._neuro import read_surface_labels

    if fmt in ("npy", "npz", "h5", "parquet", "csv"):
        return lambda p: read_array(str(p))
    if fmt in ("gii", "mgh"):
        return lambda p: read_responses([str(p)])
    if fmt == "nii":
        return lambda p: read_responses([str(p)], mask=str(files["mask"]))
    if fmt == "annot":
        return lambda p: read_surface_labels(p, "annot")
    if fmt == "bundle":
        return lambda p: _open_all(files["bundle"])
    if fmt == "archive":
        import shutil

        def extract(p):
            out = p.parent / "up"
            try:
                return extract_bundle_archive(p, out)
            finally:
                shutil.rmtree(out, ignore_errors=True)
        return extract
    raise ValueError(fmt)


# ------------------------------------------------------------------------------ mutations

_INTERESTING = [b"\x00", b"\xff", b"\x7f", b"\x80", b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff",
                b"\x80\x00\x00\x00", b"\xff\xff\xff\x7f", b"\x00\x00\x80\x7f", b"9999999999", b"-1", b"(", b"[", b"<",
                b"\"", b"nan", b"1e308"]


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One mutated copy of ``data``: 1-8 random edits."""
    b = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if not b:
            b = bytearray(rng.randbytes(rng.randint(1, 16)))
        op = rng.random()
        i = rng.randrange(len(b))
        if op < 0.35:  # flip bytes
            for _ in range(rng.randint(1, 4)):
                b[rng.randrange(len(b))] = rng.randrange(256)
        elif op < 0.6:  # an interesting value over what is there
            v = rng.choice(_INTERESTING)
            b[i:i + len(v)] = v
        elif op < 0.7:  # delete a span
            del b[i:i + rng.randint(1, 64)]
        elif op < 0.8:  # insert random bytes
            b[i:i] = rng.randbytes(rng.randint(1, 32))
        elif op < 0.9:  # duplicate a span
            j = rng.randrange(len(b))
            b[i:i] = b[j:j + rng.randint(1, 128)]
        else:  # truncate
            del b[rng.randrange(len(b)):]
    return bytes(b)


def fuzz(fmt: str, n: int, seed: int, work: Path) -> dict:
    """Read ``n`` mutations of the format's seed file; counts and the escaped exception types."""
    from jnecore.validation import InputError

    work.mkdir(parents=True, exist_ok=True)
    files = _seed_files(fmt, work)
    read = _reader(fmt, files)
    main = files["main"]
    read(main)  # the seed itself is read
    rotate = files.get("rotate", [main])
    originals = {p: p.read_bytes() for p in rotate}
    rng = random.Random(seed)
    counts = {"value": 0, "input_error": 0}
    escaped: dict = {}
    t0 = time.perf_counter()
    for i in range(n):
        if i:
            main.write_bytes(originals[main])
        main = rotate[i % len(rotate)]
        main.write_bytes(mutate(originals[main], rng))
        try:
            read(main)
            counts["value"] += 1
        except InputError as exc:
            counts["input_error"] += 1
            if "\n" in str(exc) or not any(str(exc).startswith(str(f)) for f in [*rotate, *files.values()]
                                           if isinstance(f, Path)):
                escaped.setdefault("InputError not one line naming the file", [i, str(exc)[:300]])
        except Exception as exc:  # what must not happen: recorded with the mutation's index and where
            name = type(exc).__name__
            if name not in escaped:
                escaped[name] = [i, str(exc)[:200], traceback.format_exc()[-1500:]]
            counts[name] = counts.get(name, 0) + 1
    main.write_bytes(originals[main])
    return {"format": fmt, "n": n, "seed": seed, "counts": counts, "escaped": escaped,
            "seconds": round(time.perf_counter() - t0, 2)}


# ------------------------------------------------------------------------------ the test


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_mutated_files_give_a_value_or_one_line(fmt, tmp_path, capsys):
    def cap():
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT)] + sys.path[:0]), OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, __file__, fmt, str(N), "0", str(tmp_path)], capture_output=True, text=True,
                       env=env, timeout=600, preexec_fn=cap)
    assert r.returncode == 0, f"fuzz process for {fmt} died (rc {r.returncode}): {r.stderr[-3000:]}"
    result = json.loads(r.stdout.strip().splitlines()[-1])
    with capsys.disabled():
        print(f"\nfuzz {fmt}: {result['n']} mutations in {result['seconds']} s: {result['counts']}")
    assert result["counts"]["value"] + result["counts"]["input_error"] == N, result["escaped"]
    assert not result["escaped"], json.dumps(result["escaped"], indent=1)


def test_mutation_is_seeded_and_changes_the_file():
    data = bytes(range(256)) * 4
    a = [mutate(data, random.Random(7)) for _ in range(1)]
    b = [mutate(data, random.Random(7)) for _ in range(1)]
    assert a == b and a[0] != data
    rng = random.Random(1)
    assert sum(mutate(data, rng) != data for _ in range(200)) >= 190


if __name__ == "__main__":
    fmt, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    work = Path(sys.argv[4]) if len(sys.argv) > 4 else Path(f"/tmp/jne-fuzz-{fmt}")
    print(json.dumps(fuzz(fmt, n, seed, work / fmt)))
