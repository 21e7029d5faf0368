"""``jne features``: the options, then :func:`open_images`, :func:`load_model`, :func:`extract_features`."""

from __future__ import annotations

import time
from pathlib import Path

from ..validation import InputError

__all__ = ["add_features_parser", "cmd_features", "interrupt_note"]


def add_features_parser(sub):
    p = sub.add_parser("features", help="per-layer ANN features (CLS or mean patch tokens) of a set of images, "
                                        "into one .h5 file that `jne run --features FILE.h5:layer` reads")
    p.add_argument("--images", required=True, help="a folder of image files (sorted; names are the stimulus ids), "
                                                   "NSD's nsd_stimuli.hdf5[:imgBrick] or a uint8 (N, H, W, 3) .npy")
    p.add_argument("--model", required=True, help="hf:NAME or NAME or a local folder (transformers), "
                                                  "open_clip:ARCH/PRETRAINED, timm:NAME")
    p.add_argument("--out", required=True, help="the .h5 file to write")
    p.add_argument("--layers", default="all", help="all (default) or a comma list of names or indices "
                                                   "(0 = embedding, k = block k)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="auto", help="auto (a CUDA GPU when there is one), cpu, cuda or cuda:N")
    p.add_argument("--dtype", default="float32", help="float32 (default), float16 or bfloat16 (stored as float32)")
    p.add_argument("--pooling", default="cls", help="cls (the class token, default) or mean (of the patch tokens)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted extraction into the same --out")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--allow-download", action="store_true", help="let the model library fetch missing weights")
    p.add_argument("--quiet", action="store_true")


def cmd_features(a):
    from . import extract_features, load_model, open_images
    from ._models import go_offline

    if not a.allow_download:
        go_offline()
    out = Path(a.out)
    if out.suffix.lower() not in (".h5", ".hdf5"):
        raise InputError("--out", f"{out}: must end in .h5 or .hdf5")
    if out.is_dir():
        raise InputError(out, "is a directory: --out names the .h5 file to write")
    if out.exists() and not a.overwrite:
        raise InputError(out, "exists: choose another --out or pass --overwrite")
    if a.pooling not in ("cls", "mean"):
        raise InputError("--pooling", f"unknown value {a.pooling!r}: use cls or mean")
    out.parent.mkdir(parents=True, exist_ok=True)
    images = open_images(a.images)
    try:
        t0 = time.perf_counter()
        model = load_model(a.model, device=a.device, dtype=a.dtype, allow_download=a.allow_download)
        t1 = time.perf_counter()
        extract_features(images, model, out, layers=a.layers, batch_size=a.batch_size, pooling=a.pooling,
                         resume=a.resume, overwrite=a.overwrite, progress=not a.quiet)
        t2 = time.perf_counter()
    finally:
        images.close()
    from . import select_layers

    n_layers = len(select_layers(a.layers, model.layer_names))
    print(f"wrote {out}: {len(images)} images x {n_layers} layers "
          f"of {model.name} ({model.device.type}); load {t1 - t0:.1f}s, extract {t2 - t1:.1f}s "
          f"({len(images) / max(t2 - t1, 1e-9):.1f} images/s)")
    print(f"next: jne run --features {out}:{model.layer_names[-1]} ...")


def interrupt_note(args) -> str:
    from . import partial_path

    part = partial_path(args.out)
    return f" (done rows kept in {part}: rerun with --resume)" if part.exists() else ""
