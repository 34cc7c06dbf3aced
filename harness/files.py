"""The project's data files, and reading them: where they are, YAML, JSON Schema checks.

The harness ships data beside its code: ``fixtures/`` (profiles, schemas, InferenceService
manifests, runtimes, the emulator's cluster, the model server), ``loadprofiles/`` (load
profiles), ``suites/`` (the conformance suites) and ``upstream/`` (the Go module of the
upstream oracle). In a checkout they lie at the repository root; an installed wheel
carries them in ``harness/_data/``.
:func:`data_path` finds them in either layout.

:func:`read_yaml` and :func:`check_schema` turn every problem with a file into one
:class:`~harness.errors.UserError` that names the file and the key.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from harness.errors import UserError

PACKAGE = Path(__file__).resolve().parent
DATA_DIRS = ("fixtures", "loadprofiles", "suites", "upstream")
"""The top-level data folders; the wheel ships each under ``harness/_data/``."""


@cache
def data_root() -> Path:
    """The folder that holds the data folders (:data:`DATA_DIRS`).

    ``harness/_data`` in an installed wheel, else the checkout this package lies in.
    """
    for candidate in (PACKAGE / "_data", PACKAGE.parent):
        if (candidate / "fixtures" / "profiles").is_dir():
            return candidate
    raise RuntimeError(f"no fixtures/ beside {PACKAGE}: the harness data files are missing")


def data_path(*parts: str) -> Path:
    """A path below the data root: ``data_path("fixtures", "isvc")``."""
    return data_root().joinpath(*parts)


def display_path(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it, for messages."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def read_yaml(path: Path, *, where: str | None = None) -> Any:
    """Parse one YAML file; a missing, unreadable or malformed file is a :class:`UserError`."""
    where = where or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError("file not found", where=where) from None
    except OSError as exc:
        raise UserError(f"cannot read file: {exc.strerror or exc}", where=where) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise UserError(f"not valid YAML{at}: {problem}", where=where) from None


@cache
def load_schema(name: str) -> dict[str, Any]:
    """A shipped JSON Schema by file name (``fixtures/schemas/<name>``)."""
    return json.loads(data_path("fixtures", "schemas", name).read_text(encoding="utf-8"))


Explain = Callable[[jsonschema.ValidationError], "tuple[str, Sequence[Any]] | None"]
"""A schema's own wording for some errors: (message, key path), or None for the default."""


def check_schema(
    doc: Any,
    schema: Mapping[str, Any],
    *,
    where: str,
    explain: Explain | None = None,
    pick: Callable[[list[jsonschema.ValidationError]], jsonschema.ValidationError] | None = None,
    brackets: bool = False,
) -> None:
    """Validate ``doc`` against a draft 2020-12 ``schema``; the first error as a UserError.

    ``pick`` chooses the error to report (default: the one nearest the document's root);
    ``explain`` words it when the schema needs its own words, else :func:`schema_message`
    does. The key is dotted (``nodes.0.allocatable``), or with ``brackets`` indexed
    (``segments[0].rate``).
    """
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(doc))
    if not errors:
        return
    err = (pick or nearest_root)(errors)
    message, path = (explain(err) if explain else None) or schema_message(err)
    raise UserError(message, where=where, key=format_key(path, brackets=brackets) or None)


def nearest_root(errors: list[jsonschema.ValidationError]) -> jsonschema.ValidationError:
    """The error with the shortest path (the first in document order among equals)."""
    return min(errors, key=lambda e: (len(e.absolute_path), [str(p) for p in e.absolute_path]))


def format_key(path: Iterable[Any], *, brackets: bool = False) -> str:
    """``["a", 0, "b"]`` as ``a.0.b``, or ``a[0].b`` with ``brackets``."""
    out = ""
    for part in path:
        if brackets and isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def schema_message(err: jsonschema.ValidationError) -> tuple[str, Sequence[Any]]:
    """One line for a schema error, and the key path it is about."""
    path = list(err.absolute_path)
    inst = err.instance
    schema = err.schema if isinstance(err.schema, Mapping) else {}
    v = err.validator
    if v == "required" and isinstance(inst, Mapping):
        missing = next((r for r in err.validator_value if r not in inst), "?")
        return "required key is missing", [*path, missing]
    if v == "additionalProperties" and isinstance(inst, Mapping):
        allowed = sorted(schema.get("properties", {}))
        extra = next((k for k in inst if k not in allowed), "?")
        return f"unknown key; allowed keys here: {', '.join(allowed)}", [*path, extra]
    if v == "propertyNames" or "propertyNames" in err.schema_path:
        hint = ", ".join(schema["enum"]) if "enum" in schema else schema.get("description", "")
        return f"unknown key; allowed: {hint}", [*path, inst]
    if "description" in schema:
        return f"{inst!r} is not allowed; allowed: {schema['description']}", path
    if v == "enum":
        values = ", ".join(map(str, err.validator_value))
        return f"{inst!r} is not allowed; allowed: one of {values}", path
    if v in ("minimum", "exclusiveMinimum"):
        sign = ">=" if v == "minimum" else ">"
        return f"{inst!r} must be {sign} {err.validator_value}", path
    if v == "minItems" and err.validator_value == 1:
        return "must not be empty", path
    if v == "type":
        return f"{inst!r} must be of type {err.validator_value}", path
    return err.message, path
