"""The API docs pages load nothing from outside Kirim and read "Kirim API"; the admin's "View site"
opens them."""

import json
import re
from html import unescape as html_unescape
from urllib.parse import urlsplit

import pytest
from django.test import Client

DOCS_PAGES = [("/v1/docs", "Kirim API"), ("/v1/graph/docs", "Kirim: Meta's own API")]


@pytest.mark.parametrize("url, title", DOCS_PAGES)
def test_the_docs_page_names_only_kirims_own_assets(db, url, title):
    client = Client()
    page = client.get(url)

    assert page.status_code == 200
    html = page.content.decode()
    assert html_unescape(re.search(r"<title>\s*(.*?)\s*</title>", html).group(1)) == title
    linked = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert linked and all(urlsplit(link).netloc == "" for link in linked), linked
    assert "fonts.g" not in html
    for asset in linked:
        assert client.get(asset).status_code == 200, asset  # served by Kirim itself
    redoc_settings = json.loads(re.search(r"const redocSettings = (\{.*?\});", html, re.DOTALL).group(1))
    fonts = redoc_settings["theme"]["typography"]
    assert "system-ui" in fonts["fontFamily"] and "system-ui" in fonts["headings"]["fontFamily"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("url, title", DOCS_PAGES)
def test_in_a_browser_the_docs_page_requests_only_kirim_and_its_heading_is_the_title(browser, live_server, url, title):
    from selenium.webdriver.common.by import By

    browser.get_log("performance")  # forget what earlier pages requested
    browser.get(live_server.url + url)
    heading = browser.find_element(By.CSS_SELECTOR, ".api-info h1")  # Redoc has rendered (implicit wait)

    assert heading.text == title
    assert browser.title == title
    events = [json.loads(entry["message"])["message"] for entry in browser.get_log("performance")]
    asked = {
        e["params"]["requestId"]: e["params"]["request"]["url"]
        for e in events
        if e["method"] == "Network.requestWillBeSent" and e["params"]["documentURL"].startswith(live_server.url)
    }
    refused = {e["params"]["requestId"] for e in events if e["method"] == "Network.loadingFailed"
               and e["params"].get("blockedReason") == "csp"}  # fmt: skip
    elsewhere = {i: u for i, u in asked.items() if not u.startswith((live_server.url, "data:", "blob:"))}
    assert live_server.url + url in asked.values()
    assert set(elsewhere) <= refused, elsewhere  # Redoc's footer logo is on a CDN: the page's policy refuses it


def test_the_admins_view_site_link_opens_the_api_docs(admin_client):
    index = admin_client.get("/admin/").content.decode()

    view_site = re.search(r'<a href="([^"]*)">View site</a>', index).group(1)
    assert view_site == "/v1/docs"
    assert admin_client.get(view_site).status_code == 200
