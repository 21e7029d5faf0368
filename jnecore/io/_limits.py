"""Size claims in file headers checked against the file before any data is allocated.

A header (.npy, an .npz member, an HDF5 dataset, NIfTI, MGH) states a shape and a type; a damaged
or hostile file can claim terabytes in a few bytes. Each check here compares the claim with what
the file can hold and raises :class:`~jnecore.validation.InputError` naming the file, before a
reader allocates the claimed array:

- uncompressed data must fit in the file (header claim <= bytes on disk after the header);
- parquet tables: the row count and decoded size their footer states, at most
  :data:`MAX_TABLE_ROWS` / :data:`MAX_TABLE_BYTES`, before a column is decoded;
- compressed data (an .npz member's deflate, HDF5 filters, .nii.gz / .mgz) may not claim more
  than :data:`MAX_INFLATION` times its compressed size: deflate's own ceiling is 1032:1, so no
  honest file is refused.
"""

from __future__ import annotations

import tokenize
from pathlib import Path

import numpy as np

from ..validation import InputError

__all__ = ["MAX_INFLATION", "MAX_TABLE_ROWS", "MAX_TABLE_BYTES", "npy_header", "parquet_footer", "read_parquet",
           "check_npz_member",
           "check_h5_dataset", "check_image_claim"]

#: decoded / stored bytes allowed for compressed data: deflate's maximum is 1032:1 (zlib's docs),
#: so a larger claim cannot be honest
MAX_INFLATION = 1100

#: rows of one parquet table, from its footer: a whole-brain bundle has 327,684 vertices, a
#: func1pt8mm volume ~700k voxels, NSD 73k stimuli; 10 million is 14x the largest
MAX_TABLE_ROWS = 10_000_000
#: decoded bytes of one parquet table as its footer states them: the sample's vertices decode to
#: 0.7 MB for 10k rows, so a whole-brain table is ~25-60 MB; 1 GiB is 16x that and refuses a
#: crafted file that claims gigabytes
MAX_TABLE_BYTES = 1024 * 1024 * 1024


def _claim(shape, dtype) -> int:
    return int(np.prod([int(s) for s in shape], dtype=object)) * int(np.dtype(dtype).itemsize)


def _read_npy_header(fh, path):
    try:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
    except (ValueError, EOFError, SyntaxError, TypeError, OverflowError, MemoryError, tokenize.TokenError) as exc:
        msg = str(exc).splitlines()[0][:120] if str(exc).strip() else "bad header"
        raise InputError(path, f"not a readable .npy file ({msg})") from None
    if dtype.hasobject:
        raise InputError(path, "holds pickled Python objects, which are refused (they can run code): "
                               "save a plain numeric array with np.save")
    if any(int(s) < 0 for s in shape):
        raise InputError(path, f"not a readable .npy file (negative shape {tuple(shape)})")
    return tuple(int(s) for s in shape), dtype, bool(fortran)


def npy_header(path) -> tuple:
    """The header of a .npy file, checked against the file's size before any data is read.

    Returns
    -------
    shape : tuple of int
    dtype : numpy dtype
    fortran_order : bool

    Raises
    ------
    InputError naming the file: empty, not a .npy file, an object (pickled) dtype, or a header
    that claims more data than the file holds.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size == 0:
            raise InputError(path, "is empty")
        with open(path, "rb") as fh:
            shape, dtype, fortran = _read_npy_header(fh, path)
            offset = fh.tell()
    except OSError as exc:
        raise InputError(path, f"cannot be read ({exc.strerror or type(exc).__name__})") from None
    need = _claim(shape, dtype)
    if offset + need > size:
        raise InputError(path, f"is truncated or damaged: its header claims {need:,} bytes of data "
                               f"(shape {shape}, {dtype}), the file holds {max(size - offset, 0):,}")
    return shape, dtype, fortran


def check_npz_member(zf, name: str, path) -> tuple:
    """(shape, dtype) of the member ``name`` (``KEY.npy``) of an open .npz ``zipfile.ZipFile``,
    after checking its header's claim against the member's stated and compressed sizes."""
    info = zf.getinfo(name)
    with zf.open(info) as fh:
        shape, dtype, _ = _read_npy_header(fh, path)
        offset = fh.tell()
    need = _claim(shape, dtype)
    if offset + need > info.file_size:
        raise InputError(path, f"array {name[:-4]!r} is truncated or damaged: its header claims {need:,} bytes, "
                               f"the member holds {max(info.file_size - offset, 0):,}")
    if info.compress_type != 0 and need > MAX_INFLATION * max(info.compress_size, 1) + (1 << 16):
        raise InputError(path, f"array {name[:-4]!r} claims {need:,} bytes from {info.compress_size:,} compressed, "
                               f"more than deflate's {MAX_INFLATION}:1: damaged")
    return shape, dtype


def check_h5_dataset(dset, path):
    """Refuse an HDF5 dataset whose shape claims more bytes than the file can hold: unfiltered
    data must fit in the file (a dataset never written, whose reads would allocate fill values,
    included); filtered (compressed) data may claim at most :data:`MAX_INFLATION` times the
    file's size."""
    try:
        need = _claim(dset.shape or (), dset.dtype)
        size = Path(path).stat().st_size
        filtered = bool(dset.compression) or bool(dset.id.get_create_plist().get_nfilters())
    except (OSError, TypeError, ValueError, RuntimeError, KeyError) as exc:
        raise InputError(path, f"dataset {dset.name!r} cannot be read ({type(exc).__name__})") from None
    limit = (MAX_INFLATION if filtered else 1) * size + (1 << 16)
    if need > limit:
        how = f"more than {MAX_INFLATION}:1 compression of the file" if filtered else "more than the file holds"
        raise InputError(path, f"dataset {dset.name!r} is truncated or damaged: its header claims {need:,} bytes "
                               f"(shape {tuple(dset.shape)}, {dset.dtype}), {how} ({size:,} bytes)")


def check_image_claim(img, path):
    """Refuse a NIfTI / MGH image whose header claims more data than the file holds (gzipped:
    more than :data:`MAX_INFLATION` times the file)."""
    path = Path(path)
    try:
        shape = img.shape
        dtype = img.get_data_dtype()
        size = path.stat().st_size
    except Exception as exc:  # nibabel raises several types for an odd header
        raise InputError(path, f"has an unreadable header ({type(exc).__name__})") from None
    if any(int(s) < 0 for s in shape):
        raise InputError(path, f"has a header with a negative dimension {tuple(shape)}")
    need = _claim(shape, dtype)
    name = path.name.lower()
    if name.endswith((".gz", ".mgz")):
        if need > MAX_INFLATION * size + (1 << 16):
            raise InputError(path, f"claims {need:,} bytes of data (shape {tuple(shape)}, {dtype}) in a "
                                   f"{size:,}-byte compressed file, more than {MAX_INFLATION}:1: damaged")
        return
    try:
        offset = int(img.header.get_data_offset()) if hasattr(img.header, "get_data_offset") else 284
    except Exception:
        offset = 0
    if name.endswith(".mgh"):
        offset = 284
    if offset + need > size:
        shown = tuple(int(s) for s in shape)
        raise InputError(path, f"is truncated or damaged: its header claims {need:,} bytes of data "
                               f"(shape {shown}, {dtype}), the file holds {max(size - offset, 0):,}")


def parquet_footer(path) -> tuple:
    """Rows, stated decoded bytes and arrow schema of a parquet file, from its footer only.

    Returns
    -------
    n_rows : int
    n_bytes : int, the uncompressed size the row groups state
    schema : pyarrow.Schema

    Raises
    ------
    InputError naming the file: empty, not parquet, truncated, or over :data:`MAX_TABLE_ROWS` /
    :data:`MAX_TABLE_BYTES` (checked before any column is decoded).
    """
    import pyarrow.parquet as pq

    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise InputError(path, "is empty")
        meta = pq.ParquetFile(path).metadata
        n_rows = int(meta.num_rows)
        n_bytes = sum(int(meta.row_group(i).total_byte_size) for i in range(meta.num_row_groups))
        schema = meta.schema.to_arrow_schema()
    except InputError:
        raise
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ... for a damaged footer
        raise InputError(path, f"not a readable parquet file, truncated or damaged ({type(exc).__name__})") from None
    if n_rows > MAX_TABLE_ROWS or n_rows < 0:
        raise InputError(path, f"states {n_rows:,} rows, more than the {MAX_TABLE_ROWS:,} allowed: not read")
    if n_bytes > MAX_TABLE_BYTES:
        raise InputError(path, f"states {n_bytes:,} bytes decoded, more than the {MAX_TABLE_BYTES:,} allowed: not read")
    return n_rows, n_bytes, schema


def read_parquet(path, columns=None):
    """A parquet table as a DataFrame, its decoded size bounded before it is decoded.

    The footer's row count and stated size are checked first (:func:`parquet_footer`); text
    columns are then read dictionary-encoded (compact), and the bytes they decode to (each row's
    string length) are added up: a few kilobytes of one long string repeated can claim gigabytes
    that the footer does not show. Over :data:`MAX_TABLE_BYTES`, nothing is decoded.

    Parameters
    ----------
    path : a .parquet file
    columns : list of str, optional (all when None)

    Returns
    -------
    DataFrame, as ``pandas.read_parquet`` gives it

    Raises
    ------
    InputError naming the file and the limit.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    path = Path(path)
    _, _, schema = parquet_footer(path)
    try:
        text = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
                or pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type)]
        table = pq.ParquetFile(path, read_dictionary=text).read(columns=columns)
        decoded = 0
        for name, col in zip(table.column_names, table.columns):
            for chunk in col.chunks:
                if pa.types.is_dictionary(chunk.type) and len(chunk):
                    lengths = pc.fill_null(pc.binary_length(chunk.dictionary), 0).to_numpy(zero_copy_only=False)
                    idx = pc.fill_null(chunk.indices, 0).to_numpy(zero_copy_only=False)
                    decoded += int(lengths[idx].sum(dtype=np.int64)) if len(lengths) else 0
                else:
                    decoded += int(chunk.nbytes)
            if decoded > MAX_TABLE_BYTES:
                raise InputError(path, f"decodes to more than the {MAX_TABLE_BYTES:,} bytes a table may have "
                                       f"(at column {name!r}): not read")
        want = pa.schema([schema.field(n) for n in table.column_names], metadata=schema.metadata)
        return table.cast(want).to_pandas()
    except InputError:
        raise
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ... for damaged pages
        raise InputError(path, f"not a readable parquet file, truncated or damaged ({type(exc).__name__})") from None

