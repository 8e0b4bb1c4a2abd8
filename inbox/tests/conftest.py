"""Fixtures only the inbox's tests use."""

import pytest

from inbox.tests.graph_surface import WABA_ID


@pytest.fixture
def waba(phone_number):
    """The `phone_number` fixture's number in a WhatsApp Business Account."""
    phone_number.waba_id = WABA_ID
    phone_number.save(update_fields=["waba_id"])
    return phone_number
