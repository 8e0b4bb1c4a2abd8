"""The one parser /v1/ accepts: JSON, strict (no NaN), with no NUL characters anywhere, since
PostgreSQL can store none in text or JSON and Meta accepts none either."""

from rest_framework.parsers import JSONParser

from kirim.errors import InvalidField

NUL = "\x00"


def find_nul(value, path=""):
    """The dotted path of the first string or key holding a NUL character, or None."""
    if isinstance(value, str):
        return (path or "body") if NUL in value else None
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        here = f"{path}.{key}" if path else str(key)
        if NUL in str(key):
            return path or "body"
        found = find_nul(item, here)
        if found:
            return found
    return None


class StrictJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        param = find_nul(data)
        if param:
            raise InvalidField(param, f"`{param}` contains a NUL character.")
        return data
