"""Turns any spec input (.trace, spec.json/.toml, reference config or manifest, bundled name) into the IR."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tracedsl import resources
from tracedsl.codes import (
    E_FORMAT_VERSION,
    E_INVALID,
    E_LEGACY_CONFLICT,
    E_NOT_OBJECT,
    E_OVERRIDE,
    E_SCHEMA,
    E_UNKNOWN_KEY,
    W_CONSTANT,
    W_LEGACY,
    is_io,
)
from tracedsl.diagnostics import Diagnostic, DiagnosticError, Severity, with_source
from tracedsl.io import (
    E_MISSING,
    SPEC_KEYS,
    JsonLocator,
    JsonPositions,
    SourceFile,
    parse_json,
    parse_toml,
    read_source,
)
from tracedsl.ir import SPEC_FORMAT_VERSION, GenerationParams
from tracedsl.language.classes import body_message, class_of_path
from tracedsl.language.paths import (
    PathProblem,
    inherited_by,
    is_language_path,
    subagents_inheriting,
    translate,
)
from tracedsl.language.validate import (
    FieldProblem,
    did_you_mean,
    field_names,
    model_at,
    validate_params,
    warnings_for,
)

SpecKind = Literal["trace", "spec", "config", "manifest"]


# The reference accepts camelCase spellings of its top-level keys (its pydantic aliases).
_CAMEL_TO_SNAKE = {
    re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), name): name
    for name in GenerationParams.model_fields
    if "_" in name
}
_MANIFEST_KEYS = ("seed", "num_sessions", "config_name")
# A tracedsl manifest may record the requested primary-session count under this key.
_REQUESTED_SESSIONS_KEY = "requested_sessions"


@dataclass(frozen=True)
class LoadedSpec:
    """A validated workload and where it came from."""

    name: str
    params: GenerationParams
    source_path: Path | None
    source_sha256: str | None
    kind: SpecKind
    manifest_seed: int | None = None
    manifest_num_sessions: int | None = None
    warnings: tuple[Diagnostic, ...] = ()
    bundled: bool = False  # named by its bundled name, not a file of the user's


def is_io_problem(error: DiagnosticError) -> bool:
    """True when the errors are about reaching a file (exit code IO), not about its content."""
    errors = [d for d in error.diagnostics if d.is_error]
    return bool(errors) and all(is_io(d.code) for d in errors)


def resolve_source(source: str | Path) -> Path:
    """A path as given, or the bundled spec of that name when no such file exists."""
    path = Path(source)
    if path.exists():
        return path
    bundled = resources.bundled_spec_path(str(source))
    if bundled is not None:
        return bundled
    names = ", ".join(resources.bundled_spec_names())
    hint = did_you_mean(str(source), resources.bundled_spec_names())
    raise DiagnosticError(
        Diagnostic(
            E_MISSING,
            f"no such file, and no bundled spec of that name (bundled: {names})",
            file=str(source),
            hint=hint,
        )
    )


def load_spec(source: str | Path) -> LoadedSpec:
    """Load and validate a spec from any accepted form; errors raise DiagnosticError."""
    path = resolve_source(source)
    if path != Path(source):
        return dataclasses.replace(_load_file(path), bundled=True)
    return _load_file(path)


def _load_file(path: Path) -> LoadedSpec:
    """Read and load one file; its diagnostics carry its text, for the caret excerpt."""
    file = read_source(path)
    try:
        loaded = _load_text(file)
    except DiagnosticError as error:
        raise DiagnosticError(with_source(error.diagnostics, file.text, file.display)) from None
    warnings = tuple(with_source(loaded.warnings, file.text, file.display))
    return dataclasses.replace(loaded, warnings=warnings)


def _load_text(file: SourceFile) -> LoadedSpec:
    path = file.path
    suffix = path.suffix.lower()
    if suffix == ".trace":
        from tracedsl.language import compile_source

        workload, warnings = compile_source(file.text, file.display)
        return LoadedSpec(
            workload.name, workload.params, path, file.sha256, "trace", warnings=tuple(warnings)
        )
    if suffix == ".toml":
        return _load_document(file, parse_toml(file.text, file.display), None, toml=True)
    if suffix != ".json" and not file.text.lstrip().startswith(("{", "[")):
        raise DiagnosticError(
            Diagnostic(
                E_NOT_OBJECT,
                "unrecognised spec file: expected a .trace, .json or .toml file",
                file=file.display,
            )
        )
    data, positions = parse_json(file.text, file.display)
    return _load_document(file, data, positions, toml=False)


def _load_document(
    file: SourceFile, data: Any, positions: JsonPositions | None, *, toml: bool
) -> LoadedSpec:
    locate = JsonLocator(file.display, positions)
    if not isinstance(data, dict):
        raise DiagnosticError(
            locate.at((), E_NOT_OBJECT, f"expected a JSON object, found {_json_type(data)}")
        )
    if "$id" in data and "properties" in data:
        raise DiagnosticError(
            locate.at(
                (),
                E_SCHEMA,
                "this is a JSON Schema, not a config",
                hint="pass a config, a manifest.json, a spec.json or a .trace file",
            )
        )
    stem = file.path.stem
    if "format_version" in data:
        return _load_spec_document(file, data, locate, toml=toml)
    if "generation_params" in data:
        seed, count, name, errors = _manifest_fields(data, locate)
        try:
            params, warnings = _validate(
                data["generation_params"], locate, ("generation_params",), toml=toml
            )
        except DiagnosticError as error:
            raise DiagnosticError(errors + error.diagnostics) from None
        if errors:
            raise DiagnosticError(errors + list(warnings))
        return LoadedSpec(
            name or stem,
            params,
            file.path,
            file.sha256,
            "manifest",
            manifest_seed=seed,
            manifest_num_sessions=count,
            warnings=warnings,
        )
    params, warnings = _validate(data, locate, (), toml=toml)
    return LoadedSpec(stem, params, file.path, file.sha256, "config", warnings=warnings)


def _manifest_fields(
    data: dict, locate: JsonLocator
) -> tuple[int | None, int | None, str | None, list[Diagnostic]]:
    """A manifest's seed, session count and config name, each checked where it stands.

    Absent fields are None (run falls back to its defaults); a field that is present must be
    usable as it is, so a quoted count or a negative seed is an error, never silently skipped.
    """
    from tracedsl.output.manifest import MAX_SEED, MAX_SESSIONS

    errors: list[Diagnostic] = []

    def whole(key: str, low: int, high: int, what: str) -> int | None:
        value = data.get(key)
        if value is None and key not in data:
            return None
        if _is_int(value) and low <= value <= high:
            return value
        errors.append(locate.at((key,), E_INVALID, f"{key} must be {what}; found {_shown(value)}"))
        return None

    seed = whole("seed", 0, MAX_SEED, f"an integer from 0 to 2**64-1 ({MAX_SEED})")
    sessions = f"a whole number of sessions from 1 to {MAX_SESSIONS:,}"
    requested = whole(_REQUESTED_SESSIONS_KEY, 1, MAX_SESSIONS, sessions)
    counted = whole("num_sessions", 1, MAX_SESSIONS, sessions)
    name = data.get("config_name")
    if name is not None and not (isinstance(name, str) and name):
        errors.append(
            locate.at(("config_name",), E_INVALID, "config_name must be a non-empty string")
        )
        name = None
    count = requested if _REQUESTED_SESSIONS_KEY in data else counted
    return seed, count, name, errors


def _load_spec_document(
    file: SourceFile, data: dict, locate: JsonLocator, *, toml: bool
) -> LoadedSpec:
    errors = []
    for key in data:
        if key not in SPEC_KEYS:
            errors.append(
                locate.at(
                    (key,),
                    E_UNKNOWN_KEY,
                    f"unknown key '{key}' in a spec file",
                    key=True,
                    hint=did_you_mean(key, SPEC_KEYS),
                )
            )
    version = data.get("format_version")
    if version != SPEC_FORMAT_VERSION:
        errors.append(
            locate.at(
                ("format_version",),
                E_FORMAT_VERSION,
                f"spec format version {version!r} is not supported (this tracedsl reads {SPEC_FORMAT_VERSION})",
            )
        )
    name = data.get("workload", file.path.stem)
    if not isinstance(name, str) or not name:
        errors.append(locate.at(("workload",), E_INVALID, "workload must be a non-empty string"))
    if "generation_params" not in data:
        errors.append(locate.at((), E_INVALID, "a spec file needs a generation_params object"))
    if errors:
        raise DiagnosticError(errors)
    params, warnings = _validate(
        data["generation_params"], locate, ("generation_params",), toml=toml
    )
    return LoadedSpec(name, params, file.path, file.sha256, "spec", warnings=warnings)


def _validate(
    data: Any, locate: JsonLocator, prefix: tuple, *, toml: bool
) -> tuple[GenerationParams, tuple[Diagnostic, ...]]:
    if not isinstance(data, dict):
        raise DiagnosticError(
            locate.at(
                prefix,
                E_NOT_OBJECT,
                f"expected an object of generation parameters, found {_json_type(data)}",
            )
        )
    data, warnings, errors = normalise_legacy(data, locate, prefix)
    if toml:
        data = restore_none(data)
    params, problems = validate_params(data)
    errors.extend(_problem_diagnostic(_named_for_class(problem, data), locate, prefix) for problem in problems)
    if errors:
        raise DiagnosticError(errors + warnings)
    warnings.extend(
        locate.at(
            _split(p.path), p.code or W_CONSTANT, _in_class_words(p.message, p.path, params), severity=Severity.WARNING,
            hint=p.hint, prefix=prefix,
        )
        for p in warnings_for(params)
    )
    return params, tuple(warnings)


def _named_for_class(problem: FieldProblem, data: dict) -> FieldProblem:
    """A problem of a class's body, its message naming the class (its JSON path says where)."""
    found = class_of_path(problem.path)
    classes = data.get("classes")
    if found is None or not isinstance(classes, list) or found[0] >= len(classes):
        return problem
    name = classes[found[0]].get("name") if isinstance(classes[found[0]], dict) else None
    message = body_message(problem.message)
    return dataclasses.replace(problem, message=f"class '{name}': {message}" if isinstance(name, str) else message)


def _in_class_words(message: str, path: str, params: GenerationParams) -> str:
    """A class body's warning, naming the class (its JSON path says where)."""
    found = class_of_path(path)
    if found is None or params.classes is None:
        return message
    return f"class '{params.classes[found[0]].name}': {message}"


def normalise_legacy(
    data: dict, locate: JsonLocator, prefix: tuple = ()
) -> tuple[dict, list[Diagnostic], list[Diagnostic]]:
    """Rewrite the reference's legacy top-level spellings; return (data, warnings, errors)."""
    data = dict(data)
    warnings: list[Diagnostic] = []
    errors: list[Diagnostic] = []
    for camel, snake in _CAMEL_TO_SNAKE.items():
        if camel not in data:
            continue
        value = data.pop(camel)
        if snake in data and data[snake] != value:
            errors.append(
                locate.at(
                    (camel,),
                    E_LEGACY_CONFLICT,
                    f"'{camel}' and '{snake}' are both given and differ",
                    key=True,
                    prefix=prefix,
                )
            )
            continue
        data[snake] = value
        warnings.append(
            locate.at(
                (camel,),
                W_LEGACY,
                f"'{camel}' is a legacy camelCase spelling; write '{snake}'",
                key=True,
                severity=Severity.WARNING,
                prefix=prefix,
            )
        )
    if "system_prompt_tokens" in data:
        data.pop("system_prompt_tokens")
        warnings.append(
            locate.at(
                ("system_prompt_tokens",),
                W_LEGACY,
                "'system_prompt_tokens' was removed from the reference and is ignored",
                key=True,
                severity=Severity.WARNING,
                prefix=prefix,
                hint="the system prompt is part of cache.layer1_tokens",
            )
        )
    if "restart_fraction" in data:
        value = data.pop("restart_fraction")
        current = data.get("restart_initial_probability")
        if current is not None and current != value:
            errors.append(
                locate.at(
                    ("restart_fraction",),
                    E_LEGACY_CONFLICT,
                    f"restart_fraction ({value}) differs from restart_initial_probability ({current})",
                    key=True,
                    prefix=prefix,
                    hint="remove restart_fraction, the legacy spelling",
                )
            )
        else:
            data["restart_initial_probability"] = value
            warnings.append(
                locate.at(
                    ("restart_fraction",),
                    W_LEGACY,
                    "'restart_fraction' is the legacy spelling of 'restart_initial_probability'",
                    key=True,
                    severity=Severity.WARNING,
                    prefix=prefix,
                )
            )
    return data, warnings, errors


def restore_none(data: dict, path: tuple = (), root: dict | None = None) -> dict:
    """Put back the nulls a TOML file cannot hold: a missing optional field is none.

    A union (a distribution of any family) follows the member the value is, from ``root``,
    the whole spec's dict.
    """
    root = data if root is None else root
    model = model_at(path, root)
    if model is None:
        return data
    out = dict(data)
    for name, info in model.model_fields.items():
        if name == "kind":
            continue
        value = out.get(name)
        if name not in out and _allows_none(info.annotation):
            out[name] = None
        elif isinstance(value, dict):
            out[name] = restore_none(value, (*path, name), root)
        elif isinstance(value, list):  # a class's body (classes.<i>.params), a mix's components
            out[name] = [restore_none(item, (*path, name, str(i)), root) if isinstance(item, dict) else item
                         for i, item in enumerate(value)]
    return out


def _allows_none(annotation: Any) -> bool:
    import typing

    return type(None) in typing.get_args(annotation)


# ---------------------------------------------------------------------------------------------
# --set PATH=VALUE

_DERIVED = {
    "mean": ("mu", "sigma"),
    "median": ("mu", "sigma"),
    "mu": ("mean", "median"),
    "sigma": ("mean", "median"),
    "allow_truncation": ("max_session_attempts",),
}
_SUFFIXED = re.compile(r"^([0-9][0-9_]*(?:\.[0-9_]+)?)([kM])$")


def apply_overrides(params: GenerationParams, overrides: list[str]) -> GenerationParams:
    """Apply ``path=value`` overrides (``--set``) and validate the result like a spec.

    A path is the language's (``turn.output.mean=2k``, ``turn.delay.agentic.mean=3s``,
    ``context=128k``: language/paths.py, values by the language's unit rules) or spec.json's
    (``generation_length.mean=2000``; numbers take k and M).
    """
    if not overrides:
        return params
    data = params.generation_params()
    original = params.generation_params()  # what the classes inherit, before any override
    errors: list[Diagnostic] = []
    explicit: set[tuple[str, ...]] = set()
    for override in overrides:
        path_text, sep, value_text = override.partition("=")
        path = tuple(part.strip() for part in path_text.strip().split("."))
        if not sep or not all(path):
            errors.append(
                Diagnostic(
                    E_OVERRIDE,
                    f"'{override}' is not PATH=VALUE",
                    file="--set",
                    hint="e.g. --set cache.layer2.mean=20000",
                )
            )
            continue
        language = is_language_path(path)
        if language:  # turn.output.mean=2k: the language's words and units
            try:
                path, value = translate(path, value_text.strip(), params)
            except PathProblem as problem:
                errors.append(Diagnostic(E_OVERRIDE, str(problem), file="--set",
                                         path=".".join(path), hint=problem.hint))
                continue
        else:
            value = _parse_value(value_text.strip())
        explicit.add(path)
        # A top-level default is inherited: it sets each class that inherits it too (paths.py).
        heirs = inherited_by(original, path) if path[0] != "classes" else []
        for index in heirs:
            explicit.add(("classes", str(index), "params", *path))
        # translate() checked a language path against the spec's own families (a delay's law
        # too, which the field table cannot see); a spec.json path is checked here
        problem = _set_path(data, path, value, explicit, checked=language)
        for index in heirs if problem is None else ():
            _set_path(data, ("classes", str(index), "params", *path), value, explicit, checked=True)
        # A subagent's body inherits from the body it is in: the set reaches it too (paths.py).
        in_class = path[0] == "classes"
        field = path[3:] if in_class else path
        bases = [path[:3]] if in_class else [(), *(("classes", str(index), "params") for index in heirs)]
        for base in bases if problem is None else ():
            for heir in subagents_inheriting(original, base, field):
                explicit.add((*heir, *field))
                _set_path(data, (*heir, *field), value, explicit, checked=True)
        if problem:
            errors.append(
                Diagnostic(
                    E_OVERRIDE, problem[0], file="--set", path=".".join(path), hint=problem[1]
                )
            )
    if errors:
        raise DiagnosticError(errors)
    new_params, problems = validate_params(data)
    if problems:
        problems = [_named_for_class(p, data) for p in problems]
        raise DiagnosticError(
            [
                Diagnostic(E_INVALID, p.message, file="--set", path=p.path, hint=p.hint)
                for p in problems
            ]
        )
    return new_params


def _set_path(
    data: dict, path: tuple[str, ...], value: Any, explicit: set[tuple[str, ...]], checked: bool = False
) -> tuple[str, str | None] | None:
    node: Any = data
    for depth, part in enumerate(path):
        if isinstance(node, list):  # classes.<i>: the class's own object
            if not (part.isdigit() and int(part) < len(node)):
                return f"no class {part} in {'.'.join(path[:depth])} (it holds {len(node)})", None
            node = node[int(part)]
            continue
        known = None if checked else field_names(path[:depth], data)
        if not checked and (known is None or part not in known):
            where = ".".join(path[:depth]) or "the top level"
            message = f"no field '{part}' in {where}"
            model = model_at(path[:depth], data)
            family = model.model_fields["kind"].default if model and "kind" in model.model_fields else None
            if isinstance(family, str) and known:  # a family's law: say which, and its keywords
                message += f": a {family} has no '{part}' (its keywords: {', '.join(known)})"
            return message, did_you_mean(part, known or [])
        if depth == len(path) - 1:
            node[part] = value
            # Drop values derived from the one just set (mu/sigma from mean/median…), unless
            # they were set explicitly too, so the validator derives them afresh.
            for derived in _DERIVED.get(part, ()):
                if (*path[:-1], derived) not in explicit:
                    node.pop(derived, None)
            return None
        if isinstance(node.get(part), list):
            node = node[part]
            continue
        if not isinstance(node.get(part), dict):
            node[part] = {}  # e.g. turns.mean=12 when turns was none
        node = node[part]
    return None


def _parse_value(text: str) -> Any:
    if text.lower() in ("none", "null"):
        return None
    match = _SUFFIXED.match(text)
    if match:
        number = float(match.group(1).replace("_", "")) * (
            1000 if match.group(2) == "k" else 1_000_000
        )
        return int(number) if number.is_integer() else number
    try:
        return json.loads(text.replace("_", "") if re.fullmatch(r"[0-9_.eE+-]+", text) else text)
    except ValueError:
        return text


# ---------------------------------------------------------------------------------------------
# Locating problems in the JSON text


def _problem_diagnostic(problem: FieldProblem, locate: JsonLocator, prefix: tuple) -> Diagnostic:
    unknown = problem.kind == "unknown"
    main = locate.at(
        _split(problem.path),
        E_UNKNOWN_KEY if unknown else E_INVALID,
        problem.message,
        key=unknown,
        hint=problem.hint,
        prefix=prefix,
    )
    related = tuple(
        locate.at(_split(other), E_INVALID, f"(and here: {other})", prefix=prefix)
        for other in problem.paths[1:]
        if locate.positions and locate.positions.span((*prefix, *_split(other))) != main.span
    )
    return Diagnostic(
        main.code, main.message, main.severity, main.file, main.span, main.hint, main.path, related
    )


def _split(path: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in path.split(".")) if path else ()


def _json_type(value: Any) -> str:
    return {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        type(None): "null",
        int: "a number",
        float: "a number",
    }.get(type(value), type(value).__name__)


def _shown(value: Any) -> str:
    """A JSON value as a message quotes it: numbers as written, other things by their type."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value)
    if isinstance(value, str):
        return f"the string {json.dumps(value[:40])}"
    return _json_type(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
