"""Meta's Graph API for the tests: mocked with `responses`, or the project's stand-in (fakemeta/) on a
free port; and what a send looked like to Meta."""

import threading

import pytest
import responses
from django.conf import settings

from meta.payloads import split_callback_data


def as_the_client_sent_it(sent):
    """A send's body as Meta received it, with Kirim's id taken back out of biz_opaque_callback_data
    (every send carries one: asserted here), so a test compares it with the client's own body."""
    message_id, callers_own = split_callback_data(sent.get("biz_opaque_callback_data"))
    assert message_id is not None and message_id.startswith("msg_"), sent
    body = {name: value for name, value in sent.items() if name != "biz_opaque_callback_data"}
    return body if callers_own is None else {**body, "biz_opaque_callback_data": callers_own}


def graph_messages_url(phone_number):
    return f"{settings.META_GRAPH_URL}/{phone_number.phone_number_id}/messages"


@pytest.fixture
def meta():
    """Meta's Graph API, mocked: any request not registered fails the test."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def meta_confirms_number(meta, phone_number_id, *, token, waba_id="", display_phone_number="+62 811 0000 0001"):
    """Meta's answers, to `token` only, that confirm a number: its fields and, given a WABA, its
    numbers listing this one. Anything else asked of Meta fails the test."""
    with_token = [responses.matchers.header_matcher({"Authorization": f"Bearer {token}"})]
    number = {"id": phone_number_id, "display_phone_number": display_phone_number, "verified_name": "Toko Kopi"}
    meta.get(f"{settings.META_GRAPH_URL}/{phone_number_id}", json=number, match=with_token)
    if waba_id:
        listed = {"data": [{"id": phone_number_id}], "paging": {"cursors": {"before": "QVFI", "after": "QVFI"}}}
        meta.get(f"{settings.META_GRAPH_URL}/{waba_id}/phone_numbers", json=listed, match=with_token)


@pytest.fixture
def meta_accepts_reads(meta, phone_number):
    meta.post(graph_messages_url(phone_number), json={"success": True})
    return meta


@pytest.fixture
def meta_stand_in(settings, live_server):
    """The project's local Meta stand-in on a free port, with META_GRAPH_URL pointing at it and its
    webhooks going to the live server."""
    from fakemeta.server import make_server

    server = make_server(
        port=0, webhook_url=f"{live_server.url}/webhooks/whatsapp", app_secret=settings.META_APP_SECRET
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_port}"
    settings.META_GRAPH_URL = f"{server.url}/v23.0"
    yield server
    server.shutdown()
    server.server_close()
