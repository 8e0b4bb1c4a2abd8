"""The receipts a staff inbox sends on its own: the number's read receipt policy when an agent opens a
thread (on_open) or replies (on_reply, receipts.admin), and the typing bubble while an agent writes."""

from django.contrib.auth.models import User
from django.utils import timezone

from inbox.models import Conversation, Direction, ReadReceiptPolicy, ReadVia
from inbox.services.replies import ReplyWindow
from receipts.services.bulk import BulkReadResult, messages_mark_read
from receipts.services.reads import typing_indicator_show


def conversation_read(*, conversation: Conversation, user: User) -> BulkReadResult:
    """The whole conversation marked read by a staff user: one receipt, for its newest unread message."""
    return messages_mark_read(messages=conversation.messages(), via=ReadVia.ADMIN, user=user, concurrency=1)


def conversation_opened(*, conversation: Conversation, user: User) -> BulkReadResult | None:
    """An agent opened the thread: with the on_open policy, one receipt for the conversation (its
    newest unread message); None when the policy is another or nothing is unread."""
    if conversation.phone_number.read_receipt_policy != ReadReceiptPolicy.ON_OPEN:
        return None
    unread = conversation.messages().unread_inbound()
    if not unread.exists():
        return None
    return messages_mark_read(messages=unread, via=ReadVia.ADMIN, user=user, concurrency=1)


def agent_typing(*, conversation: Conversation, user: User) -> bool:
    """An agent is writing a reply: on a number with the typing indicator on, show the contact a
    typing bubble (Meta dismisses it after ~25 s or on the reply). Meta carries it on a read receipt
    of their newest message, so this reads the conversation. False when the number has it off, or
    when no text reply is possible (nothing inbound, or the 24-hour window closed)."""
    if not conversation.phone_number.typing_indicator:
        return False
    newest = conversation.messages().filter(direction=Direction.INBOUND).order_by("-timestamp", "-pk").first()
    if newest is None or not ReplyWindow(last_inbound_at=newest.timestamp, now=timezone.now()).is_open:
        return False
    newest.phone_number = conversation.phone_number
    typing_indicator_show(message=newest, user=user)
    return True
