"""Live updates: what changed since a page's cursor, as small JSON answers the pages poll for."""

from datetime import datetime, timedelta

from django.utils import timezone
from django.utils.formats import date_format

from core.errors import InvalidField
from inbox.admin.display import ticks

# Rows are stamped with `updated_at` before their transaction commits, so a row can become visible
# after a later-stamped one was already reported: every poll looks this far behind its cursor again.
LIVE_OVERLAP = timedelta(seconds=10)
LIVE_MAX_CONVERSATIONS = 100  # more changed at once than this: the inbox page asks for a reload


def live_cursor(moment):
    return moment.isoformat()


def parse_cursor(value):
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidField("since", "`since` takes the cursor of the previous answer.") from None
    if timezone.is_naive(moment):
        raise InvalidField("since", "`since` takes the cursor of the previous answer.")
    return moment


def live_message(message, media_url=""):
    return {
        "id": message.external_id,
        "direction": message.direction,
        "status": message.status,
        "type": message.type,
        "media_url": media_url,
        "text": message.text,
        "sent_from_app": message.sent_from_app,
        "deleted": message.deleted_at is not None,  # its content is gone: the open page drops it too
        "time": date_format(timezone.localtime(message.timestamp), "d M H:i"),
        "tick": ticks(message.status),
    }


def live_note(note):
    return {
        "id": note.external_id,
        "author": note.author.username if note.author_id else "",
        "body": note.body,
        "time": date_format(timezone.localtime(note.created_at), "d M H:i"),
    }


def label_filter(request):
    """The label the live page's list is filtered by, as its list filter names it."""
    label = request.GET.get("labels__id__exact", "")
    return {"labels__id": label} if label.isdigit() else {}
