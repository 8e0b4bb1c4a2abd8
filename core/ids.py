"""Public ids: `<prefix>_<ULID>`, what clients see instead of database primary keys."""

import functools
import re
from typing import Any

from django.db import models
from ulid import ULID

_PUBLIC_ID = re.compile(r"^(?P<prefix>[a-z]+)_[0-9A-HJKMNP-TV-Z]{26}$")


def new_public_id(prefix: str) -> str:
    return f"{prefix}_{ULID()}"


def is_public_id(value: object, prefix: str) -> bool:
    match = _PUBLIC_ID.match(value) if isinstance(value, str) else None
    return match is not None and match["prefix"] == prefix


class PublicIdField(models.CharField):  # type: ignore[type-arg]  # generic only in the stubs
    """A unique, indexed `external_id` column filled with a fresh `<prefix>_<ULID>` on insert."""

    def __init__(self, prefix: str | None = None, **kwargs: Any) -> None:
        self.prefix = prefix
        kwargs.setdefault("max_length", 32)
        kwargs.setdefault("unique", True)
        kwargs.setdefault("editable", False)
        if prefix is not None:
            kwargs.setdefault("default", functools.partial(new_public_id, prefix))
        super().__init__(**kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        kwargs["prefix"] = self.prefix
        return name, path, args, kwargs
