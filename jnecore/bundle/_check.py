"""The one schema check of a result bundle read from disk, which is treated as untrusted input.

:func:`check_bundle` lists every :class:`Problem` of a bundle: missing, empty or truncated
files, a missing tables folder, an empty JNE-SS, manifest fields of the wrong type, oversized or
deeply nested JSON, a JNE-SS whose shape does not match the vertices, columns of the wrong type.
Each problem names its file and says whether the bundle can still be opened (``fatal``) and which
part is lost (``part``). :func:`jnecore.bundle.load_bundle` runs the same check: it refuses a bundle
with a fatal problem and otherwise opens what is usable, keeping the rest as ``Bundle.problems``.

Limits (:data:`MAX_MANIFEST_BYTES`, :data:`MAX_JSON_DEPTH` here; :data:`MAX_TABLE_ROWS`,
:data:`MAX_TABLE_BYTES` and the header checks in :mod:`jnecore.io._limits`; each with its reason
beside it) are checked before a file is parsed, from its size, the .npy header or the parquet
footer, so a damaged or hostile bundle cannot make a reader allocate more than the limit.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path


from ..atlas import LEVELS
from ..io._limits import MAX_TABLE_BYTES, MAX_TABLE_ROWS, npy_header, parquet_footer, read_parquet
from ._contract import (FILES, MANIFEST_FIELDS, SCHEMA_VERSION, SPACES, STIMULUS_COLUMNS, TABLE_COLUMNS,
                        VERTEX_COLUMNS)

__all__ = ["Problem", "check_bundle", "read_manifest", "read_json", "npy_header", "parquet_footer",
           "MAX_MANIFEST_BYTES", "MAX_JSON_DEPTH", "MAX_TABLE_ROWS", "MAX_TABLE_BYTES"]

#: manifest.json bytes: the sample bundle's is 0.33 MB (one entry per encoder fit); a whole-brain run
#: with ~360 ROI encoders stays near 1 MB, so 16 MB leaves room and refuses a 50 MB file unread
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
#: JSON nesting: the writer's manifests nest 4 deep (config -> dict -> list); 64 is far above that
#: and far below Python's recursion limit, so no parse ever recurses deep
MAX_JSON_DEPTH = 64


@dataclass(frozen=True)
class Problem:
    """One problem of a bundle.

    Attributes
    ----------
    file : the file or folder concerned
    message : what is wrong, and what follows from it
    fatal : the bundle cannot be opened at all
    part : the part lost when not fatal: ``"jne_ss"``, ``"table:NAME"``, ``"manifest:FIELD"``,
        ``"column:NAME"`` (a vertex or stimulus column), ``""`` for a fatal problem
    """

    file: str
    message: str
    fatal: bool = True
    part: str = ""

    def __str__(self) -> str:
        return f"{self.file}: {self.message}"


class _Fatal(Exception):
    def __init__(self, problem: Problem):
        self.problem = problem


def _fatal(file, message):
    return _Fatal(Problem(str(file), message, True, ""))


# -------------------------------------------------------------------------------------- JSON

_JSON_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _nesting_exceeds(data: bytes, limit: int) -> bool:
    """Whether brackets outside JSON strings nest deeper than ``limit`` (scanned before parsing)."""
    depth = 0
    for m in _JSON_TOKENS.finditer(data):
        c = m.group()[0]
        if c in b"[{":
            depth += 1
            if depth > limit:
                return True
        elif c in b"]}":
            depth -= 1
    return False


def read_manifest(path, *, clean: bool = True) -> dict:
    """A bundle's manifest.json as a dict, read with bounded size and nesting.

    Parameters
    ----------
    path : the bundle folder or its manifest.json
    clean : leave out the fields of :data:`jnecore.bundle.MANIFEST_FIELDS` that have the wrong type

    Raises
    ------
    InputError (a :class:`jnecore.bundle.BundleError`) naming the file: missing, empty, larger than
    :data:`MAX_MANIFEST_BYTES`, nested deeper than :data:`MAX_JSON_DEPTH`, not JSON, not an object.
    """
    from ._bundle import BundleError

    try:
        man = _read_manifest(Path(path))
        return _clean_fields(path, man, []) if clean else man
    except _Fatal as exc:
        raise BundleError(exc.problem.file, exc.problem.message) from None


def _read_manifest(path: Path) -> dict:
    p = path if path.name == FILES["manifest"] else path / FILES["manifest"]
    folder = p.parent
    if not folder.is_dir():
        raise _fatal(folder, "no such folder")
    if not p.is_file():
        raise _fatal(folder, "not a result bundle (no manifest.json)")
    return _read_json_object(p, "a manifest")


def _read_json_object(p: Path, what: str) -> dict:
    try:
        size = p.stat().st_size
        if size == 0:
            raise _fatal(p, "is empty")
        if size > MAX_MANIFEST_BYTES:
            raise _fatal(p, f"is {size:,} bytes, more than the {MAX_MANIFEST_BYTES:,} {what} may have: not read")
        with open(p, "rb") as fh:
            data = fh.read(MAX_MANIFEST_BYTES + 1)
    except OSError as exc:
        raise _fatal(p, f"cannot be read ({exc.strerror or type(exc).__name__})") from None
    if len(data) > MAX_MANIFEST_BYTES:
        raise _fatal(p, f"is more than the {MAX_MANIFEST_BYTES:,} bytes {what} may have: not read")
    if _nesting_exceeds(data, MAX_JSON_DEPTH):
        raise _fatal(p, f"nests deeper than {MAX_JSON_DEPTH} levels: not read")
    try:
        man = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise _fatal(p, f"is not valid JSON ({str(exc).splitlines()[0][:120]})") from None
    if not isinstance(man, dict):
        raise _fatal(p, f"must hold a JSON object, not a {type(man).__name__}")
    return man


def read_json(path) -> dict:
    """A JSON object from a bundle (``simulations/simulations.json``, say), with the manifest's
    bounds on size and nesting; raises :class:`jnecore.bundle.BundleError` naming the file."""
    from ._bundle import BundleError

    try:
        return _read_json_object(Path(path), "a JSON file")
    except _Fatal as exc:
        raise BundleError(exc.problem.file, exc.problem.message) from None


def _type_ok(value, want) -> bool:
    if want is bool:
        return isinstance(value, bool)
    if want is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, want)


def _check_manifest(path: Path, man: dict, problems: list) -> dict:
    """The manifest with every field of the wrong type removed (one problem each); raises on the
    fields no page can do without (schema version, space)."""
    p = path / FILES["manifest"]
    version = man.get("schema_version")
    if not isinstance(version, str) or version.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
        shown = version if isinstance(version, str) and len(version) < 40 else ("missing" if version is None else
                                                                                 type(version).__name__)
        raise _fatal(p, f"schema version {shown or 'missing'} is not supported (this jnecore reads {SCHEMA_VERSION})")
    space = man.get("space")
    if not isinstance(space, str) or space not in SPACES:
        shown = repr(space) if isinstance(space, str) and len(space) < 40 else type(space).__name__
        raise _fatal(p, f"manifest space {shown} is not one of {', '.join(SPACES)}")
    return _clean_fields(p, man, problems)


def _clean_fields(p, man: dict, problems: list) -> dict:
    """``man`` without the fields of :data:`MANIFEST_FIELDS` that have the wrong type (one problem each)."""
    clean = dict(man)
    for key, (want, item) in MANIFEST_FIELDS.items():
        if key not in man:
            continue
        value = man[key]
        if not _type_ok(value, want):
            problems.append(Problem(str(p), f"field {key!r} should be {_TYPE_WORDS[want]}, not "
                                            f"{type(value).__name__}: ignored", False, f"manifest:{key}"))
            del clean[key]
        elif item is not None:
            bad = [k for k, x in (value.items() if isinstance(value, dict) else enumerate(value))
                   if not _type_ok(x, item)]
            if bad:
                problems.append(Problem(str(p), f"field {key!r} has {len(bad)} "
                                                f"{'entry that is' if len(bad) == 1 else 'entries that are'} not "
                                                f"{_TYPE_WORDS[item]}: ignored", False, f"manifest:{key}"))
                clean[key] = ({k: x for k, x in value.items() if k not in bad} if isinstance(value, dict)
                              else [x for i, x in enumerate(value) if i not in set(bad)])
    return clean


_TYPE_WORDS = {str: "a string", bool: "true or false", float: "a number", int: "an integer", dict: "an object",
               list: "a list"}


# -------------------------------------------------------------------------------------- .npy


def _check_jne_ss(path: Path, n_test: int, n_vertices: int, problems: list) -> bool:
    from ..validation import InputError

    p = path / FILES["jne_ss"]
    lost = "the JNE-SS views show no values"
    if not p.is_file():
        problems.append(Problem(str(p), f"missing: {lost}", False, "jne_ss"))
        return False
    try:
        shape, dtype, _ = npy_header(p)
    except InputError as exc:
        problems.append(Problem(str(p), f"{exc.problem}: {lost}", False, "jne_ss"))
        return False
    if dtype.kind not in "fiu":
        problems.append(Problem(str(p), f"holds {dtype} values, not numbers: {lost}", False, "jne_ss"))
        return False
    if len(shape) != 2 or shape != (n_test, n_vertices):
        problems.append(Problem(str(p), f"has shape {shape}, expected (n_test={n_test}, n_vertices={n_vertices}): "
                                        f"{lost}", False, "jne_ss"))
        return False
    if n_test == 0:
        problems.append(Problem(str(p), f"is empty (the bundle has no test stimuli): {lost}", False, "jne_ss"))
    return True


# -------------------------------------------------------------------------------------- parquet


def _kind_ok(arrow_type, kind: str) -> bool:
    import pyarrow as pa

    t = arrow_type
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_null(t):
        return kind in "fU"
    if kind == "i":
        return pa.types.is_integer(t)
    if kind == "f":
        return pa.types.is_integer(t) or pa.types.is_floating(t)
    if kind == "b":
        return pa.types.is_boolean(t)
    if kind == "U":
        return pa.types.is_string(t) or pa.types.is_large_string(t)
    return True


_KIND_WORDS = {"i": "integers", "f": "numbers", "b": "true/false", "U": "text"}


def _read_frame(path: Path, name: str, spec: dict, problems: list):
    """Read vertices / stimuli parquet after the footer and column checks; optional columns of the
    wrong type are dropped (one problem each)."""
    from ..validation import InputError

    p = path / FILES[name]
    if not p.is_file():
        raise _fatal(p, "missing")
    try:
        n_rows, _, schema = parquet_footer(p)
    except InputError as exc:
        raise _fatal(p, exc.problem) from None
    keep = []
    for col, arrow_type in zip(schema.names, schema.types):
        if col in spec and not _kind_ok(arrow_type, spec[col][0]):
            what = f"column {col!r} holds {arrow_type}, not {_KIND_WORDS[spec[col][0]]}"
            if spec[col][1]:
                raise _fatal(p, what)
            problems.append(Problem(str(p), f"{what}: ignored", False, f"column:{col}"))
            continue
        keep.append(col)
    missing = [c for c, v in spec.items() if v[1] and c not in schema.names]
    if missing:
        raise _fatal(p, f"lacks the columns {', '.join(missing)}")
    try:
        frame = read_parquet(p, columns=keep)
    except InputError as exc:
        raise _fatal(p, exc.problem) from None
    if len(frame) != n_rows:
        raise _fatal(p, f"holds {len(frame):,} rows, its footer states {n_rows:,}: damaged")
    return frame


def _check_tables(path: Path, man: dict, problems: list) -> list:
    """The listed summary tables that can be read (the others get a problem each)."""
    from ..validation import InputError

    names = list(man.get("tables", []))
    folder = path / FILES["tables"]
    if names and not folder.is_dir():
        problems.append(Problem(str(folder), f"folder missing (the manifest lists {len(names)} tables): "
                                             "summaries are recomputed from the vertices", False, "tables"))
        return []
    usable = []
    for name in names:
        p = folder / f"{name}.parquet"
        if "/" in name or "\\" in name or name.startswith(".") or not p.is_file():
            problems.append(Problem(str(p), f"missing (listed in the manifest): recomputed where a page needs it",
                                    False, f"table:{name}"))
            continue
        try:
            _, _, schema = parquet_footer(p)
        except InputError as exc:
            problems.append(Problem(str(p), f"{exc.problem}: recomputed where a page needs it", False, f"table:{name}"))
            continue
        types = dict(zip(schema.names, schema.types))
        want = TABLE_COLUMNS.get(name, {})
        bad = [c for c, kind in want.items() if c not in types or not _kind_ok(types[c], kind)]
        if bad:
            what = ", ".join(f"{c} ({_KIND_WORDS[want[c]]})" for c in bad[:5])
            problems.append(Problem(str(p), f"lacks the columns {what}: recomputed where a page needs it", False,
                                    f"table:{name}"))
            continue
        usable.append(name)
    return usable


# -------------------------------------------------------------------------------------- the check


@dataclass
class _Examined:
    manifest: dict
    vertices: object
    stimuli: object
    problems: list
    jne_ss_ok: bool


def _examine(path, problems: list) -> _Examined:
    """Everything :func:`check_bundle` checks, with the usable parts; appends the non-fatal
    problems to ``problems`` and raises _Fatal at the first fatal one."""
    path = Path(path)
    man = _check_manifest(path, _read_manifest(path), problems)
    vertices = _read_frame(path, "vertices", VERTEX_COLUMNS, problems)
    stimuli = _read_frame(path, "stimuli", STIMULUS_COLUMNS, problems)
    vp = path / FILES["vertices"]
    if len(vertices) == 0:
        raise _fatal(vp, "has no rows")
    bad = set(vertices["level"].astype(str)) - set(LEVELS)
    if bad:
        raise _fatal(vp, f"unknown hierarchy levels {sorted(bad)[:5]}: use {', '.join(LEVELS)}")
    if vertices["vertex"].duplicated().any():
        raise _fatal(vp, "repeats a vertex index")
    n_test = int((stimuli["split"].astype(str) == "test").sum())
    man["tables"] = _check_tables(path, man, problems)
    ok = _check_jne_ss(path, n_test, len(vertices), problems)
    return _Examined(man, vertices, stimuli, problems, ok)


def check_bundle(path) -> list:
    """Every problem of the bundle at ``path``; an empty list when it is sound.

    Parameters
    ----------
    path : a bundle folder

    Returns
    -------
    problems : list of :class:`Problem`; the bundle opens (with the non-fatal ones noted) unless one
        is ``fatal``; a fatal problem is the last one listed (nothing after it was checked).
    """
    problems: list = []
    try:
        _examine(path, problems)
    except _Fatal as exc:
        problems.append(exc.problem)
    return problems
