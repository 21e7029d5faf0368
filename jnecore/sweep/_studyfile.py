"""Read and check a study file (TOML) before any cell starts.

A study file names the subjects, the feature file and its layers, the encoder settings and the
shared ``jne run`` options::

    name = "vit-study"
    out = "vit-study"                  # study folder (relative to this file; default: the name)
    features = "vit_b16.h5"            # a `jne features` file (one dataset per layer)
    layers = ["embedding", "block06", "block12"]   # or "all"

    [subjects.subj01]
    prepared = "prepared/subj01"       # a `jne nsd-prepare` folder ...
    [subjects.sim02]                   # ... or an input set: the inputs `jne run` takes
    responses = "sim02/responses.npy"
    rois = "sim02/rois.csv"
    space = "none"

    [settings.default]                 # named encoder settings (JNEAnalysis parameters)
    [settings.gelu-h64]
    activation = "gelu"
    hidden = 64

    [run]                              # shared `jne run` options (JNEAnalysis parameters)
    max_epochs = 200
    device = "cpu"

Every key is checked: an unknown key, a missing subject file or folder, a layer the feature file
lacks or an option value `jne run` would refuse raise :class:`jnecore.validation.InputError`
naming the study file and the key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .._run_cli import ESTIMATOR_OPTIONS, error_text
from ..validation import InputError

__all__ = ["Study", "check_options", "for_checking", "read_study", "SUBJECT_KEYS", "TOP_KEYS"]

#: top-level keys of a study file
TOP_KEYS = ("name", "out", "features", "layers", "subjects", "settings", "run")
#: keys of a subject: the `jne run` inputs; the path-valued ones (lists where `jne run` takes several)
SUBJECT_KEYS = {"prepared": "path", "features": "path", "responses": "paths", "mask": "path", "rois": "paths",
                "roi_lookup": "paths", "vertices": "path", "stimulus_ids": "path", "categories": "path",
                "noise_ceiling": "path", "test_index": "path", "space": "text", "volume_space": "text"}
#: subject, layer and setting names become folder names
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


@dataclass
class Study:
    """A checked study file: paths resolved against the file's folder."""

    path: Path
    name: str
    out: Path
    features: Path | None
    layers: list                    # layer names, in the feature file's order of the list given
    subjects: dict                  # {subject: {jne run input: value}} (paths absolute)
    settings: dict                  # {setting id: {JNEAnalysis parameter: value}}
    run: dict = field(default_factory=dict)  # shared {JNEAnalysis parameter: value}

    def params(self, setting: str) -> dict:
        """The JNEAnalysis parameters of a cell of ``setting``: the [run] options, then the setting's."""
        return {**self.run, **self.settings[setting]}


def _fail(path, key, problem):
    raise InputError(path, f"{key}: {problem}")


def _check_name(path, key, value):
    if not isinstance(value, str) or not _NAME.fullmatch(value) or value in (".", ".."):
        _fail(path, key, f"{value!r} is not a usable name (letters, digits, _ . + -; it names a folder)")
    return value


def for_checking(params: dict, remote: bool) -> dict:
    """``params`` to check here: for a cluster run, a CUDA ``device`` is resolved on the workers,
    not on this machine (which may have no GPU), so only its spelling is checked."""
    device = params.get("device")
    if not remote or not isinstance(device, str) or not re.fullmatch(r"cuda(:\d+)?", device):
        return params
    return {**params, "device": "cpu"}


def check_options(path, where: str, options, *, remote: bool = False) -> dict:
    """``{JNEAnalysis parameter: value}`` from a study-file table, checked like `jne run` flags
    (``remote``: see :func:`for_checking`)."""
    from ..analysis import JNEAnalysis

    if not isinstance(options, dict):
        _fail(path, where, "must be a table of `jne run` options")
    out = {}
    for key, value in options.items():
        name = key.replace("-", "_")
        if name not in ESTIMATOR_OPTIONS:
            _fail(path, f"{where}.{key}", f"unknown option (known: {', '.join(ESTIMATOR_OPTIONS)})")
        typ = ESTIMATOR_OPTIONS[name][0]
        if isinstance(value, str) and typ not in (str, int, float):  # e.g. baseline = "none"
            value = typ(value)
        if isinstance(value, dict | list):
            _fail(path, f"{where}.{key}", "must be a single value")
        out[name] = value
    try:
        JNEAnalysis(**for_checking(out, remote)).check_params()
    except InputError as exc:
        key = exc.source if exc.source in out else None
        _fail(path, f"{where}.{key}" if key else where, error_text(exc) if key is None else exc.problem)
    return out


def _resolve(path: Path, key: str, value, kind: str):
    base = path.parent
    if kind == "text":
        if not isinstance(value, str):
            _fail(path, key, "must be a string")
        return value
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        _fail(path, key, "must be a path" + (" or a list of paths" if kind == "paths" else ""))
    resolved = []
    for v in values:
        file, sep, sub = v.partition(":") if not re.match(r"[A-Za-z]:[\\/]", v) else (v, "", "")
        p = (base / file).resolve()
        if not p.exists():
            _fail(path, key, f"{p} does not exist")
        resolved.append(str(p) + (sep + sub if sep else ""))
    return resolved if kind == "paths" else resolved[0]


def _feature_layers(path, features: Path) -> list:
    import h5py

    from ..features import read_layer_names

    try:
        with h5py.File(features, "r") as fh:
            names = read_layer_names(fh)
    except OSError:
        names = None
    if names is None:
        _fail(path, "features", f"{features} is not a `jne features` file (HDF5 with one dataset per layer)")
    return names


def read_study(path, *, out=None, remote: bool = False) -> Study:
    """Read and check the study file ``path`` (``out`` overrides its ``out`` key; ``remote``: the
    cells run on a cluster, see :func:`for_checking`)."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(path, "does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot be read ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(path, f"is not valid TOML ({exc})") from None
    for key in raw:
        if key not in TOP_KEYS:
            _fail(path, key, f"unknown key (known: {', '.join(TOP_KEYS)})")
    for key in ("name", "subjects", "layers"):
        if key not in raw:
            _fail(path, key, "is required")
    name = _check_name(path, "name", raw["name"])
    out_dir = Path(out) if out is not None else path.parent / _resolve_text(path, "out", raw.get("out", name))

    subjects = raw["subjects"]
    if not isinstance(subjects, dict) or not subjects:
        _fail(path, "subjects", "must name at least one subject ([subjects.NAME] tables)")
    checked = {}
    for sub, table in subjects.items():
        _check_name(path, f"subjects.{sub}", sub)
        if not isinstance(table, dict):
            _fail(path, f"subjects.{sub}", "must be a table of `jne run` inputs")
        inputs = {}
        for key, value in table.items():
            if key not in SUBJECT_KEYS:
                _fail(path, f"subjects.{sub}.{key}", f"unknown key (known: {', '.join(SUBJECT_KEYS)})")
            inputs[key] = _resolve(path, f"subjects.{sub}.{key}", value, SUBJECT_KEYS[key])
        if "prepared" in inputs and not (Path(inputs["prepared"]) / "prepare.json").is_file():
            _fail(path, f"subjects.{sub}.prepared", f"{inputs['prepared']} is not a `jne nsd-prepare` folder "
                                                    "(no prepare.json)")
        if "prepared" not in inputs and "responses" not in inputs:
            _fail(path, f"subjects.{sub}", "needs `prepared` (a `jne nsd-prepare` folder) or `responses`")
        checked[sub] = inputs

    features = None
    if "features" in raw:
        features = Path(_resolve(path, "features", raw["features"], "path"))
    layer_files = {str(features)} if features else set()
    layer_files |= {s["features"] for s in checked.values() if "features" in s}
    if not layer_files or any("features" not in s for s in checked.values()) and features is None:
        _fail(path, "features", "is required (a `jne features` file), here or in every subject")
    layers = raw["layers"]
    known = None
    for f in sorted(layer_files):
        names = _feature_layers(path, Path(f))
        known = names if known is None else [n for n in known if n in names]
    if layers == "all":
        layers = list(known)
    if not isinstance(layers, list) or not layers or not all(isinstance(x, str) for x in layers):
        _fail(path, "layers", "must be \"all\" or a list of layer names")
    for layer in layers:
        if layer not in known:
            _fail(path, "layers", f"the feature file has no layer {layer!r} (its layers: {', '.join(known)})")
    if len(set(layers)) != len(layers):
        _fail(path, "layers", "repeats a layer")

    settings = raw.get("settings", {"default": {}})
    if not isinstance(settings, dict) or not settings:
        _fail(path, "settings", "must hold at least one [settings.NAME] table")
    run = check_options(path, "run", raw.get("run", {}), remote=remote)
    checked_settings = {}
    for sid, table in settings.items():
        _check_name(path, f"settings.{sid}", sid)
        params = check_options(path, f"settings.{sid}", table, remote=remote)
        check_options(path, f"settings.{sid}", {**run, **params}, remote=remote)
        checked_settings[sid] = params
    return Study(path=path, name=name, out=out_dir, features=features, layers=list(layers), subjects=checked,
                 settings=checked_settings, run=run)


def _resolve_text(path, key, value):
    if not isinstance(value, str) or not value:
        _fail(path, key, "must be a folder path")
    return value
