"""The inbox's migrations on a database that already holds conversations, as production's does."""

import pytest
from django.utils import timezone

from inbox.models import Conversation
from testing.migrations import migrate, migrate_to_latest

BEFORE_TEAM_INBOX = [("inbox", "0025_audit_log")]


@pytest.mark.django_db(transaction=True)
def test_the_team_inbox_migrates_a_database_that_has_conversations(org, phone_number):
    old = migrate(BEFORE_TEAM_INBOX)
    now = timezone.now()
    conversations = old.get_model("inbox", "Conversation").objects
    for n in range(3):
        conversations.create(org_id=org.pk, phone_number_id=phone_number.pk, contact_wa_id=f"62812000000{n}",
                             last_message_at=now, last_direction="inbound")  # fmt: skip

    migrate_to_latest()

    migrated = list(Conversation.objects.order_by("pk"))
    assert len(migrated) == 3 and all(c.external_id.startswith("cnv_") for c in migrated)
    assert len({c.external_id for c in migrated}) == 3
    assert all(c.opened_at == now for c in migrated)  # each in the cycle its last inbound message opened
