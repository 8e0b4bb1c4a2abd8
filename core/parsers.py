"""JSON in: the one parser /v1/ accepts, and the checks any JSON Kirim takes in must pass.

A body is UTF-8 JSON (RFC 8259), nested at most MAX_DEPTH levels (deeper input exhausts Python's
recursion in the parser, the renderer or the database driver). Every value must be storable as
PostgreSQL JSON and sendable to Meta: no NUL character, no lone UTF-16 surrogate (`"\\ud800"` parses
to a str that cannot be encoded), no non-finite number (`1e999` parses to Infinity, as do the
`NaN` and `Infinity` literals Python's json accepts). The size and the charset of a body are
checked earlier, before anything is read (core.middleware.BodyGateMiddleware)."""

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import IO, Any

from rest_framework.parsers import BaseParser

from core.errors import InvalidField, InvalidRequest

MAX_DEPTH = 64  # Meta's deepest bodies (templates, interactive messages) nest about 8 levels
NUL = "\x00"
LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # a parsed str holds surrogates only when unpaired


@dataclass(frozen=True)
class Unstorable:
    """Where a parsed JSON value cannot be stored, and why. `param` is dotted (`text.body`,
    `template.components.0`); `body` for the top level or a bad key of it."""

    param: str
    problem: str
    too_deep: bool = False


def _string_problem(text: str) -> str | None:
    if NUL in text:
        return "contains a NUL character"
    if LONE_SURROGATE.search(text):
        return "contains a lone UTF-16 surrogate"
    return None


# In JSON text, the only way to a NUL or a lone surrogate in a parsed value: its escape.
_NUL_OR_SURROGATE_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


def loads_noting_unstorable(text: str) -> tuple[Any, bool]:
    """JSON `text` parsed, and whether a value in it may be unstorable. When not, `find_unstorable`
    need not walk the values (on Meta's common webhook the walk and a pattern standing in for it cost
    more than parsing): the parser reports non-finite numbers itself, and the text shows any NUL or
    surrogate escape, and any depth past MAX_DEPTH in its count of brackets. True is only a maybe."""
    nonfinite: list[str] = []

    def number(literal: str) -> float:
        value = float(literal)
        if not math.isfinite(value):
            nonfinite.append(literal)
        return value

    def constant(name: str) -> float:  # NaN, Infinity, -Infinity: Python's json takes them
        nonfinite.append(name)
        return float(name)

    value = json.loads(text, parse_float=number, parse_constant=constant)
    suspect = (
        bool(nonfinite)
        or text.count("{") + text.count("[") >= MAX_DEPTH
        or _NUL_OR_SURROGATE_ESCAPE.search(text) is not None
    )
    return value, suspect


def find_unstorable(value: object, path: str = "", depth: int = 0) -> Unstorable | None:
    """The first part of `value` (parsed JSON) that cannot be stored, or None."""
    if isinstance(value, str):
        problem = _string_problem(value)
        return Unstorable(path or "body", problem) if problem else None
    if isinstance(value, float):
        return None if math.isfinite(value) else Unstorable(path or "body", "is not a finite number")
    items: Iterable[tuple[object, object]]
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    if depth >= MAX_DEPTH:
        return Unstorable(path or "body", f"nests deeper than {MAX_DEPTH} levels", too_deep=True)
    for key, item in items:
        if isinstance(key, str):
            problem = _string_problem(key)
            if problem:
                return Unstorable(path or "body", f"has a key that {problem}")
        found = find_unstorable(item, f"{path}.{key}" if path else str(key), depth + 1)
        if found:
            return found
    return None


def parse_json(raw: bytes) -> Any:
    """`raw` bytes as JSON that Kirim can store, or an ApiError for the contract's envelope."""
    try:
        data, suspect = loads_noting_unstorable(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise InvalidRequest("The body is not UTF-8.", code="invalid_json") from None
    except RecursionError:
        raise InvalidRequest(f"The body nests deeper than {MAX_DEPTH} levels.", code="invalid_json") from None
    except ValueError:
        raise InvalidRequest("The body is not valid JSON.", code="invalid_json") from None
    unstorable = find_unstorable(data) if suspect else None
    if unstorable is None:
        return data
    if unstorable.too_deep:
        raise InvalidRequest(f"The body nests deeper than {MAX_DEPTH} levels.", code="invalid_json")
    raise InvalidField(unstorable.param, f"`{unstorable.param}` {unstorable.problem}.")


class StrictJSONParser(BaseParser):
    media_type = "application/json"

    def parse(
        self, stream: IO[Any], media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        return parse_json(stream.read())
