"""The inbox as staff use it, in headless Chromium (Debian's chromium and chromium-driver): select
messages in two conversations, run the action, see the message bar and the ticks turn read; and a
user without the permission cannot. Screenshots go to $KIRIM_SCREENSHOTS_DIR (default var/screenshots;
`make screenshots` refreshes the admin guide's, docs/guides/admin-inbox.md)."""

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission
from django.utils import timezone

from conftest import STAFF_PASSWORD
from inbox.models import Conversation, Direction, Message, ReadVia, Role, Status

pytestmark = pytest.mark.django_db(transaction=True)

SCREENSHOTS = Path(os.environ.get("KIRIM_SCREENSHOTS_DIR", Path(settings.BASE_DIR) / "var" / "screenshots"))


@pytest.fixture
def staff_user(org, make_member):
    return lambda username, *, can_mark_read: agent_of(make_member(org, Role.AGENT, username), can_mark_read)


def agent_of(user, can_mark_read):
    """The agent, without the mark-read permission when operators took it away."""
    if not can_mark_read:
        user.groups.clear()
        user.user_permissions.add(*Permission.objects.filter(codename__in=["view_conversation", "view_message"]))
    return user


def log_in(driver, live_server, username):
    from selenium.webdriver.common.by import By

    driver.delete_all_cookies()
    driver.get(f"{live_server.url}/admin/login/")
    driver.find_element(By.NAME, "username").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys(STAFF_PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    driver.find_element(By.ID, "user-tools")  # logged in: the next page has loaded (implicit wait)


def save_screenshot(driver, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SCREENSHOTS / name))


@pytest.fixture
def inbox(phone_number, make_message):
    now = timezone.now()
    chats = [
        ("6281234567801", "Siti Rahma", ["Halo, is the shop open today?", "And do you deliver to Bandung?"]),
        ("6281234567802", "Budi Santoso", ["My order #4411 has not arrived", "It was due on Monday"]),
        ("6281234567803", "Ayu Lestari", ["Thank you! The coffee was great"]),
    ]
    for index, (wa_id, name, texts) in enumerate(chats):
        for offset, text in enumerate(texts):
            make_message(phone_number, contact=wa_id, contact_name=name, text=text,
                         timestamp=now - timedelta(minutes=30 - 10 * index - offset))  # fmt: skip
    make_message(phone_number, contact="6281234567803", direction=Direction.OUTBOUND, status=Status.READ,
                 text="Terima kasih, Ayu! See you again soon.", timestamp=now - timedelta(minutes=1))  # fmt: skip


def test_staff_mark_two_conversations_read_and_see_the_ticks_turn(
    browser, live_server, meta_stand_in, inbox, staff_user
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    user = staff_user("agent", can_mark_read=True)
    log_in(browser, live_server, "agent")
    browser.get(f"{live_server.url}/admin/inbox/conversation/")
    save_screenshot(browser, "inbox.png")

    for name in ("Siti Rahma", "Budi Santoso"):
        row = browser.find_element(By.XPATH, f"//tr[.//strong[text()='{name}']]")
        row.find_element(By.CSS_SELECTOR, "input.action-select").click()
    Select(browser.find_element(By.NAME, "action")).select_by_value("mark_read")
    browser.find_element(By.NAME, "index").click()

    success = browser.find_element(By.CSS_SELECTOR, ".messagelist .success").text
    assert success == "Marked 4 message(s) read in 2 conversation(s)."
    assert [b.text for b in browser.find_elements(By.CSS_SELECTOR, ".unread-badge")] == ["1"]  # Ayu's is left
    assert len(meta_stand_in.state.requests) == 2

    budi = Conversation.objects.get(contact_name="Budi Santoso")
    browser.get(f"{live_server.url}/admin/inbox/conversation/{budi.pk}/change/")
    inbound = browser.find_elements(By.CSS_SELECTOR, ".bubble.inbound")
    assert [b.get_attribute("data-status") for b in inbound] == ["read", "read"]
    assert len(browser.find_elements(By.CSS_SELECTOR, ".bubble.inbound .tick-blue")) == 2
    assert not browser.find_elements(By.ID, "mark-read")  # nothing left to read
    ayu = Conversation.objects.get(contact_name="Ayu Lestari")
    browser.get(f"{live_server.url}/admin/inbox/conversation/{ayu.pk}/change/")
    save_screenshot(browser, "conversation.png")
    assert Message.objects.filter(read_by_user=user, read_via=ReadVia.ADMIN).count() == 4


def test_staff_without_the_permission_cannot(browser, live_server, meta_stand_in, inbox, staff_user):
    from selenium.webdriver.common.by import By

    staff_user("intern", can_mark_read=False)
    log_in(browser, live_server, "intern")
    browser.get(f"{live_server.url}/admin/inbox/conversation/")

    options = [o.get_attribute("value") for o in browser.find_elements(By.CSS_SELECTOR, "select[name=action] option")]
    assert "mark_read" not in options
    siti = Conversation.objects.get(contact_name="Siti Rahma")
    browser.get(f"{live_server.url}/admin/inbox/conversation/{siti.pk}/change/")
    assert browser.find_elements(By.CSS_SELECTOR, ".bubble.inbound")
    assert not browser.find_elements(By.ID, "mark-read")
    assert meta_stand_in.state.requests == []
    assert Message.objects.filter(status=Status.RECEIVED).count() == 5


def test_an_agent_sees_only_their_orgs_conversations_and_marks_one_read(
    browser, live_server, meta_stand_in, inbox, org, foreign_number, make_message, staff_user
):
    from selenium.webdriver.common.by import By

    for wa_id, name in (("6289900000001", "Rival Customer"), ("6289900000002", "Rival Supplier")):
        make_message(foreign_number, contact=wa_id, contact_name=name, text="a message for Other Co only")
    staff_user("agent", can_mark_read=True)
    log_in(browser, live_server, "agent")

    browser.get(f"{live_server.url}/admin/inbox/conversation/")
    listed = {row.text for row in browser.find_elements(By.CSS_SELECTOR, "#result_list .field-contact strong")}
    assert listed == {"Siti Rahma", "Budi Santoso", "Ayu Lestari"}
    assert "Rival" not in browser.page_source and "Other Co" not in browser.page_source

    browser.find_element(By.PARTIAL_LINK_TEXT, "Siti Rahma").click()
    browser.find_element(By.ID, "mark-read").click()
    success = browser.find_element(By.CSS_SELECTOR, ".messagelist .success").text
    assert success == "Marked 2 message(s) read in 1 conversation(s)."
    browser.get(f"{live_server.url}/admin/inbox/conversation/")
    badges = [b.text for b in browser.find_elements(By.CSS_SELECTOR, ".unread-badge")]
    assert badges == ["1", "2"]  # Ayu's and Budi's; Siti's are read
    save_screenshot(browser, "agent-inbox.png")

    rival = Conversation.objects.get(contact_name="Rival Customer")
    browser.get(f"{live_server.url}/admin/inbox/conversation/{rival.pk}/change/")
    assert "Not Found" in browser.page_source and "Rival" not in browser.page_source
    assert [r["phone_number_id"] for r in meta_stand_in.state.requests] == [org.phone_numbers.get().phone_number_id]
    assert Message.objects.filter(org=foreign_number.org, status=Status.RECEIVED).count() == 2
