"""Meta's webhook payloads of 2025-2026, shaped as Meta's documentation describes them: business-scoped
user ids (BSUIDs: `user_id`, `parent_user_id` on a contact, `from_user_id` on a message, the phone
number (`wa_id`, `from`) left out once a user adopts a username), the `user_changed_user_id` system
message, group messages (`group_id`) and the `played` status of a voice message."""

import time

from conftest import PHONE_NUMBER_ID

PHONE = "16505551234"
USER_ID = "US.13491208655302741918"
PARENT_USER_ID = "US.ENT.11815799212886844830"
NEW_USER_ID = "US.48213370194467311842"
GROUP_ID = "Y2FwaV9ncm91cDoxNzA1NTU1MDEzOToxMjAzNjM0MDQ2OTQyMzM4MjAZD"


def at(minute):
    """A timestamp as Meta writes it, `minute` minutes into the last hour (inside the receipt window)."""
    return str(int(time.time()) - 3600 + minute * 60)


def envelope(value):
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
            **value,
        }}]}],
    }  # fmt: skip


def contact(*, user_id=USER_ID, wa_id=None, name="Sheena Nelson", username=None):
    entry = {"profile": {"name": name}, "user_id": user_id, "parent_user_id": PARENT_USER_ID}
    if username:
        entry["profile"]["username"] = username
    if wa_id:
        entry["wa_id"] = wa_id
    return entry


def text(wamid, body, *, user_id=USER_ID, phone=None, timestamp=None, **extra):
    message = {
        "from_user_id": user_id,
        "id": wamid,
        "timestamp": timestamp or at(6),
        "type": "text",
        "text": {"body": body},
    }
    if phone:
        message["from"] = phone
    return {**message, **extra}


def only_a_business_scoped_id(wamid="wamid.BSUIDONLY"):
    """A user Kirim never had the number of: a username, no `wa_id`, no `from`."""
    return envelope({
        "contacts": [contact(username="@sheena")],
        "messages": [text(wamid, "Hi, is the shop open?")],
    })  # fmt: skip


def with_number_and_user_id(wamid="wamid.BEFORE"):
    """Before the username: Meta sends the number and the business-scoped id together."""
    return envelope({
        "contacts": [contact(wa_id=PHONE)],
        "messages": [text(wamid, "Before my username", phone=PHONE, timestamp=at(6))],
    })  # fmt: skip


def username_adopted(wamid="wamid.AFTER"):
    """The same user after adopting a username: the number is gone, the business-scoped id stays."""
    return envelope({
        "contacts": [contact(username="@sheena")],
        "messages": [text(wamid, "After my username", timestamp=at(7))],
    })  # fmt: skip


def user_changed_user_id(wamid="wamid.SYSTEM"):
    """A system message: the user now goes by a new business-scoped id (e.g. after changing number)."""
    return envelope({
        "contacts": [contact()],
        "messages": [{
            "from_user_id": USER_ID, "id": wamid, "timestamp": at(8), "type": "system",
            "system": {"body": "User Sheena Nelson changed from US.1349… to US.4821…",
                       "user_id": NEW_USER_ID, "parent_user_id": PARENT_USER_ID, "type": "user_changed_user_id"},
        }],
    })  # fmt: skip


def from_the_new_user_id(wamid="wamid.NEWID"):
    return envelope({
        "contacts": [contact(user_id=NEW_USER_ID, username="@sheena")],
        "messages": [text(wamid, "Writing from my new id", user_id=NEW_USER_ID, timestamp=at(9))],
    })  # fmt: skip


def group_message(wamid="wamid.GROUP1", body="Who brings the cake?", *, timestamp=None):
    """A member writes in a group the business is in: `group_id` names the group."""
    return envelope({
        "contacts": [contact(wa_id=PHONE, name="Pablo Morales", user_id="US.90000000000000000001")],
        "messages": [text(wamid, body, user_id="US.90000000000000000001", phone=PHONE, timestamp=timestamp or at(10),
                          group_id=GROUP_ID)],
    })  # fmt: skip


def status(wamid, value, *, timestamp=None):
    """A status of an outbound message to a user known by business-scoped id (no `recipient_id`)."""
    return envelope({
        "contacts": [contact()],
        "statuses": [{"id": wamid, "status": value, "timestamp": timestamp or at(11), "recipient_user_id": USER_ID,
                      "recipient_parent_user_id": PARENT_USER_ID}],
    })  # fmt: skip
