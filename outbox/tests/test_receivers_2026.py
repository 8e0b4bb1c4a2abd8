"""pywa 4.5.0's webhook handlers parse what Kirim passes on of Meta's 2026 fields, each with its own
type: echoes and the business's edits and deletions from the phone (OutgoingMessage,
OutgoingEditedMessage, OutgoingDeletedMessage), a user's edit and deletion (EditedMessage,
DeletedMessage), a status's pricing (MessageStatus.pricing), the templates' status, category and
quality, and the account's events, each delivered signed to a handler subscribed as a Meta receiver."""

import threading

import pytest
import pywa
from pywa import handlers

from fakemeta import payloads
from outbox.models import EventType, Receiver, WebhookSubscription
from outbox.tests.conftest import run_due
from outbox.tests.test_receivers import PywaServer

NUMBER = "106540352242922"  # the phone_number fixture's
WABA = "102290129340398"
BUSINESS = "6281100000001"
USER = "6281234567890"
TEMPLATE = payloads.DEMO_TEMPLATES[0]


class Pywa2026(PywaServer):
    def listen(self, phone_number, secret):
        wa = pywa.WhatsApp(phone_id=phone_number.phone_number_id, token="unused", server=None, verify_token="unused",
                           app_secret=secret)  # fmt: skip
        self.handled = []
        seen = lambda _, update: self.handled.append(update)
        wa.add_handlers(*(kind(seen) for kind in (
            handlers.MessageHandler, handlers.MessageStatusHandler, handlers.EditedMessageHandler,
            handlers.DeletedMessageHandler, handlers.OutgoingMessageHandler, handlers.OutgoingEditedMessageHandler,
            handlers.OutgoingDeletedMessageHandler, handlers.TemplateStatusUpdateHandler,
            handlers.TemplateCategoryUpdateHandler, handlers.TemplateQualityUpdateHandler,
            handlers.AccountUpdateHandler,
        )))  # fmt: skip
        self.handle = lambda body, signature: (
            wa.webhook_update_validator(body, signature) or wa.webhook_update_handler(body)
        )
        threading.Thread(target=self.serve_forever, daemon=True).start()


@pytest.fixture
def pywa_2026(phone_number, settings, meta):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True  # the handler listens on loopback
    meta.add_passthru("http://127.0.0.1")
    phone_number.waba_id = WABA
    phone_number.save()
    server = Pywa2026()
    subscription = WebhookSubscription.objects.create(
        org=phone_number.org, url=server.url, receiver=Receiver.META,
        events=[t for t in EventType.values if t != EventType.MESSAGE_READ],
    )  # fmt: skip
    server.listen(phone_number, subscription.secret)
    yield server
    server.shutdown()
    server.server_close()


def test_pywa_parses_every_2026_event_kirim_passes_on(pywa_2026, deliver, phone_number, make_message):
    def echo_change(*items):
        return payloads.field_change("smb_message_echoes", payloads.echoes(*items, name="Ayu"), waba_id=WABA,
                                     phone_number_id=NUMBER, display_phone_number=BUSINESS)  # fmt: skip

    def from_user(message):
        return payloads.webhook(NUMBER, messages=[message], contacts=[payloads.contact(USER, "Ayu")], waba_id=WABA)

    sent = make_message(phone_number, contact=USER, direction="outbound", status="accepted")
    to_user = {"from": BUSINESS, "to": USER}
    for webhook in (
        echo_change(payloads.echo("wamid.E1", USER, "Ready at 5", business_number=BUSINESS)),
        echo_change(payloads.edit("wamid.E1EDIT", "wamid.E1", "Ready at 6", **to_user)),
        echo_change(payloads.revoke("wamid.E1DEL", "wamid.E1", **to_user)),
        from_user(payloads.text_message("wamid.U1", USER, "2 lattes")),
        from_user(payloads.edit("wamid.U1EDIT", "wamid.U1", "3 lattes", **{"from": USER})),
        from_user(payloads.revoke("wamid.U1DEL", "wamid.U1", **{"from": USER})),
        payloads.webhook(NUMBER, statuses=[payloads.status(sent.wamid, "delivered", USER, category="utility")]),
        payloads.field_change("message_template_status_update", payloads.template_status(TEMPLATE, "DISABLED"),
                              waba_id=WABA),
        payloads.field_change("template_category_update", payloads.template_category(TEMPLATE, "MARKETING"),
                              waba_id=WABA),
        payloads.field_change("message_template_quality_update", payloads.template_quality(TEMPLATE, "RED"),
                              waba_id=WABA),
        payloads.field_change("account_update", payloads.account_update("ACCOUNT_VIOLATION", violation_info={"violation_type": "SCAM"}),
                              waba_id=WABA),
    ):  # fmt: skip
        assert deliver(webhook).status_code == 200
        run_due()  # each delivered before the next: a deletion withdraws what of its message still waits

    seen = {type(update).__name__: update for update in pywa_2026.handled}
    assert seen["OutgoingMessage"].text == "Ready at 5" and seen["OutgoingMessage"].to_user.wa_id == USER
    assert seen["OutgoingEditedMessage"].message.text == "Ready at 6"
    assert seen["OutgoingDeletedMessage"].original_message_id == "wamid.E1"
    assert seen["EditedMessage"].original_message_id == "wamid.U1" and seen["EditedMessage"].message.text == "3 lattes"
    assert seen["DeletedMessage"].original_message_id == "wamid.U1"
    pricing = seen["MessageStatus"].pricing
    assert (pricing.billable, pricing.category.value, pricing.type.value) == (True, "utility", "regular")
    assert seen["TemplateStatusUpdate"].new_status.value == "DISABLED"
    assert seen["TemplateCategoryUpdate"].new_category.value == "MARKETING"
    assert seen["TemplateQualityUpdate"].new_quality_score.value == "RED"
    assert seen["AccountUpdate"].event.value == "ACCOUNT_VIOLATION"
    assert seen["Message"].text == "2 lattes"
