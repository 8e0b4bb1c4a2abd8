"""Secret columns, for the tests that ask every admin and API list about them."""

import re

from django.db.models import BinaryField, CharField, TextField, UUIDField

from inbox.models import Message

# Names that say "secret" in a column, whichever model it is on.
SECRET_NAME = re.compile(r"secret|token|digest|password|credential|hash|session_key")
SECRET_TYPES = (CharField, TextField, UUIDField, BinaryField)
# Columns with such a name that are not secrets, and why.
NOT_SECRETS = {(Message, "claim_token"): "a lease's id, held for seconds: it opens nothing"}
SECRET_LOOKUPS = ("", "__exact", "__startswith", "__istartswith", "__contains", "__regex", "__gte", "__in", "__isnull")


def secret_columns(model):
    """The model's columns that hold a secret: those it declares, and any named like one."""
    for field in model._meta.get_fields():
        declared = field.name in getattr(model, "secret_fields", ())
        named = isinstance(field, SECRET_TYPES) and SECRET_NAME.search(field.name)
        if (declared or named) and (model, field.name) not in NOT_SECRETS:
            yield field.name


def paths_to_secrets(model, relations=2, seen=()):
    """Every lookup path from `model` to a secret column, over up to `relations` relations either way
    (`phone_number__org__api_keys__digest` is three)."""
    yield from secret_columns(model)
    if not relations:
        return
    for field in model._meta.get_fields():
        if field.is_relation and field.related_model not in (None, model, *seen):
            for path in paths_to_secrets(field.related_model, relations - 1, (*seen, model)):
                yield f"{field.name}__{path}"
