"""The team inbox as a support team uses it, in headless Chromium against the Meta stand-in: two agents
and assignment seen live, private notes that never leave Kirim, a saved reply with a variable,
a resolved conversation reopened by the contact, media in the thread, and the manager's report.
Screenshots go where the other browser tests put theirs (docs/screenshots/ for the docs)."""

import io
import math
import struct
import wave
import zlib
from datetime import timedelta

import pytest
from django.utils import timezone

from fakemeta import payloads
from fakemeta.server import new_wamid
from inbox.models import Conversation, ConversationState, Direction, Message, Role, SavedReply
from inbox.tests.test_browser import graph_calls, wait_for
from receipts.tests.test_browser import log_in, save_screenshot
from testing.programs import chromium, submit

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def team(org, make_member):
    return {name: make_member(org, role, name) for name, role in
            (("nadia", Role.AGENT), ("rudi", Role.AGENT), ("maya", Role.MANAGER))}  # fmt: skip


def write_in(stand_in, number, wa_id, name, message):
    """The contact writes: Meta's webhook, posted by the stand-in to Kirim."""
    status = stand_in.state.post_webhook(
        payloads.webhook(number.phone_number_id, contacts=[payloads.contact(wa_id, name)], messages=[message])
    )
    assert status == 200


def text_in(stand_in, number, wa_id, name, text):
    write_in(stand_in, number, wa_id, name, payloads.text_message(new_wamid(), wa_id, text))
    return Conversation.objects.get(phone_number=number, contact_wa_id=wa_id)


def contacts_listed(driver):
    """The names in the list, read in one go in the page: rows the live updates replace go stale."""
    return driver.execute_script(
        "return [...document.querySelectorAll('#result_list .field-contact')].map(e => e.innerText.split('\\n')[0])"
    )


def png(width=48, height=32):
    """A real PNG, green: a browser draws it, so its image has a natural width."""
    rows = b"".join(b"\x00" + b"\x0f\x8a\x4a" * width for _ in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def wav(seconds=2):
    """A tone as WAV: WhatsApp's voice notes are Ogg Opus, which Python cannot write; the thread plays
    whatever audio type Meta gives, so a WAV stands in."""
    frames = io.BytesIO()
    with wave.open(frames, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(n / 8))) for n in range(8000 * seconds)))
    return frames.getvalue()


def test_two_agents_assignment_is_seen_live_and_a_note_never_reaches_whatsapp(
    browser, live_server, meta_stand_in, team, phone_number
):
    from selenium.webdriver.common.by import By

    siti = text_in(meta_stand_in, phone_number, "6281234567801", "Siti Rahma", "Halo, is the shop open?")
    text_in(meta_stand_in, phone_number, "6281234567802", "Budi Santoso", "My order has not arrived")
    log_in(browser, live_server, "rudi")
    browser.get(f"{live_server.url}/admin/inbox/conversation/?view=unassigned")
    browser.execute_script("window.kirimSamePage = true")
    assert contacts_listed(browser) == ["Budi Santoso", "Siti Rahma"]

    with chromium() as nadia:
        log_in(nadia, live_server, "nadia")
        nadia.get(f"{live_server.url}/admin/inbox/conversation/")  # her landing: Open
        assert contacts_listed(nadia) == ["Budi Santoso", "Siti Rahma"]
        nadia.get(f"{live_server.url}/admin/inbox/conversation/{siti.pk}/change/")
        submit(nadia, nadia.find_element(By.ID, "assign-to-me"))
        assert nadia.find_element(By.ID, "conversation-assignee").text == "nadia"
        nadia.find_element(By.ID, "note-input").send_keys("Siti is a regular: offer the loyalty discount")
        submit(nadia, nadia.find_element(By.ID, "add-note"))
        note = nadia.find_element(By.CSS_SELECTOR, ".bubble.note")
        assert "offer the loyalty discount" in note.text and "Private note · nadia" in note.text

        # Rudi's unassigned view lets Siti go, without a reload.
        assert wait_for(lambda: contacts_listed(browser) == ["Budi Santoso"]), contacts_listed(browser)
        assert browser.execute_script("return window.kirimSamePage === true")
        save_screenshot(browser, "team-unassigned.png")
        nadia.get(f"{live_server.url}/admin/inbox/conversation/?view=mine")
        assert contacts_listed(nadia) == ["Siti Rahma"]
        assert nadia.find_element(By.CSS_SELECTOR, ".field-assignee_name").text == "nadia"
        save_screenshot(nadia, "team-mine.png")

    # The stand-in saw no request at all: a note is never sent.
    assert graph_calls(meta_stand_in) == []


def test_a_saved_reply_fills_in_the_contacts_name_and_is_sent(browser, live_server, meta_stand_in, team, phone_number):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    SavedReply.objects.create(org=phone_number.org, name="Greeting",
                              body="Hi {{contact_name}}, {{agent_name}} here. How can I help?")  # fmt: skip
    siti = text_in(meta_stand_in, phone_number, "6281234567801", "Siti Rahma", "Halo?")
    log_in(browser, live_server, "nadia")
    browser.get(f"{live_server.url}/admin/inbox/conversation/{siti.pk}/change/")
    Select(browser.find_element(By.ID, "saved-reply-picker")).select_by_visible_text("Greeting")
    box = browser.find_element(By.ID, "reply-text-input")
    assert box.get_attribute("value") == "Hi Siti Rahma, nadia here. How can I help?"
    submit(browser, browser.find_element(By.ID, "send-text"))
    browser.find_element(By.CSS_SELECTOR, ".bubble.outbound")
    [body] = graph_calls(meta_stand_in)
    assert body["text"] == {"body": "Hi Siti Rahma, nadia here. How can I help?"}


def test_a_resolved_conversation_reopens_when_the_contact_writes_again(
    browser, live_server, meta_stand_in, team, phone_number
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    text_in(meta_stand_in, phone_number, "6281234567802", "Budi Santoso", "My order has not arrived")
    siti = text_in(meta_stand_in, phone_number, "6281234567801", "Siti Rahma", "Thanks, all good!")
    log_in(browser, live_server, "nadia")
    browser.get(f"{live_server.url}/admin/inbox/conversation/{siti.pk}/change/")
    Select(browser.find_element(By.ID, "state-picker")).select_by_value("resolved")
    submit(browser, browser.find_element(By.ID, "set-state"))
    assert browser.find_element(By.ID, "conversation-state").text == "resolved"
    browser.get(f"{live_server.url}/admin/inbox/conversation/")
    assert contacts_listed(browser) == ["Budi Santoso"]  # Open: what is left to do
    browser.execute_script("window.kirimSamePage = true")

    text_in(meta_stand_in, phone_number, "6281234567801", "Siti Rahma", "One more question, sorry")
    assert Conversation.objects.get(pk=siti.pk).state == ConversationState.OPEN
    assert wait_for(lambda: contacts_listed(browser) == ["Siti Rahma", "Budi Santoso"]), contacts_listed(browser)
    assert browser.execute_script("return window.kirimSamePage === true")


def test_an_image_shows_and_a_voice_note_plays_through_kirims_proxy(
    browser, live_server, meta_stand_in, team, phone_number
):
    from selenium.webdriver.common.by import By

    meta_stand_in.state.media.update({"7001": ("image/png", png()), "7002": ("audio/wav", wav())})
    sender = "6281234567801"
    write_in(
        meta_stand_in,
        phone_number,
        sender,
        "Siti Rahma",
        payloads.media_message(new_wamid(), sender, "image", "7001", mime_type="image/png", caption="This one?"),
    )
    siti = Conversation.objects.get(contact_wa_id=sender)
    log_in(browser, live_server, "nadia")
    browser.get(f"{live_server.url}/admin/inbox/conversation/{siti.pk}/change/")
    browser.execute_script("window.kirimSamePage = true")
    image = browser.find_element(By.CSS_SELECTOR, ".bubble.inbound img.media")
    assert wait_for(lambda: browser.execute_script("return arguments[0].naturalWidth", image) == 48)
    assert image.get_attribute("src").startswith(f"{live_server.url}/admin/inbox/conversation/{siti.pk}/media/")

    # The voice note arrives while the thread is open, and plays.
    write_in(meta_stand_in, phone_number, sender, "Siti Rahma",
             payloads.media_message(new_wamid(), sender, "audio", "7002", mime_type="audio/wav", voice=True))  # fmt: skip
    assert wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, ".bubble.inbound audio.media"))
    assert browser.execute_script("return window.kirimSamePage === true")
    audio = browser.find_element(By.CSS_SELECTOR, ".bubble.inbound audio.media")
    # The agent clicks the player's play button (at its left end): a real click, as autoplay is refused.
    from selenium.webdriver.common.action_chains import ActionChains

    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", audio)
    ActionChains(browser).move_to_element_with_offset(audio, -audio.size["width"] // 2 + 18, 0).click().perform()
    assert wait_for(lambda: browser.execute_script("return arguments[0].currentTime", audio) > 0.2)
    token = phone_number.access_token
    assert token not in browser.page_source
    browser.find_element(By.ID, "note-input").send_keys("Customer sent a photo and a voice note")
    submit(browser, browser.find_element(By.ID, "add-note"))
    browser.find_element(By.CSS_SELECTOR, ".bubble.note")
    save_screenshot(browser, "team-thread-note-media.png")
    # Every request the page made went to Kirim, none to Meta's host or the stand-in.
    requested = [
        entry["message"] for entry in browser.get_log("performance") if "requestWillBeSent" in entry["message"]
    ]
    assert requested and not any(meta_stand_in.url in message for message in requested)


def test_the_managers_report_shows_the_first_response_time_the_agent_made(
    browser, live_server, meta_stand_in, team, phone_number
):
    from selenium.webdriver.common.by import By

    siti = text_in(meta_stand_in, phone_number, "6281234567801", "Siti Rahma", "Halo, is the shop open?")
    # She wrote 4 minutes ago (the conversation's cycle opened then); Nadia answers now.
    four_minutes_ago = timezone.now() - timedelta(minutes=4)
    Message.objects.filter(direction=Direction.INBOUND).update(timestamp=four_minutes_ago)
    Conversation.objects.filter(pk=siti.pk).update(opened_at=four_minutes_ago, last_message_at=four_minutes_ago)
    log_in(browser, live_server, "nadia")
    browser.get(f"{live_server.url}/admin/inbox/conversation/{siti.pk}/change/")
    browser.find_element(By.ID, "reply-text-input").send_keys("Yes, until 9 tonight!")
    submit(browser, browser.find_element(By.ID, "send-text"))
    browser.find_element(By.CSS_SELECTOR, ".bubble.outbound")

    log_in(browser, live_server, "maya")
    browser.get(f"{live_server.url}/admin/inbox/conversation/")
    browser.find_element(By.ID, "reports-link").click()
    row = browser.find_element(By.CSS_SELECTOR, '#report-agents tr[data-agent="nadia"]')
    assert row.find_element(By.CSS_SELECTOR, ".first-response").text == "4 min"
    assert browser.find_elements(By.CSS_SELECTOR, ".charts svg rect")
    save_screenshot(browser, "team-report.png")


def test_an_agent_cannot_open_the_report(browser, live_server, team):
    log_in(browser, live_server, "nadia")
    browser.get(f"{live_server.url}/admin/inbox/conversation/reports/")
    assert "403" in browser.title or "Forbidden" in browser.page_source
