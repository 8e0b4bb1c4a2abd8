"""Error reports to Sentry, through a test transport: an induced error arrives with its type and
where it happened, and nothing of what the client sent (body, key, query) nor any secret."""

import logging

import pytest
import sentry_sdk
from sentry_sdk.transport import Transport

from conftest import assert_error
from core import reporting
from core.logs import WITHHELD
from core.tests.test_logs import SECRET, database_refuses_the_body  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db


class Captured(Transport):
    """Keeps what the SDK would send, as the bytes it would send."""

    def __init__(self, options=None):
        super().__init__(options)
        self.sent = []

    def capture_envelope(self, envelope):
        self.sent.append(envelope.serialize().decode("utf-8", errors="replace"))


@pytest.fixture
def reports():
    transport = Captured()
    reporting.start("https://public@errors.example.invalid/1", transport=transport)
    yield transport
    sentry_sdk.init()  # no DSN: reports off again for the rest of the session
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, reporting.ReportErrors)]:
        root.removeHandler(handler)


def test_an_induced_error_is_reported_without_the_body_the_key_or_the_query(
    reports,
    api,
    api_key_secret,
    phone_number,
    database_refuses_the_body,  # noqa: F811
):
    body = {"messaging_product": "whatsapp", "to": "6281234567890", "type": "text", "text": {"body": SECRET}}
    path = f"/v1/{phone_number.phone_number_id}/messages?note={SECRET}"
    error = assert_error(api.post(path, body, format="json"), 500, "internal_error")
    sentry_sdk.flush()
    sent = "\n".join(reports.sent)
    assert '"type":"RuntimeError"' in sent and WITHHELD in sent  # the error and where, not its message
    assert error["request_id"] in sent
    for secret in (SECRET, api_key_secret, phone_number.access_token, "Bearer"):
        assert secret not in sent
