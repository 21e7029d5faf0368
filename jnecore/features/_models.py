"""Vision models whose per-layer tokens become features: Hugging Face ``transformers`` vision
transformers, ``open_clip`` image towers and ``timm`` ViTs, each with its own preprocessing.

A model is named ``hf:NAME`` (or a bare NAME / local folder), ``open_clip:ARCH/PRETRAINED``
(``PRETRAINED`` a tag from open_clip's cache or a local ``.safetensors``/checkpoint path) or
``timm:NAME``. Weights are taken from local files only (a path, the Hugging Face cache, the
open_clip / timm caches) unless ``allow_download``: without them the error says where they were
looked for and how to provide them, never a traceback and never a wait on the network.

:class:`FeatureModel` turns a list of PIL images into per-layer token tensors:
``forward(images)`` -> list of (B, T, C) tensors, the embedding output first, then every block.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..validation import InputError

__all__ = ["FeatureModel", "load_model", "FAMILIES"]

FAMILIES = ("hf", "open_clip", "timm")


def _offline_hint(name: str, family: str) -> str:
    hf_home = os.environ.get("HF_HOME", str(Path.home() / ".cache" / "huggingface"))
    where = {"hf": f"a local folder, then the Hugging Face cache ({hf_home}/hub)",
             "timm": f"the Hugging Face cache ({hf_home}/hub), where timm keeps its weights",
             "open_clip": f"a local file, then the Hugging Face cache ({hf_home}/hub) and open_clip's cache "
                          f"({Path.home() / '.cache' / 'clip'})"}[family]
    how = {"hf": f"`hf download {name}` on a machine with network (then copy the cache), "
                 "a local model folder as --model, or --allow-download",
           "timm": f"`hf download timm/{name}`, or --allow-download",
           "open_clip": "a local weights file as open_clip:ARCH/PATH, or --allow-download"}[family]
    return f"no weights found offline; looked in {where}. Provide them with {how}"


def _first_line(exc) -> str:
    s = str(exc).strip()
    return s.splitlines()[0] if s else type(exc).__name__


def _import(module: str, family: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise InputError("--model", f"{family} models need {module}, which cannot be imported ({_first_line(exc)}): "
                                    "pip install 'jnecore[features]'") from None


class FeatureModel:
    """A loaded vision model. ``forward(images)``: list of B PIL images -> list of L (B, T, C) float
    tensors on ``device`` (embedding output, then each block). ``n_prefix`` leading tokens are the
    class (and register) tokens: CLS is token 0, patch tokens are ``n_prefix:``.

    Attributes: ``name``, ``family``, ``revision``, ``preprocessing`` (dict, as the library reports
    it), ``layer_names`` (L,), ``dims`` (L,), ``has_cls``, ``device``, ``dtype``.
    """

    def __init__(self, *, name, family, revision, preprocessing, n_blocks, dim, n_prefix, has_cls, device, dtype,
                 preprocess, run):
        self.name, self.family, self.revision = name, family, revision
        self.preprocessing = preprocessing
        width = max(2, len(str(n_blocks)))
        self.layer_names = ["embedding"] + [f"block{i:0{width}d}" for i in range(1, n_blocks + 1)]
        self.dims = [int(dim)] * (n_blocks + 1)
        self.n_prefix, self.has_cls = int(n_prefix), bool(has_cls)
        self.device, self.dtype = device, dtype
        self._preprocess, self._run = preprocess, run

    def preprocess(self, images):
        """List of B PIL images -> (B, 3, H, W) float tensor, the model's own preprocessing."""
        return self._preprocess(images)

    def forward(self, images):
        import torch

        pixels = self.preprocess(images).to(self.device, self.dtype)
        with torch.inference_mode():
            return self._run(pixels)


def _hf(name, device, dtype, allow_download):
    transformers = _import("transformers", "hf")
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    local = not allow_download
    try:
        processor = transformers.AutoImageProcessor.from_pretrained(name, local_files_only=local)
        model = transformers.AutoModel.from_pretrained(name, local_files_only=local)
    except Exception as exc:  # transformers raises OSError when offline, others for a broken folder
        msg = _first_line(exc)
        if Path(name).is_dir() or not local or not isinstance(exc, OSError):
            raise InputError(name, f"cannot load the model ({msg})") from None
        raise InputError(name, _offline_hint(name, "hf")) from None
    if hasattr(model, "vision_model"):  # CLIP, SigLIP...: the image tower only
        model = model.vision_model
    config = model.config
    n_blocks = getattr(config, "num_hidden_layers", None)
    dim = getattr(config, "hidden_size", None)
    if n_blocks is None or dim is None:
        raise InputError(name, f"{type(model).__name__} is not a vision transformer (no hidden layers/size in its config)")
    model.eval().to(device, dtype)
    revision = getattr(config, "_commit_hash", None)
    if revision is None:
        parts = Path(str(name)).resolve().parts if Path(name).exists() else ()
        revision = parts[parts.index("snapshots") + 1] if "snapshots" in parts[:-1] else None
    prep = processor.to_dict()

    def preprocess(images):
        return processor(images=images, return_tensors="pt")["pixel_values"]

    def run(pixels):
        out = model(pixel_values=pixels, output_hidden_states=True)
        return list(out.hidden_states)

    return FeatureModel(name=name, family="hf", revision=revision, preprocessing=prep, n_blocks=n_blocks, dim=dim,
                        n_prefix=1, has_cls=True, device=device, dtype=dtype, preprocess=preprocess, run=run)


def _hooked(embed_module, blocks, tokens_first=False):
    """run(pixels, call) capturing the outputs of ``embed_module`` and each of ``blocks``."""
    captured = []

    def hook(_module, _inputs, output):
        out = output[0] if isinstance(output, tuple) else output
        captured.append(out.transpose(0, 1) if tokens_first else out)

    def run(pixels, call):
        handles = [embed_module.register_forward_hook(hook)] + [b.register_forward_hook(hook) for b in blocks]
        captured.clear()
        try:
            call(pixels)
        finally:
            for h in handles:
                h.remove()
        out = list(captured)
        captured.clear()
        return out

    return run


def _timm_parts(model, name):
    blocks = getattr(model, "blocks", None)
    if blocks is None or not hasattr(model, "norm_pre"):
        raise InputError(name, f"{type(model).__name__} has no transformer blocks: only ViT-style timm models "
                               "(with .blocks) are supported")
    n_prefix = int(getattr(model, "num_prefix_tokens", 1))
    has_cls = getattr(model, "cls_token", None) is not None
    return list(blocks), model.norm_pre, n_prefix, has_cls


def _timm(name, device, dtype, allow_download):
    timm = _import("timm", "timm")
    try:
        model = timm.create_model(name, pretrained=True)
    except RuntimeError as exc:  # unknown model name
        raise InputError(name, f"timm cannot create it ({_first_line(exc)})") from None
    except (OSError, ValueError) as exc:
        raise InputError(name, _offline_hint(name, "timm") if not allow_download else _first_line(exc)) from None
    blocks, embed, n_prefix, has_cls = _timm_parts(model, name)
    model.eval().to(device, dtype)
    from timm.data import create_transform, resolve_data_config

    data_config = resolve_data_config({}, model=model)
    transform = create_transform(**data_config, is_training=False)
    tag = getattr(model, "pretrained_cfg", {}) or {}
    hooked = _hooked(embed, blocks)

    def preprocess(images):
        import torch

        return torch.stack([transform(im) for im in images])

    return FeatureModel(name=name, family="timm", revision=tag.get("hf_hub_id") or tag.get("tag"),
                        preprocessing={k: (list(v) if isinstance(v, tuple) else v) for k, v in data_config.items()},
                        n_blocks=len(blocks), dim=model.embed_dim, n_prefix=n_prefix, has_cls=has_cls,
                        device=device, dtype=dtype, preprocess=preprocess,
                        run=lambda px: hooked(px, model.forward_features))


def _open_clip(name, device, dtype, allow_download):
    open_clip = _import("open_clip", "open_clip")
    arch, _, pretrained = name.partition("/")
    try:
        model, _, transform = open_clip.create_model_and_transforms(arch, pretrained=pretrained or None)
    except RuntimeError as exc:
        raise InputError(name, f"open_clip cannot create it ({_first_line(exc)})") from None
    except (OSError, ValueError) as exc:
        raise InputError(name, _offline_hint(name, "open_clip") if not allow_download else _first_line(exc)) from None
    visual = model.visual
    if hasattr(visual, "trunk"):  # a timm tower
        blocks, embed, n_prefix, has_cls = _timm_parts(visual.trunk, name)
        dim, tokens_first = visual.trunk.embed_dim, False
    elif hasattr(visual, "transformer") and hasattr(visual, "ln_pre"):
        blocks, embed = list(visual.transformer.resblocks), visual.ln_pre
        n_prefix, has_cls = 1, True
        dim = visual.transformer.width
        tokens_first = not getattr(visual.transformer, "batch_first", True)
    else:
        raise InputError(name, f"{type(visual).__name__} is not a vision transformer tower")
    visual.eval().to(device, dtype)
    hooked = _hooked(embed, blocks, tokens_first=tokens_first)

    def preprocess(images):
        import torch

        return torch.stack([transform(im) for im in images])

    return FeatureModel(name=name, family="open_clip", revision=pretrained or None,
                        preprocessing={"transforms": repr(transform)}, n_blocks=len(blocks), dim=dim,
                        n_prefix=n_prefix, has_cls=has_cls, device=device, dtype=dtype, preprocess=preprocess,
                        run=lambda px: hooked(px, visual))


def go_offline():
    """Make the hub libraries fail at once instead of reaching for the network: they read these
    variables when first imported, so call this before importing them (the CLI does)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


def split_model_name(spec: str):
    """``"timm:vit_base_patch16_224"`` -> ("timm", "vit_base_patch16_224"); no prefix -> Hugging Face."""
    spec = str(spec)
    family, sep, rest = spec.partition(":")
    if sep and family in FAMILIES and rest:
        return family, rest
    return "hf", spec


def load_model(spec, *, device="auto", dtype="float32", allow_download=False) -> FeatureModel:
    """Load the model ``spec`` names (see the module docstring) on ``device`` in ``dtype``.

    Hugging Face models are loaded with ``local_files_only`` unless ``allow_download``; for timm
    and open_clip, call :func:`go_offline` first to keep them off the network."""
    import torch

    from ..backend import resolve_device

    family, name = split_model_name(spec)
    try:
        dev = resolve_device(device)
    except ValueError as exc:
        raise InputError("--device", str(exc)) from None
    dtypes = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    if dtype not in dtypes:
        raise InputError("--dtype", f"unknown value {dtype!r}: use one of {', '.join(dtypes)}")
    loader = {"hf": _hf, "timm": _timm, "open_clip": _open_clip}[family]
    return loader(name, dev, dtypes[dtype], allow_download)


def preprocessing_json(model: FeatureModel) -> str:
    return json.dumps(model.preprocessing, default=str, sort_keys=True)
