"""`loads_noting_unstorable` lets a webhook or an API body skip walking its values: it must never call
a body clean that holds a value the database cannot store."""

import json

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from core.parsers import MAX_DEPTH, find_unstorable, loads_noting_unstorable


# Number tokens as they may appear in JSON text, some past a double's range (1e999, 400 digits).
class Token(str):
    """A number written into the text as it is."""


NUMBER_TOKENS = st.from_regex(r"-?(0|[1-9][0-9]{0,399})(\.[0-9]{1,4})?([eE][+-]?[0-9]{1,4})?", fullmatch=True)
# Any code point, lone surrogates and NUL included.
STRINGS = st.text(st.characters(codec=None, exclude_categories=()), max_size=12)
LEAVES = st.one_of(STRINGS, st.floats(), st.integers(), st.booleans(), st.none(), NUMBER_TOKENS.map(Token))
VALUES = st.recursive(LEAVES, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(STRINGS, inner, max_size=4))


def as_text(value, ensure_ascii):
    """`value` as JSON text, its tokens written as they are."""
    tokens = []

    def encode(node):
        if isinstance(node, Token):
            tokens.append(node)
            return f"@@{len(tokens) - 1}@@"
        if isinstance(node, list):
            return [encode(item) for item in node]
        if isinstance(node, dict):
            return {key: encode(item) for key, item in node.items()}
        return node

    text = json.dumps(encode(value), ensure_ascii=ensure_ascii)
    for n, token in enumerate(tokens):
        text = text.replace(f'"@@{n}@@"', token)
    return text.encode("utf-8", errors="replace").decode("utf-8")  # as a body arrives: UTF-8, no raw surrogate


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(VALUES, st.booleans())
@example({"text": "caf\u00e9 \U0001f600"}, True)  # a surrogate pair's escape: only a maybe
@example({"n": Token("1e999")}, False)
@example({"n": Token("-" + "9" * 310 + ".5")}, False)
@example([{"a": "\x00"}], False)
@example({"a": "\x00"}, True)
@example({"a": "\ud83d"}, True)
@example({"a": float("nan")}, False)
@example({"a": float("-inf")}, False)
def test_a_body_called_clean_holds_nothing_unstorable(value, ensure_ascii):
    parsed, suspect = loads_noting_unstorable(as_text(value, ensure_ascii))

    assert suspect or find_unstorable(parsed) is None


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 3 * MAX_DEPTH])
def test_a_body_deep_enough_to_be_refused_is_never_called_clean(depth):
    parsed, suspect = loads_noting_unstorable("[" * depth + "]" * depth)

    assert find_unstorable(parsed) is not None
    assert suspect


def test_metas_common_webhook_is_clean():
    from fakemeta import payloads

    message = payloads.text_message("wamid.HBgLNjI4MTIzNDU2Nzg5FQIAEhgUM0VCMDQ2", "6281234567890", "Halo, ada stok?")
    body = payloads.encode(payloads.webhook("106540352242922", messages=[message])).decode()

    assert loads_noting_unstorable(body) == (json.loads(body), False)
