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


def live_message(message):
    return {
        "id": message.external_id,
        "direction": message.direction,
        "status": message.status,
        "type": message.type,
        "text": message.text,
        "time": date_format(timezone.localtime(message.timestamp), "d M H:i"),
        "tick": ticks(message.status),
    }
