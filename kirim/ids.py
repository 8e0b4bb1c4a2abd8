"""Public ids: `<prefix>_<ULID>`, what clients see instead of database primary keys."""

import functools
import re

from django.db import models
from ulid import ULID

_PUBLIC_ID = re.compile(r"^(?P<prefix>[a-z]+)_[0-9A-HJKMNP-TV-Z]{26}$")


def new_public_id(prefix):
    return f"{prefix}_{ULID()}"


def is_public_id(value, prefix):
    match = _PUBLIC_ID.match(value) if isinstance(value, str) else None
    return bool(match) and match["prefix"] == prefix


class PublicIdField(models.CharField):
    """A unique, indexed `external_id` column filled with a fresh `<prefix>_<ULID>` on insert."""

    def __init__(self, prefix=None, **kwargs):
        self.prefix = prefix
        kwargs.setdefault("max_length", 32)
        kwargs.setdefault("unique", True)
        kwargs.setdefault("editable", False)
        if prefix is not None:
            kwargs.setdefault("default", functools.partial(new_public_id, prefix))
        super().__init__(**kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["prefix"] = self.prefix
        return name, path, args, kwargs
