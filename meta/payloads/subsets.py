"""Meta's payload cut down, kept as Meta sent it otherwise: what one org's subscribers receive of it,
and what a deletion leaves of it."""

from collections.abc import Callable

from meta.payloads.callback import split_callback_data
from meta.payloads.events import Json
from meta.payloads.shapes import as_dict, as_list, number_of

# Where an item names the user it is from or for, and where a contact names its user: a contact
# belongs to the items that name one of its ids (a message's sender, a status's recipient).
ITEM_USER_FIELDS = ("from", "from_user_id", "recipient_id", "recipient_user_id", "recipient_participant_id",
                    "recipient_participant_user_id")  # fmt: skip
CONTACT_USER_FIELDS = ("wa_id", "user_id")


def meta_subset(payload: object, kind: str, keep: Callable[[str, Json], bool]) -> Json | None:
    """Meta's payload cut down to the `kind` items ("messages" or "statuses") for which
    `keep(phone_number_id, item)` holds: what Meta itself would have sent a subscriber of those items
    alone. Every field Meta sent stays as Meta sent it, fields Kirim does not know included, at every
    level; `contacts` keeps those of the items kept; a status's biz_opaque_callback_data is its
    sender's own. None when no item is left. What an org's subscribers receive."""

    def value_kept(entry: Json, change: Json, value: Json) -> Json | None:
        if change.get("field") != "messages":
            return None
        phone_number_id = number_of(value)
        items = [i for i in as_list(value.get(kind)) if isinstance(i, dict) and keep(phone_number_id, i)]
        if not items:
            return None
        kept = {id(item) for item in items}
        left_out = [
            item
            for other in ("messages", "statuses")
            for item in as_list(value.get(other))
            if isinstance(item, dict) and id(item) not in kept
        ]
        subset: Json = {}  # Meta's keys in Meta's order
        for key, field_value in value.items():
            if key == kind:
                subset[key] = [_without_our_callback_data(i) for i in items] if kind == "statuses" else items
            elif key == "contacts" and left_out:  # else every item is kept, and every contact with it
                if contacts := _contacts_kept(as_list(field_value), items, left_out):
                    subset[key] = contacts
            elif key not in ("messages", "statuses"):
                subset[key] = field_value
        return subset

    return _with_changes_kept(payload, value_kept)


def _without_our_callback_data(status: Json) -> Json:
    """A status as its sender gets it from Meta: biz_opaque_callback_data is the value the sender gave
    Kirim, and absent when it gave none (Meta leaves it out then), with Kirim's own id taken out."""
    if "biz_opaque_callback_data" not in status:
        return status
    _, callers_own = split_callback_data(status["biz_opaque_callback_data"])
    if callers_own is None:
        return {k: v for k, v in status.items() if k != "biz_opaque_callback_data"}
    return {**status, "biz_opaque_callback_data": callers_own}  # in its place among Meta's keys


def _ids(item: Json, fields: tuple[str, ...]) -> set[str]:
    return {str(item[name]) for name in fields if item.get(name)}


def _contacts_kept(contacts: list[object], kept: list[Json], left_out: list[Json]) -> list[object]:
    """Meta's contacts, in Meta's order, less those that belong only to items left out (another
    kind's, a message delivered before): a contact Kirim cannot tie to an item is kept."""
    named_by_kept = set().union(*(_ids(item, ITEM_USER_FIELDS) for item in kept))
    named_by_left_out = set().union(*(_ids(item, ITEM_USER_FIELDS) for item in left_out))
    return [
        contact
        for contact in contacts
        if not isinstance(contact, dict)
        or (ids := _ids(contact, CONTACT_USER_FIELDS)) & named_by_kept
        or not ids & named_by_left_out
    ]


def field_subset(
    payload: object, field: str, keep_change: Callable[[str, str], bool], keep_echo: Callable[[Json], bool]
) -> Json | None:
    """Meta's payload cut down to its changes of `field` for which `keep_change(WABA id, the value's
    phone_number_id or "")` holds, each as Meta sent it; of `smb_message_echoes`, only the echoes for
    which `keep_echo(echo)` holds (Meta delivers at least once: those not passed on before). None when
    nothing is left. What an org's subscribers to that field's event type receive."""

    def value_kept(entry: Json, change: Json, value: Json) -> Json | None:
        if change.get("field") != field or not keep_change(str(entry.get("id") or ""), number_of(value)):
            return None
        if field == "smb_message_echoes":
            echoes = [e for e in as_list(value.get("message_echoes")) if isinstance(e, dict) and keep_echo(e)]
            return {**value, "message_echoes": echoes} if echoes else None
        return value

    return _with_changes_kept(payload, value_kept)


def _with_changes_kept(payload: object, value_kept: Callable[[Json, Json, Json], Json | None]) -> Json | None:
    """Meta's payload with each change's value replaced by `value_kept(entry, change, value)`, and the
    changes it gives None for left out, with the entries left without a change. None when none is left."""
    entries = []
    for entry in as_list(as_dict(payload).get("entry")):
        changes = []
        for change in as_list(as_dict(entry).get("changes")):
            change = as_dict(change)
            value = value_kept(as_dict(entry), change, as_dict(change.get("value")))
            if value is not None:
                changes.append({**change, "value": value})
        if changes:
            entries.append({**entry, "changes": changes})
    return {**as_dict(payload), "entry": entries} if entries else None


# Where a payload carries message objects: `messages` and `message_echoes` in a change's value, and
# `messages` of each history thread.
def without_message(payload: object, wamid: str) -> bool:
    """Meta's payload with message `wamid` and the edits of it taken out, wherever it is: what a
    deletion leaves of a kept webhook or an event not yet delivered. Whether anything was taken out."""
    taken = False

    def kept(items: list[object]) -> list[object]:
        nonlocal taken
        left = [
            item for item in items
            if not (isinstance(item, dict) and (item.get("id") == wamid
                    or as_dict(item.get("edit")).get("original_message_id") == wamid))
        ]  # fmt: skip
        taken = taken or len(left) < len(items)
        return left

    for entry in as_list(as_dict(payload).get("entry")):
        for change in as_list(as_dict(entry).get("changes")):
            value = as_dict(as_dict(change).get("value"))
            for key in ("messages", "message_echoes"):
                if isinstance(value.get(key), list):
                    value[key] = kept(value[key])
            for chunk in as_list(value.get("history")):
                for thread in as_list(as_dict(chunk).get("threads")):
                    if isinstance(as_dict(thread).get("messages"), list):
                        thread["messages"] = kept(thread["messages"])
    return taken


def has_items(payload: object) -> bool:
    """Whether a payload still carries a message, a status or another field's change."""
    for entry in as_list(as_dict(payload).get("entry")):
        for change in as_list(as_dict(entry).get("changes")):
            value = as_dict(as_dict(change).get("value"))
            if as_dict(change).get("field") not in ("messages", "smb_message_echoes"):
                return True
            if any(as_list(value.get(key)) for key in ("messages", "statuses", "message_echoes")):
                return True
    return False
