"""What an agent does in the admin inbox: reply as text inside WhatsApp's 24-hour customer service
window or with an approved template outside it, and the number's templates kept in step with Meta.
Sends go through inbox.services.send as the API's do; a reply form's token is its idempotency key, so a double submit sends once."""

import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from core.errors import ApiError, InvalidField, UpstreamError
from inbox.models import Conversation, Direction, Message, MessageTemplate, PhoneNumber, Status
from inbox.services import idempotency
from inbox.services.media import media_upload
from inbox.services.send import message_send
from meta import graph as meta_graph
from meta.graph import Json

logger = logging.getLogger("kirim.inbox")

SERVICE_WINDOW = timedelta(hours=24)
TEMPLATE_FIELDS = "id,name,language,status,category,components,parameter_format"
MAX_TEXT = 4096  # Meta's limit for a text body
MAX_CAPTION = 1024  # and for a media caption


@dataclass(frozen=True)
class ReplyWindow:
    """WhatsApp's customer service window: free-form messages only within 24 hours of the contact's
    last message; after it, only a template."""

    last_inbound_at: datetime | None
    now: datetime

    @property
    def closes_at(self) -> datetime | None:
        return self.last_inbound_at + SERVICE_WINDOW if self.last_inbound_at else None

    @property
    def is_open(self) -> bool:
        return self.closes_at is not None and self.now < self.closes_at

    def reason(self) -> str:
        if self.is_open:
            return ""
        if self.last_inbound_at is None:
            return "The contact has not written to this number, so WhatsApp allows only a template."
        return (
            "The contact's last message is more than 24 hours old: WhatsApp's customer service window is "
            "closed, so only an approved template can be sent until they write again."
        )


def reply_window(conversation: Conversation, now: datetime | None = None) -> ReplyWindow:
    last_inbound_at = (
        conversation.messages()
        .filter(direction=Direction.INBOUND)
        .order_by("-timestamp")
        .values_list("timestamp", flat=True)
        .first()
    )
    return ReplyWindow(last_inbound_at=last_inbound_at, now=now or timezone.now())


def approved_templates(phone_number: PhoneNumber) -> list[MessageTemplate]:
    """The number's templates an agent can send: APPROVED by Meta and fillable in the admin."""
    if not phone_number.waba_id:
        return []
    templates = MessageTemplate.objects.filter(
        org_id=phone_number.org_id, waba_id=phone_number.waba_id, status=MessageTemplate.APPROVED
    )
    return [t for t in templates if not t.unsupported_reason()]


@dataclass(frozen=True)
class SyncResult:
    waba_id: str
    stored: int
    approved: int
    removed: int

    def summary(self) -> str:
        return (
            f"WABA {self.waba_id}: {self.stored} template(s) synced, {self.approved} approved, "
            f"{self.removed} no longer on Meta removed."
        )


def templates_sync(phone_number: PhoneNumber) -> "SyncResult":
    """Fetch the number's business account's templates from Meta (no transaction open meanwhile),
    then store them in one transaction: new and changed ones written, ones Meta no longer has removed."""
    if not phone_number.waba_id:
        raise InvalidField("waba_id", f"{phone_number} has no WABA id: set it to sync its templates.")
    fetched: list[Json] = []
    after: str | None = None
    while True:  # Meta's pages, followed by their `after` cursors
        page = meta_graph.message_templates(phone_number, after=after, limit=100, filters={"fields": TEMPLATE_FIELDS})
        fetched += page.templates
        if page.after is None:
            return templates_store(phone_number, fetched)
        after = page.after


def templates_store(phone_number: PhoneNumber, fetched: Sequence[Mapping[str, Any]]) -> SyncResult:
    """Make the stored templates of the number's business account exactly `fetched` (Meta's shapes)."""
    now = timezone.now()
    scope = {"org_id": phone_number.org_id, "waba_id": phone_number.waba_id}
    rows: dict[tuple[str, str], MessageTemplate] = {}
    for template in fetched:
        row = MessageTemplate(
            **scope,
            name=str(template.get("name", ""))[:512],
            language=str(template.get("language", ""))[:16],
            meta_id=str(template.get("id", ""))[:64],
            status=str(template.get("status", ""))[:32],
            category=str(template.get("category", ""))[:32],
            parameter_format=str(template.get("parameter_format") or "POSITIONAL")[:16],
            components=template.get("components") if isinstance(template.get("components"), list) else [],
            synced_at=now,
        )
        rows[row.name, row.language] = row  # a pair Meta lists twice: the later one stands
    with transaction.atomic():  # one upsert for all, then what Meta no longer has goes
        MessageTemplate.objects.bulk_create(
            rows.values(),
            update_conflicts=True,
            unique_fields=["org", "waba_id", "name", "language"],
            update_fields=["meta_id", "status", "category", "parameter_format", "components", "synced_at"],
        )
        removed, _ = MessageTemplate.objects.filter(**scope).exclude(synced_at=now).delete()
    approved = sum(1 for t in fetched if t.get("status") == MessageTemplate.APPROVED)
    return SyncResult(phone_number.waba_id, len(rows), approved, removed)


def templates_sync_each(numbers: Iterable[PhoneNumber]) -> list[tuple[PhoneNumber, SyncResult | ApiError]]:
    """Sync the business account of each number with a WABA id, once per account (its numbers share
    its templates): (number, SyncResult) or (number, the ApiError) per account."""
    outcomes: list[tuple[PhoneNumber, SyncResult | ApiError]] = []
    seen: set[tuple[int, str]] = set()
    for number in numbers:
        if not number.waba_id or (number.org_id, number.waba_id) in seen:
            continue
        seen.add((number.org_id, number.waba_id))
        try:
            outcomes.append((number, templates_sync(number)))
        except ApiError as error:
            logger.warning("template sync of WABA %s failed: %s", number.waba_id, error.message)
            outcomes.append((number, error))
    return outcomes


@dataclass(frozen=True)
class ReplyOutcome:
    message: Message | None  # None when the send failed (`error` says why)
    error: str = ""
    replayed: bool = False  # a double submit: the first submit's reply, not a second one


def text_body(conversation: Conversation, text: str) -> Json:
    text = text.strip()
    if not text:
        raise InvalidField("text", "Write a reply first.")
    if len(text) > MAX_TEXT:
        raise InvalidField("text", f"A WhatsApp text takes at most {MAX_TEXT} characters.")
    return {"messaging_product": "whatsapp", "to": conversation.contact_wa_id, "type": "text", "text": {"body": text}}


@dataclass(frozen=True)
class Attachment:
    """A file an agent sends from the reply box (or a saved reply's): an image or a document."""

    content: bytes
    filename: str
    mime_type: str

    @property
    def kind(self) -> str:
        return "image" if self.mime_type in IMAGE_TYPES else "document"

    def checked(self) -> "Attachment":
        if not self.content:
            raise InvalidField("file", "The file is empty.")
        if len(self.content) > MAX_ATTACHMENT[self.kind]:
            raise InvalidField("file", f"WhatsApp takes {self.kind}s up to {MAX_ATTACHMENT[self.kind] // 2**20} MB.")
        return self


# Meta's limits for media sent by a business: images JPEG or PNG up to 5 MB, documents up to 100 MB.
IMAGE_TYPES = ("image/jpeg", "image/png")
MAX_ATTACHMENT = {"image": 5 * 2**20, "document": 100 * 2**20}


def conversation_reply(
    *,
    conversation: Conversation,
    token: str,
    text: str | None = None,
    template_id: int | str | None = None,
    values: Mapping[tuple[str, str], str] | None = None,
    attachment: Attachment | None = None,
    before_send: Callable[[], object] | None = None,
) -> ReplyOutcome:
    """Send an agent's reply: `text` inside the service window (or an `attachment`, with `text` as
    its caption), else the number's approved template `template_id` with `values` ({(component,
    placeholder): text}) for its parameters. `token` (the reply form's) makes a double submit send once.
    `before_send()` runs first, once (not on a double submit): the on_reply policy's receipt. InvalidField for a reply that
    cannot be sent; a failed send is the outcome's `error`, with its row kept `failed` in the thread."""
    number = conversation.phone_number
    if template_id is None:
        window = reply_window(conversation)
        if not window.is_open:
            raise InvalidField("text", window.reason())
        if attachment is None:
            body = text_body(conversation, text or "")
            shown_text = body["text"]["body"]
        else:
            body, shown_text = attachment_body(conversation, attachment.checked(), text or "")
    else:
        template = next((t for t in approved_templates(number) if str(t.pk) == str(template_id)), None)
        if template is None:
            raise InvalidField("template", "Pick one of this number's approved templates.")
        filled = {key: value.strip() for key, value in (values or {}).items()}
        missing = [name for component, name in template.parameters() if not filled.get((component, name))]
        if missing:
            raise InvalidField("template", f"Fill in every parameter of the template: {', '.join(missing)}.")
        body = template.send_body(conversation.contact_wa_id, filled)
        shown_text = template.render(filled)

    def act(claim: idempotency.Claim) -> idempotency.Acted:
        if before_send is not None:
            before_send()
        sent = body
        if attachment is not None:  # uploaded once per reply token: a resubmit answers the first send
            media_id = media_upload(phone_number=number, content=attachment.content, filename=attachment.filename,
                                    mime_type=attachment.mime_type)  # fmt: skip
            media = {name: value for name, value in body[attachment.kind].items() if name != "sha256"}
            sent = {**body, attachment.kind: {"id": media_id, **media}}
        try:
            message = message_send(phone_number=number, body=sent, text=shown_text, claim=claim)
        except UpstreamError as error:
            return 502, {"error": (error.upstream or {}).get("message") or error.message}, idempotency.outcome_of(error)
        unconfirmed = message.status == Status.UNCONFIRMED  # shown as such; a resubmit answers its outcome
        return 200, {"message": message.pk}, idempotency.KEEP_OPEN if unconfirmed else idempotency.STORE

    status, answer, replayed = idempotency.once(
        org=conversation.org, key=f"admin-reply:{token}", scope=f"conversation:{conversation.pk}", body=body, act=act
    )
    logger.info("agent reply conversation=%s status=%s replayed=%s", conversation.pk, status, replayed)
    if status != 200:
        return ReplyOutcome(None, error=answer["error"], replayed=replayed)
    return ReplyOutcome(Message.objects.get(pk=answer["message"]), replayed=replayed)


def attachment_body(conversation: Conversation, attachment: Attachment, caption: str) -> tuple[Json, str]:
    """Meta's send body for an attachment (its media id filled in once uploaded), and the thread's
    text for it. The idempotency digest covers the file through its hash."""
    caption = caption.strip()
    if len(caption) > MAX_CAPTION:
        raise InvalidField("text", f"A caption takes at most {MAX_CAPTION} characters.")
    media = {"sha256": hashlib.sha256(attachment.content).hexdigest()}
    if caption:
        media["caption"] = caption
    if attachment.kind == "document":
        media["filename"] = attachment.filename
    body = {"messaging_product": "whatsapp", "to": conversation.contact_wa_id, "type": attachment.kind,
            attachment.kind: media}  # fmt: skip
    return body, caption or attachment.filename
