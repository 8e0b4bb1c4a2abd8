"""How the inbox shows a message's status and unread counts, shared by its pages."""

from functools import cached_property

from django.core.paginator import Paginator
from django.utils.html import format_html

from inbox.models import (
    Status,
)

TICKS = {
    Status.PENDING: ("🕓", "pending", "tick-grey"),
    Status.UNCONFIRMED: ("🕓", "unconfirmed: Meta's answer was lost", "tick-grey"),
    Status.ACCEPTED: ("✓", "accepted by WhatsApp", "tick-grey"),
    Status.SENT: ("✓", "sent", "tick-grey"),
    Status.DELIVERED: ("✓✓", "delivered", "tick-grey"),
    Status.READ: ("✓✓", "read", "tick-blue"),
    Status.PLAYED: ("🎤", "played", "tick-blue"),
    Status.FAILED: ("⚠", "failed", "tick-red"),
    Status.RECEIVED: ("●", "unread", "tick-unread"),
}


def ticks(status):
    """The tick as WhatsApp shows it; screen readers hear the status in words instead of the symbol."""
    symbol, label, css = TICKS[status]
    return format_html(
        '<span class="tick {}" title="{}"><span aria-hidden="true">{}</span><span class="visually-hidden">{}</span>'
        "</span>",
        css, label, symbol, label,
    )  # fmt: skip


def unread_badge(count):
    if not count:
        return ""
    return format_html('<span class="unread-badge" title="{} unread">{}</span>', count, count)


class CappedCountPaginator(Paginator):
    """Counting millions of rows is the slow part of an admin list: count up to a cap instead."""

    CAP = 10_000

    @cached_property
    def count(self):
        return self.object_list[: self.CAP].count()  # type: ignore[attr-defined]  # the admin pages a QuerySet
