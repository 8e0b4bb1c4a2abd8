"""Blocking users on a number, through Meta's Block Users API: Meta decides (only users who wrote in
the last 24 hours can be blocked; each user succeeds or fails alone), and Kirim keeps on each Contact
what Meta did, so the inbox shows a blocked contact as blocked."""

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from inbox.models import Contact, Conversation, PhoneNumber
from meta import graph as meta_graph
from meta.graph.client import Json

MAX_USERS = 1000  # Meta's limit per request


def users_block(phone_number: PhoneNumber, users: list[Json], *, block: bool = True) -> tuple[int, Json]:
    """Block (or unblock) `users`, Meta's list of {"user": ...} or {"user_id": ...}: (HTTP status,
    Meta's answer). The contacts Meta blocked or unblocked are marked so; the others are left as
    they were. The call to Meta is made with no transaction open."""
    status, answer = meta_graph.block_users(phone_number, users, block=block)
    results = answer.get("block_users")
    results = results if isinstance(results, dict) else {}
    done = [user for user in results.get("added_users" if block else "removed_users") or [] if isinstance(user, dict)]
    with transaction.atomic():
        for key in _contact_keys(phone_number, done):
            Contact.objects.update_or_create(
                phone_number=phone_number,
                contact_wa_id=key,
                defaults={
                    "org_id": phone_number.org_id,
                    "blocked": block,
                    "blocked_at": timezone.now() if block else None,
                },
            )
    return status, answer


def _contact_keys(phone_number: PhoneNumber, users: Iterable[Json]) -> set[str]:
    """The conversation key of each user Meta answered for: the conversation that knows its user id,
    else its wa_id (what Meta answers for a number), else what was asked."""
    user_ids = {str(u["user_id"]) for u in users if u.get("user_id")}
    known = dict(
        Conversation.objects.filter(phone_number=phone_number, contact_user_id__in=user_ids).values_list(
            "contact_user_id", "contact_wa_id"
        )
    ) if user_ids else {}  # fmt: skip
    return {
        known.get(str(u.get("user_id") or "")) or str(u.get("wa_id") or u.get("user_id") or u.get("input") or "")
        for u in users
    } - {""}
