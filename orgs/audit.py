"""The audit log's one writer: who (the request's staff user or API key, or the command line), what,
to what, from which address. Doors call it once the action is done, with the request they answer."""

from orgs.models import AuditEntry
from orgs.ratelimit import KeyCheck, client_address

COMMAND_LINE = "command line"


def audit_record(request, action, *, org, target, detail=""):
    """One entry for `action` on `target` (a model instance with a public id, or text) in `org`.
    `request` is None for a management command."""
    user = key = None
    if request is None:
        actor = COMMAND_LINE
    elif isinstance(getattr(request, "auth", None), KeyCheck):
        key = request.auth.key
        actor = f"API key {key.external_id} ({key.name or key.display_prefix})"
    else:
        user = request.user
        actor = user.get_username()
    return AuditEntry.objects.create(
        org_id=getattr(org, "pk", org),
        action=action,
        actor=actor[:200],
        actor_user=user,
        actor_key=key,
        target=str(getattr(target, "external_id", None) or target)[:200],
        detail=detail[:300],
        address=client_address(request) if request is not None else "",
    )
