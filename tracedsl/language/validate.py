"""Validates reference-shaped data against the IR and names every problem by its field path."""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from tracedsl import families
from tracedsl.ir import GenerationParams, Issue, ParamsError, params_warnings

# Union tags pydantic puts into error locations (the families' names); they are not field names.
_UNION_TAGS = frozenset(families.names())


@dataclass(frozen=True)
class FieldProblem:
    """One validation problem: the field paths it involves (first is the main one), what, a hint."""

    paths: tuple[str, ...]
    message: str
    hint: str | None = None
    kind: str = "invalid"  # "unknown" for a key the IR does not have, else "invalid"

    @property
    def path(self) -> str:
        return self.paths[0] if self.paths else ""


def validate_params(data: Any) -> tuple[GenerationParams | None, list[FieldProblem]]:
    """Validate a reference-shaped dict; return the params, or None and every problem found."""
    try:
        return GenerationParams.model_validate(data), []
    except ValidationError as exc:
        return None, problems_from(exc)
    except ParamsError as exc:  # pragma: no cover - pydantic wraps it, but be safe
        return None, [_from_issue((), issue) for issue in exc.issues]
    except (RecursionError, OverflowError) as exc:
        return None, [FieldProblem(("",), f"cannot validate: {type(exc).__name__}")]


def warnings_for(params: GenerationParams) -> list[FieldProblem]:
    return [_from_issue((), issue) for issue in params_warnings(params)]


def problems_from(error: ValidationError) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    for err in error.errors():
        loc = tuple(str(part) for part in err["loc"] if part not in _UNION_TAGS)
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, ParamsError):
            problems.extend(_from_issue(loc, issue) for issue in cause.issues)
        elif err["type"] == "extra_forbidden":
            problems.append(_unknown_key(loc))
        elif err["type"] == "union_tag_invalid":
            ctx = err.get("ctx") or {}
            tag, expected = ctx.get("tag"), str(ctx.get("expected_tags", "")).replace("'", "")
            problems.append(
                FieldProblem(
                    (".".join(loc),),
                    f"unknown distribution kind '{tag}' (known: {expected})",
                    did_you_mean(str(tag), expected.split(", ")),
                )
            )
        else:
            path = ".".join(loc)
            message = err["msg"]
            if message.startswith("Value error, "):
                message = message[len("Value error, ") :]
            if err["type"] == "missing":
                message = f"{path} is required"
            elif path:
                message = f"{path}: {_lower_first(message)}"
            problems.append(FieldProblem((path,), message))
    return problems


def _from_issue(loc: tuple[str, ...], issue: Issue) -> FieldProblem:
    prefix = ".".join(loc)
    paths = tuple(f"{prefix}.{p}" if prefix else p for p in issue.paths) or (prefix,)
    message = issue.message
    if prefix and not message.startswith(prefix):
        message = f"{prefix}: {message}"
    return FieldProblem(paths, message, issue.hint)


def _unknown_key(loc: tuple[str, ...]) -> FieldProblem:
    *parent, key = loc
    known = field_names(tuple(parent)) or []
    where = f" in {'.'.join(parent)}" if parent else ""
    return FieldProblem(
        (".".join(loc),), f"unknown key '{key}'{where}", did_you_mean(key, known), kind="unknown"
    )


def did_you_mean(word: str, choices: typing.Iterable[str]) -> str | None:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if not close and word.lower() in {c.lower() for c in choices}:
        close = [c for c in choices if c.lower() == word.lower()]
    return f"did you mean '{close[0]}'?" if close else None


def field_names(path: tuple[str, ...]) -> list[str] | None:
    """The keys the IR accepts at ``path`` (e.g. ``("cache", "layer2")``), or None if not an object."""
    model = model_at(path)
    return None if model is None else [name for name in model.model_fields if name != "kind"]


def model_at(path: tuple[str, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] | None = GenerationParams
    for part in path:
        if model is None or part not in model.model_fields:
            return None
        model = _model_in(model.model_fields[part].annotation)
    return model


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation such as ``Reset | None`` or a tagged union."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin is None and not isinstance(annotation, types.UnionType):
        return None
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text else text
