"""JSON in: the one parser /v1/ accepts, and the checks any JSON Kirim takes in must pass.

A body is UTF-8 JSON (RFC 8259), nested at most MAX_DEPTH levels (deeper input exhausts Python's
recursion in the parser, the renderer or the database driver). Every value must be storable as
PostgreSQL JSON and sendable to Meta: no NUL character, no lone UTF-16 surrogate (`"\\ud800"` parses
to a str that cannot be encoded), no non-finite number (`1e999` parses to Infinity, as do the
`NaN` and `Infinity` literals Python's json accepts). The size and the charset of a body are
checked earlier, before anything is read (kirim.middleware.BodyGateMiddleware)."""

import json
import math
import re
from dataclasses import dataclass

from rest_framework.parsers import BaseParser

from kirim.errors import InvalidField, InvalidRequest

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


def _string_problem(text):
    if NUL in text:
        return "contains a NUL character"
    if LONE_SURROGATE.search(text):
        return "contains a lone UTF-16 surrogate"
    return None


# What JSON text must contain for a value parsed from it to be unstorable: an escaped NUL (JSON refuses a
# raw one), a UTF-16 surrogate escape, the non-standard constants, a number that may overflow a double (an
# exponent of three digits, or 300 digits in a row). Brackets are counted for the depth.
_UNSTORABLE_SIGNS = re.compile(r"\\u0000|\\u[dD][89a-fA-F]|Infinity|NaN|\d[eE]\+?\d{3}|\d{300}")


def may_hold_unstorable(text):
    """False when no value parsed from JSON `text` can be unstorable, so `find_unstorable` need not walk
    them: Meta's common webhook, where the walk was a tenth of the work. True is only a maybe."""
    return text.count("{") + text.count("[") >= MAX_DEPTH or _UNSTORABLE_SIGNS.search(text) is not None


def find_unstorable(value, path="", depth=0):
    """The first part of `value` (parsed JSON) that cannot be stored, or None."""
    if isinstance(value, str):
        problem = _string_problem(value)
        return Unstorable(path or "body", problem) if problem else None
    if isinstance(value, float):
        return None if math.isfinite(value) else Unstorable(path or "body", "is not a finite number")
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


def parse_json(raw):
    """`raw` bytes as JSON that Kirim can store, or an ApiError for the contract's envelope."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise InvalidRequest("The body is not UTF-8.", code="invalid_json") from None
    except RecursionError:
        raise InvalidRequest(f"The body nests deeper than {MAX_DEPTH} levels.", code="invalid_json") from None
    except ValueError:
        raise InvalidRequest("The body is not valid JSON.", code="invalid_json") from None
    unstorable = find_unstorable(data)
    if unstorable is None:
        return data
    if unstorable.too_deep:
        raise InvalidRequest(f"The body nests deeper than {MAX_DEPTH} levels.", code="invalid_json")
    raise InvalidField(unstorable.param, f"`{unstorable.param}` {unstorable.problem}.")


class StrictJSONParser(BaseParser):
    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        return parse_json(stream.read())
