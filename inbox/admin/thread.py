"""A conversation's page beside its messages' rows: the thread with the team's notes, the reply form's
fields, the media links through Kirim, and the contact's page."""

from django.db.models import Q
from django.urls import reverse

from inbox.admin.display import ticks
from inbox.models import Contact, Message, SavedReply
from inbox.services import replies, teaminbox

CONTACT_CONVERSATIONS = 50  # earlier conversations listed on a contact's page


def reply_of(request, conversation):
    """The reply form's fields as conversation_reply takes them: a text (with a file, the agent's or
    the saved reply's they inserted), or a template and its values."""
    template_id = request.POST.get("template")
    if not template_id:
        return {"text": request.POST.get("text", ""), "attachment": attachment_of(request, conversation)}
    prefix = f"param-{template_id}-"  # param-<template>-<component>-<placeholder>
    values = {
        tuple(field.removeprefix(prefix).split("-", 1)): value
        for field, value in request.POST.items()
        if field.startswith(prefix)
    }
    return {"template_id": template_id, "values": values}


def attachment_of(request, conversation):
    """The file sent with a reply: one the agent chose, else the attachment of the saved reply they
    inserted (of the conversation's org only), else None."""
    upload = request.FILES.get("file")
    if upload is not None:
        return replies.Attachment(upload.read(), upload.name, upload.content_type or "application/octet-stream")
    saved_id = request.POST.get("saved_reply", "")
    saved = SavedReply.objects.filter(org_id=conversation.org_id, pk=saved_id).first() if saved_id.isdigit() else None
    if saved is None or not saved.attachment:
        return None
    return replies.Attachment(bytes(saved.attachment), saved.attachment_name, saved.attachment_type)


def thread_items(conversation, messages):
    """The thread as shown: its messages and the team's notes, in time order."""
    notes = conversation.notes.select_related("author")
    if messages:
        notes = notes.filter(created_at__gte=messages[0].timestamp)
    items = [{"kind": "message", "message": m, "tick": ticks(m.status), "media_url": media_url(conversation, m),
              "at": m.timestamp} for m in messages]  # fmt: skip
    items += [{"kind": "note", "note": n, "at": n.created_at} for n in notes]
    return sorted(items, key=lambda item: item["at"])


def media_url(conversation, message):
    """Kirim's own URL for a message's media (the admin's proxy), or "" for a message without any."""
    if media_id_of(message) is None:
        return ""
    return f"{reverse('admin:inbox_conversation_media', args=[conversation.pk])}?message={message.external_id}"


def media_id_of(message):
    content = message.payload.get(message.type) if message is not None else None
    media_id = content.get("id") if isinstance(content, dict) else None
    return str(media_id) if media_id else None


def safe_filename(name):
    return "".join(c for c in name if c.isprintable() and c not in '"\\/')[:150] or "file"


def contact_of(conversations, conversation):
    """The contact page's facts, from their conversations and messages in the org (`conversations`:
    what the viewer may see). Conversations are matched by number and by business-scoped user id."""
    same = Q(contact_wa_id=conversation.contact_wa_id)
    if conversation.contact_user_id:
        same |= Q(contact_user_id=conversation.contact_user_id)
    theirs = list(
        conversations.filter(same, org_id=conversation.org_id)
        .select_related("phone_number", "assignee")
        .order_by("-last_message_at")[:CONTACT_CONVERSATIONS]
    )
    messages_of = Message.objects.filter(
        phone_number=conversation.phone_number_id, contact_wa_id=conversation.contact_wa_id
    )
    groups = sorted(set(messages_of.exclude(group_id="").values_list("group_id", flat=True)[:20]))
    return {
        "conversation": conversation,
        "contact_conversations": [(c, teaminbox.shown_state(c)) for c in theirs],
        "names": sorted({c.contact_name for c in theirs if c.contact_name}),
        "groups": groups,
        # A username (Meta's webhooks give it beside the contact, not in the message Kirim keeps) comes
        # with the contact's own record; until then the page says "not known yet". Blocked: what Meta's
        # Block Users API did through Kirim, kept on the Contact (none: never blocked through Kirim).
        "username": getattr(conversation, "contact_username", None),
        "blocked": Contact.objects.filter(
            phone_number_id=conversation.phone_number_id, contact_wa_id=conversation.contact_wa_id, blocked=True
        ).exists(),
    }
