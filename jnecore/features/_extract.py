"""Per-layer features of a set of images, written batch by batch to one HDF5 file.

File layout (``format = "jne-features"``): one float32 dataset (N, D_l) per layer at the root
(``embedding``, ``block01`` ...), ``stimulus_ids`` (N,) UTF-8 strings, and attributes ``model``,
``family``, ``revision``, ``preprocessing`` (JSON), ``layers`` (JSON list), ``dims`` (JSON list),
``pooling``, ``dtype``, ``source`` (JSON) and ``n_done``. The file is built as
``.<name>.partial`` beside the output and renamed into place when complete; ``n_done`` counts the
rows fully written, so an interrupted extraction resumes from there (``resume=True``).
Memory does not grow with N: one batch of images and tokens is held at a time.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..validation import InputError

__all__ = ["extract_features", "partial_path", "read_layer_names", "FORMAT", "POOLINGS"]

FORMAT = "jne-features"
POOLINGS = ("cls", "mean")


def partial_path(out) -> Path:
    out = Path(out)
    return out.parent / f".{out.name}.partial"


def read_layer_names(fh):
    """Layer names of an open jne-features HDF5 file, or None when it is not one."""
    if fh.attrs.get("format") != FORMAT:
        return None
    return list(json.loads(fh.attrs["layers"]))


def select_layers(spec, names):
    """``"all"`` or a comma list of names / indices (0 = embedding) -> list of layer names."""
    if spec in (None, "all"):
        return list(names)
    chosen = []
    for item in str(spec).split(","):
        item = item.strip()
        if item.lstrip("-").isdigit():
            i = int(item)
            if not 0 <= i < len(names):
                raise InputError("--layers", f"layer index {i} out of range: the model has layers 0..{len(names) - 1}")
            item = names[i]
        elif item not in names:
            raise InputError("--layers", f"unknown layer {item!r}: the model's layers are {', '.join(names)}")
        if item not in chosen:
            chosen.append(item)
    if not chosen:
        raise InputError("--layers", "names no layer")
    return chosen


def pool_tokens(tokens, pooling: str, n_prefix: int):
    """(B, T, C) tokens -> (B, C): the CLS token (token 0) or the mean of the patch tokens."""
    if pooling == "cls":
        return tokens[:, 0]
    return tokens[:, n_prefix:].mean(dim=1)


def _header(model, layers, pooling, source) -> dict:
    idx = [model.layer_names.index(n) for n in layers]
    return {"format": FORMAT, "format_version": 1, "model": model.name, "family": model.family,
            "revision": model.revision or "", "preprocessing": json.dumps(model.preprocessing, default=str,
                                                                          sort_keys=True),
            "layers": json.dumps(layers), "dims": json.dumps([model.dims[i] for i in idx]), "pooling": pooling,
            "dtype": str(model.dtype).replace("torch.", ""), "source": json.dumps(source.describe())}


def _same_run(fh, header, ids) -> str | None:
    """Why the partial file ``fh`` cannot be resumed with ``header`` / ``ids`` (None if it can)."""
    for k, v in header.items():
        if k == "source":  # the same images may have moved: compare what they are, not where
            old = {k: v for k, v in json.loads(fh.attrs.get(k, "{}")).items() if k != "path"}
            v = {k: v for k, v in json.loads(v).items() if k != "path"}
            if old != v:
                return "its images differ"
        elif str(fh.attrs.get(k)) != str(v):
            return f"its {k} differs"
    stored = fh["stimulus_ids"].asstr()[()]
    if len(stored) != len(ids) or list(stored) != list(ids):
        return "its images differ"
    return None


def extract_features(images, model, out, *, layers="all", batch_size=32, pooling="cls", resume=False,
                     overwrite=False, progress=True, chunk_rows=None):
    """Write the pooled tokens of ``layers`` of ``model`` for every image of ``images`` to ``out``.

    Parameters
    ----------
    images : ImageSource (N images)
    model : FeatureModel
    out : path of the .h5 file to write (refused if it exists, unless ``overwrite``)
    layers : "all" or a comma list of layer names / indices
    batch_size : images per forward pass
    pooling : "cls" (token 0) or "mean" (mean of the patch tokens)
    resume : continue the interrupted extraction kept in ``.<out>.partial``
    chunk_rows : HDF5 chunk rows (default: ``batch_size``); does not change any value

    Returns ``out`` (Path). The file holds one (N, D_l) float32 dataset per layer.
    """
    import h5py

    from ..cancel import check_stop
    from ..progress import progress_bar

    out = Path(out)
    if pooling not in POOLINGS:
        raise InputError("--pooling", f"unknown value {pooling!r}: use cls or mean")
    if pooling == "cls" and not model.has_cls:
        raise InputError("--pooling", f"{model.name} has no class token: use --pooling mean")
    if batch_size < 1:
        raise InputError("--batch-size", "must be >= 1")
    names = select_layers(layers, model.layer_names)
    idx = [model.layer_names.index(n) for n in names]
    header = _header(model, names, pooling, images)
    n = len(images)
    part = partial_path(out)
    ids = [str(i) for i in images.ids]

    start = 0
    if part.exists() and resume and not overwrite:
        try:
            fh = h5py.File(part, "r+")
        except OSError:
            raise InputError(part, "the interrupted extraction's file is damaged: rerun with --overwrite") from None
        why = _same_run(fh, header, ids)
        if why:
            fh.close()
            raise InputError("--resume", f"{part} was made by another extraction ({why}): rerun with --overwrite")
        start = int(fh.attrs["n_done"])
    else:
        if part.exists() and not overwrite:
            raise InputError(out, f"an interrupted extraction left {part.name}: pass --resume to continue it "
                                  "or --overwrite to start again")
        fh = h5py.File(part, "w")
        for k, v in header.items():
            fh.attrs[k] = v
        fh.attrs["n_done"] = 0
        fh.create_dataset("stimulus_ids", data=np.asarray(ids, dtype=object), dtype=h5py.string_dtype())
        rows = max(1, min(n, chunk_rows or batch_size))
        for name, i in zip(names, idx):
            fh.create_dataset(name, shape=(n, model.dims[i]), dtype="float32", chunks=(rows, model.dims[i]))
        fh.flush()

    bar = progress_bar(total=n, desc=f"features {model.name}", enabled=progress, unit="img")
    bar.update(start)
    done = start
    try:
        for s in range(start, n, batch_size):
            check_stop()
            e = min(s + batch_size, n)
            hidden = model.forward(images.read(s, e))
            if len(hidden) != len(model.layer_names):
                raise InputError(model.name, f"returned {len(hidden)} hidden states, expected "
                                             f"{len(model.layer_names)}")
            for name, i in zip(names, idx):
                fh[name][s:e] = pool_tokens(hidden[i], pooling, model.n_prefix).float().cpu().numpy()
            fh.flush()  # the rows first, then the count that says they are there
            fh.attrs["n_done"] = e
            fh.flush()
            done = e
            bar.update(e - s)
    except InputError as exc:
        fh.close()
        if done > 0:
            raise InputError(exc.source, f"{exc.problem} ({done} of {n} images done are kept in {part}: fix it "
                                         "and rerun with --resume)") from None
        part.unlink(missing_ok=True)
        raise
    except BaseException:
        fh.close()
        raise
    finally:
        bar.close()
    fh.close()
    if out.exists() and not overwrite:
        raise InputError(out, "exists: choose another --out or pass --overwrite")
    os.replace(part, out)
    return out
