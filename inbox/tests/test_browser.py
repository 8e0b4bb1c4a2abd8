"""The team inbox as an agent uses it, in headless Chromium against the Meta stand-in: replies inside
and outside WhatsApp's 24-hour window, ticks and new messages arriving without a reload, and the
read-receipt policies. Screenshots go where receipts/tests/test_browser.py puts its own."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from conftest import wait_for as conftest_wait_for
from fakemeta import payloads
from fakemeta.server import new_wamid
from inbox.admin.conversations import POLL_SECONDS
from inbox.models import Conversation, Direction, Message, Role, Status
from inbox.services.replies import templates_store
from receipts.tests.test_browser import log_in, save_screenshot
from testing.meta import as_the_client_sent_it
from testing.programs import submit

pytestmark = pytest.mark.django_db(transaction=True)

LIVE_WAIT = POLL_SECONDS * 2 + 3  # seconds: one poll interval, one poll in flight, and the page's work


@pytest.fixture
def agent(org, make_member):
    return make_member(org, Role.AGENT, "agent")


@pytest.fixture
def number(phone_number):
    phone_number.waba_id = "102290129340398"
    phone_number.save(update_fields=["waba_id"])
    templates_store(phone_number, payloads.DEMO_TEMPLATES)
    return phone_number


def conversation(number, make_message, wa_id, name, *, hours_ago, texts=("Halo, do you deliver to Bandung?",)):
    for offset, text in enumerate(texts):
        make_message(number, contact=wa_id, contact_name=name, text=text,
                     timestamp=timezone.now() - timedelta(hours=hours_ago, minutes=len(texts) - offset))  # fmt: skip
    return Conversation.objects.get(phone_number=number, contact_wa_id=wa_id)


def set_policy(number, policy):
    number.read_receipt_policy = policy
    number.save(update_fields=["read_receipt_policy"])


def open_thread(driver, live_server, conversation):
    driver.get(f"{live_server.url}/admin/inbox/conversation/{conversation.pk}/change/")
    driver.execute_script("window.kirimSamePage = true")  # gone if the page reloads


def same_page(driver):
    return driver.execute_script("return window.kirimSamePage === true")


def wait_for(condition):
    return conftest_wait_for(condition, seconds=LIVE_WAIT, every=0.2)  # a page is slower to ask


def bubble_status(driver, external_id):
    from selenium.webdriver.common.by import By

    found = driver.find_elements(By.CSS_SELECTOR, f'.bubble[data-id="{external_id}"]')
    return found[0].get_attribute("data-status") if found else None


def graph_calls(stand_in):
    """What the stand-in received; a send's body as the reply gave it (Kirim's callback id taken out)."""
    with stand_in.state.lock:
        bodies = [r["body"] for r in stand_in.state.requests]
    return [as_the_client_sent_it(body) if "type" in body else body for body in bodies]


def test_a_text_reply_inside_the_window_shows_and_its_tick_turns_without_a_reload(
    browser, live_server, meta_stand_in, agent, number, make_message
):
    from selenium.webdriver.common.by import By

    siti = conversation(number, make_message, "6281234567801", "Siti Rahma", hours_ago=1,
                        texts=("Halo, is the shop open today?", "And do you deliver to Bandung?"))  # fmt: skip
    log_in(browser, live_server, "agent")
    open_thread(browser, live_server, siti)
    assert browser.find_element(By.ID, "receipt-policy").text.startswith("Read receipts: manual.")
    browser.find_element(By.ID, "reply-text-input").send_keys("Yes, we deliver to Bandung tomorrow!")
    save_screenshot(browser, "reply-box.png")
    submit(browser, browser.find_element(By.ID, "send-text"))

    reply_text = browser.find_element(By.CSS_SELECTOR, ".bubble.outbound .text").text  # the page after the send
    assert reply_text == "Yes, we deliver to Bandung tomorrow!"
    sent = Message.objects.get(direction=Direction.OUTBOUND)
    [body] = graph_calls(meta_stand_in)
    assert (body["to"], body["type"], body["text"]) == (
        "6281234567801",
        "text",
        {"body": "Yes, we deliver to Bandung tomorrow!"},
    )
    browser.execute_script("window.kirimSamePage = true")
    # The stand-in posts `sent` and `delivered` status webhooks; the contact then reads it.
    assert wait_for(lambda: bubble_status(browser, sent.external_id) == "delivered")
    meta_stand_in.state.post_webhook(
        payloads.webhook(number.phone_number_id, statuses=[payloads.status(sent.wamid, "read", "6281234567801")])
    )
    assert wait_for(lambda: bubble_status(browser, sent.external_id) == "read")
    tick = browser.find_element(By.CSS_SELECTOR, f'.bubble[data-id="{sent.external_id}"] .tick')
    assert "tick-blue" in tick.get_attribute("class")
    assert tick.find_element(By.CSS_SELECTOR, ".visually-hidden").get_attribute("textContent") == "read"
    assert same_page(browser)
    save_screenshot(browser, "live-thread.png")


def test_a_template_reply_outside_the_window(browser, live_server, meta_stand_in, agent, number, make_message):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    budi = conversation(number, make_message, "6281234567802", "Budi Santoso", hours_ago=30,
                        texts=("My order #4411 has not arrived",))  # fmt: skip
    log_in(browser, live_server, "agent")
    open_thread(browser, live_server, budi)

    note = browser.find_element(By.ID, "window-note")
    assert "customer service window is closed" in note.text
    assert not browser.find_element(By.ID, "reply-text-input").is_enabled()
    Select(browser.find_element(By.ID, "template-picker")).select_by_visible_text("order_update (en_US, utility)")
    template_id = browser.find_element(By.ID, "template-picker").get_attribute("value")
    for name, value in (("header-1", "#4411"), ("body-1", "Budi"), ("body-2", "#4411")):
        browser.find_element(By.NAME, f"param-{template_id}-{name}").send_keys(value)
    save_screenshot(browser, "template-picker.png")
    submit(browser, browser.find_element(By.ID, "send-template"))

    reply_text = browser.find_element(By.CSS_SELECTOR, ".bubble.outbound .text").text
    assert reply_text == "Hi Budi, your order #4411 is on its way."
    [body] = graph_calls(meta_stand_in)
    assert body["type"] == "template" and body["template"]["name"] == "order_update"
    assert body["template"]["components"][1]["parameters"] == [{"type": "text", "text": "Budi"},
                                                               {"type": "text", "text": "#4411"}]  # fmt: skip


def test_on_open_sends_one_receipt_and_on_reply_none_until_the_reply(
    browser, live_server, meta_stand_in, agent, number, second_number, make_message
):
    from selenium.webdriver.common.by import By

    set_policy(number, "on_open")
    set_policy(second_number, "on_reply")
    siti = conversation(number, make_message, "6281234567801", "Siti Rahma", hours_ago=1,
                        texts=("Halo?", "Anyone there?"))  # fmt: skip
    ayu = conversation(second_number, make_message, "6281234567803", "Ayu Lestari", hours_ago=1)
    log_in(browser, live_server, "agent")

    open_thread(browser, live_server, siti)
    assert browser.find_element(By.ID, "receipt-policy").text.startswith("Read receipts: on open.")
    newest = Message.objects.filter(contact_wa_id="6281234567801").latest("timestamp")
    assert wait_for(lambda: graph_calls(meta_stand_in))
    assert wait_for(lambda: {bubble_status(browser, m.external_id) for m in siti.messages()} == {"read"})
    open_thread(browser, live_server, siti)  # nothing unread any more: no second receipt
    time.sleep(1)
    assert graph_calls(meta_stand_in) == [{"messaging_product": "whatsapp", "status": "read",
                                           "message_id": newest.wamid}]  # fmt: skip

    open_thread(browser, live_server, ayu)
    assert browser.find_element(By.ID, "receipt-policy").text.startswith("Read receipts: on reply.")
    time.sleep(POLL_SECONDS + 1)  # a poll has come and gone
    assert len(graph_calls(meta_stand_in)) == 1
    assert not Message.objects.filter(contact_wa_id="6281234567803", status=Status.READ).exists()
    browser.find_element(By.ID, "reply-text-input").send_keys("Terima kasih, Ayu!")
    submit(browser, browser.find_element(By.ID, "send-text"))
    browser.find_element(By.CSS_SELECTOR, ".bubble.outbound")  # the page after the send

    receipt, send = graph_calls(meta_stand_in)[1:3]
    ayu_message = Message.objects.get(contact_wa_id="6281234567803", direction=Direction.INBOUND)
    assert receipt == {"messaging_product": "whatsapp", "status": "read", "message_id": ayu_message.wamid}
    assert send["text"] == {"body": "Terima kasih, Ayu!"}
    assert ayu_message.status == Status.READ


def test_a_new_inbound_message_appears_in_the_open_inbox_and_thread_without_a_reload(
    browser, live_server, meta_stand_in, agent, number, make_message
):
    from selenium.webdriver.common.by import By

    siti = conversation(number, make_message, "6281234567801", "Siti Rahma", hours_ago=2)
    conversation(number, make_message, "6281234567802", "Budi Santoso", hours_ago=1)
    log_in(browser, live_server, "agent")
    browser.get(f"{live_server.url}/admin/inbox/conversation/")
    browser.execute_script("window.kirimSamePage = true")

    def contacts():
        return [e.text.splitlines()[0] for e in browser.find_elements(By.CSS_SELECTOR, "#result_list .field-contact")]

    assert contacts() == ["Budi Santoso", "Siti Rahma"]
    write_in(meta_stand_in, number, "6281234567809", "Dewi", "Halo, saya mau pesan kopi", seconds_ago=1)
    write_in(meta_stand_in, number, "6281234567801", "Siti Rahma", "Hello again!")

    assert wait_for(lambda: contacts() == ["Siti Rahma", "Dewi", "Budi Santoso"]), contacts()
    rows = browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
    assert rows[0].find_element(By.CSS_SELECTOR, ".field-preview").text == "← Hello again!"
    assert rows[0].find_element(By.CSS_SELECTOR, ".unread-badge").text == "2"
    assert rows[1].find_element(By.CSS_SELECTOR, ".unread-badge").get_attribute("title") == "1 unread"
    assert same_page(browser)

    open_thread(browser, live_server, siti)
    write_in(meta_stand_in, number, "6281234567801", "Siti Rahma", "Are you open on Sunday?")
    assert wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, ".bubble.inbound .text")[-1].text
                    == "Are you open on Sunday?")  # fmt: skip
    assert same_page(browser)


def write_in(stand_in, number, wa_id, name, text, seconds_ago=0):
    """A contact writes in: the stand-in posts Meta's signed webhook to the live server."""
    status = stand_in.state.post_webhook(payloads.webhook(
        number.phone_number_id, contacts=[payloads.contact(wa_id, name)],
        messages=[payloads.text_message(new_wamid(), wa_id, text, timestamp=time.time() - seconds_ago)],
    ))  # fmt: skip
    assert status == 200


def test_an_echo_does_not_open_the_reply_window_and_a_disabled_template_leaves_the_picker(
    browser, live_server, meta_stand_in, agent, number, make_message
):
    """The contact's last message is 30 hours old; staff then answer from the WhatsApp Business app
    on the same number. The echo shows in the thread, and the reply box stays closed: only the
    contact writing opens WhatsApp's window. Meta disables a template: the picker drops it."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    budi = conversation(number, make_message, "6281234567802", "Budi Santoso", hours_ago=30,
                        texts=("My order #4411 has not arrived",))  # fmt: skip
    business = "".join(ch for ch in number.display_phone_number if ch.isdigit())
    echo = payloads.echo(new_wamid(), budi.contact_wa_id, "Checking with the courier now", business_number=business)
    for field, value, where in (
        ("smb_message_echoes", payloads.echoes(echo, name="Budi Santoso"), {"phone_number_id": number.phone_number_id}),
        ("message_template_status_update", payloads.template_status(payloads.DEMO_TEMPLATES[0], "DISABLED"), {}),
    ):
        change = payloads.field_change(field, value, waba_id=number.waba_id, **where)
        assert meta_stand_in.state.post_webhook(change) == 200
    log_in(browser, live_server, "agent")
    open_thread(browser, live_server, budi)

    last = browser.find_elements(By.CSS_SELECTOR, ".bubble")[-1]
    assert "outbound" in last.get_attribute("class")
    assert last.find_element(By.CSS_SELECTOR, ".text").text == "Checking with the courier now"
    assert "sent from the WhatsApp Business app" in last.text
    assert "customer service window is closed" in browser.find_element(By.ID, "window-note").text
    assert not browser.find_element(By.ID, "reply-text-input").is_enabled()
    picker = [o.text for o in Select(browser.find_element(By.ID, "template-picker")).options]
    assert not any(text.startswith("order_update") for text in picker) and any("follow_up" in t for t in picker)
    save_screenshot(browser, "echo-window-closed.png")
    live = browser.execute_async_script(  # what the page's live poll is told: the window stays closed
        "const done = arguments[0], page = document.getElementById('content-main');"
        "fetch(page.dataset.liveUrl + '?since=' + encodeURIComponent(page.dataset.cursor))"
        ".then(r => r.json()).then(done);"
    )
    assert live["window_open"] is False and "closed" in live["window_reason"]

    # Budi deletes his message for everyone: the open page drops its text without a reload.
    first = Message.objects.get(contact_wa_id=budi.contact_wa_id, direction=Direction.INBOUND)
    revoke = payloads.revoke(new_wamid(), first.wamid, **{"from": budi.contact_wa_id})
    deleted = payloads.webhook(number.phone_number_id, messages=[revoke],
                               contacts=[payloads.contact(budi.contact_wa_id, "Budi Santoso")])  # fmt: skip
    assert meta_stand_in.state.post_webhook(deleted) == 200
    bubble = f'.bubble[data-id="{first.external_id}"] .text'
    assert wait_for(lambda: browser.find_element(By.CSS_SELECTOR, bubble).text == "This message was deleted")
    assert "#4411" not in browser.find_element(By.ID, "thread").text and same_page(browser)
