"""Programs outside Python that some tests drive: Debian's headless Chromium, and node with the npm
libraries of package-lock.json. Each skips, saying why, where it is missing."""

import contextlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from django.conf import settings

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@contextlib.contextmanager
def chromium():
    """A headless Chromium of its own (a second staff member's, say); skipped where it is missing."""
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("no browser: install Debian's chromium and chromium-driver (.ci/run does)")
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="kirim-chromium-")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-quic", "--window-size=1280,860", f"--user-data-dir={profile}"):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})  # every request the page makes
    try:
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    except WebDriverException as error:
        pytest.skip(f"headless Chromium did not start: {error.msg}")
    driver.implicitly_wait(5)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def submit(driver, button):
    """Click a button that posts its form, and return once the answer's page has replaced this one:
    read sooner, the page still shows the old elements (the assignee before the change), which then
    go stale under the reader."""
    from selenium.webdriver.support.expected_conditions import staleness_of
    from selenium.webdriver.support.ui import WebDriverWait

    button.click()
    WebDriverWait(driver, 10).until(staleness_of(button))


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium through Selenium; skipped, saying why, where it is missing."""
    with chromium() as driver:
        yield driver


@pytest.fixture(scope="session")
def node():
    """The node binary, with the npm libraries of package-lock.json installed (`npm ci`, which `make
    test` runs where npm is); skipped, saying why, where either is missing, and failed in CI."""
    path = shutil.which("node")
    reason = None
    if path is None or int(subprocess.check_output([path, "--version"], text=True)[1:].split(".")[0]) < 20:
        reason = "needs node 20 or later on PATH (.ci/run installs it)"
    elif not (Path(settings.BASE_DIR) / "node_modules" / ".package-lock.json").exists():
        reason = "needs the npm libraries of package-lock.json: run `npm ci` (make test does where npm is)"
    if reason:
        pytest.fail(reason) if os.environ.get("CI") else pytest.skip(reason)
    return path
