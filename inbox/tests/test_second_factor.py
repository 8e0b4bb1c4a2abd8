"""Staff second factor: with STAFF_REQUIRE_2FA on, a manager reaches the admin only after setting up a
TOTP device and, on later logins, after a code from it or one of her recovery codes, each of which
works once. Agents work with their password alone; with the setting off, nobody is asked."""

from base64 import b32decode

import pytest
from django.contrib.auth.models import User
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from conftest import logged_in, wait_for
from inbox.models import Role
from receipts.tests.test_browser import log_in


@pytest.fixture
def required(settings):
    settings.STAFF_REQUIRE_2FA = True
    # django-otp makes a device wait after a wrong code (1 s, doubling): the tests' next code follows at once.
    settings.OTP_TOTP_THROTTLE_FACTOR = settings.OTP_STATIC_THROTTLE_FACTOR = 0


def code_for(secret_b32):
    return f"{totp(b32decode(secret_b32)):06d}"


@pytest.mark.django_db(transaction=True)
def test_a_manager_sets_up_totp_then_recovery_codes_work_once_each(required, browser, live_server, org, make_member):
    from selenium.webdriver.common.by import By

    make_member(org, Role.MANAGER, "maya")

    def enter(code):
        field = browser.find_element(By.NAME, "code")
        field.clear()  # a refused code stays in the field
        field.send_keys(code)
        browser.find_element(By.ID, "verify").click()

    def admin_index_reached():
        browser.get(f"{live_server.url}/admin/")
        return "/admin/second-factor/" not in browser.current_url and bool(browser.find_elements(By.ID, "content-main"))

    log_in(browser, live_server, "maya")
    assert "/admin/second-factor/" in browser.current_url  # no second factor yet: sent to set one up
    assert not admin_index_reached()
    secret = browser.find_element(By.ID, "totp-secret").text
    enter("000000" if code_for(secret) != "000000" else "111111")  # a wrong code is refused
    assert wait_for(lambda: "not valid" in browser.page_source)  # once the answer to the POST has loaded
    enter(code_for(secret))
    codes = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#recovery-codes code")]
    assert len(codes) == 10
    browser.find_element(By.ID, "continue").click()
    assert admin_index_reached()

    log_in(browser, live_server, "maya")  # a new session: the password is not enough
    assert not admin_index_reached()
    enter(codes[0])
    assert admin_index_reached()

    log_in(browser, live_server, "maya")
    browser.get(f"{live_server.url}/admin/")
    enter(codes[0])  # used already
    assert wait_for(lambda: "not valid" in browser.page_source) and not admin_index_reached()
    enter(codes[1])
    assert admin_index_reached()


def test_an_agent_needs_no_second_factor(required, org, make_member):
    agent = logged_in(make_member(org, Role.AGENT))
    assert agent.get("/admin/").status_code == 200


def test_operators_need_one_too(required, db):
    operator = logged_in(User.objects.create_superuser("operator", password="pw"))
    response = operator.get("/admin/inbox/org/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/second-factor/")


def test_with_the_setting_off_nobody_is_asked(settings, org, make_member):
    settings.STAFF_REQUIRE_2FA = False
    assert logged_in(make_member(org, Role.MANAGER)).get("/admin/").status_code == 200


def test_the_setup_page_keeps_one_unconfirmed_device_and_never_shows_a_confirmed_key(required, org, make_member):
    manager = logged_in(make_member(org, Role.MANAGER))
    manager.get("/admin/second-factor/")
    manager.get("/admin/second-factor/")
    device = TOTPDevice.objects.get()
    assert not device.confirmed
    device.confirmed = True
    device.save()
    page = manager.get("/admin/second-factor/").content.decode()
    assert "totp-secret" not in page and "recovery codes" in page
