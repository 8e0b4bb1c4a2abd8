"""The audit log's one writer: who (the request's staff user or API key, the command line, or Kirim
itself), what, to what, from which address. Doors call audit_record once the action is done, with the
request they answer; a service that several doors call records its own actions with audit_write."""

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db.models import Model
from django.http import HttpRequest
from rest_framework.request import Request

from orgs.models import ApiKey, AuditEntry, Org
from orgs.ratelimit import KeyCheck, client_address

COMMAND_LINE = "command line"


def audit_record(
    request: HttpRequest | Request | None, action: str, *, org: Org | int, target: Model | str, detail: str = ""
) -> AuditEntry:
    """One entry for `action` on `target` (a model instance with a public id, or text) in `org`.
    `request` is None for a management command."""
    if request is None:
        return audit_write(action, org=org, target=target, detail=detail)
    auth = getattr(request, "auth", None)
    key = auth.key if isinstance(auth, KeyCheck) else None
    return audit_write(action, org=org, target=target, detail=detail, user=None if key else request.user, key=key,
                       address=client_address(request))  # fmt: skip


def audit_write(
    action: str,
    *,
    org: Org | int,
    target: Model | str,
    detail: str = "",
    user: AbstractBaseUser | AnonymousUser | None = None,
    key: ApiKey | None = None,
    address: str = "",
    by: str = COMMAND_LINE,
) -> AuditEntry:
    """One entry for `action` on `target` in `org`, done by the staff `user` or the API `key` from
    `address`; by neither: by `by` (the command line, or Kirim itself)."""
    if key is not None:
        actor = f"API key {key.external_id} ({key.name or key.display_prefix})"
    elif user is not None:
        actor = user.get_username()
    else:
        actor = by
    return AuditEntry.objects.create(
        org_id=getattr(org, "pk", org),
        action=action,
        actor=actor[:200],
        actor_user_id=None if user is None else user.pk,
        actor_key=key,
        target=str(getattr(target, "external_id", None) or target)[:200],
        detail=detail[:300],
        address=address,
    )
