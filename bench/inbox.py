"""Admin inbox at scale: 1,000,000 messages over 10,000 conversations in PostgreSQL; prints the median
time of the conversation list and of a conversation page (goal: under 200 ms each).

    DATABASE_URL=postgres://kirim:kirim@127.0.0.1:5432/kirim_bench .venv/bin/python bench/inbox.py [--refill]
"""

import argparse
import random

from common import fresh_org, setup_django, timed

MESSAGES = 1_000_000
CONVERSATIONS = 10_000
NUMBERS = 5
GOAL_MS = 200


def fill():
    from django.db import connection

    org, numbers = fresh_org("bench", [f"90000000000{n}" for n in range(NUMBERS)])
    first_number = numbers[0].pk
    with connection.cursor() as cursor:
        # Message g belongs to conversation g % CONVERSATIONS; every third is outbound; the newest 1%
        # of inbound messages are unread.
        cursor.execute(
            f"""
            INSERT INTO inbox_message (external_id, org_id, phone_number_id, wamid, direction, status,
                contact_wa_id, contact_name, type, text, payload, timestamp, created_at, updated_at,
                read_via)
            SELECT 'msg_' || upper(substr(md5(g::text), 1, 26)), %s, %s + (g %% {CONVERSATIONS}) %% {NUMBERS},
                   'wamid.BENCH' || g,
                   CASE WHEN g %% 3 = 0 THEN 'outbound' ELSE 'inbound' END,
                   CASE WHEN g %% 3 = 0 THEN 'delivered' WHEN g > {MESSAGES * 99 // 100} THEN 'received' ELSE 'read' END,
                   '62812' || lpad((g %% {CONVERSATIONS})::text, 7, '0'), 'Contact ' || (g %% {CONVERSATIONS}),
                   'text', 'message number ' || g, '{{}}'::jsonb,
                   now() - ({MESSAGES} - g) * interval '1 second', now(), now(), ''
            FROM generate_series(1, {MESSAGES}) AS g
            """,
            [org.pk, first_number],
        )
        cursor.execute(
            """
            INSERT INTO inbox_conversation (org_id, phone_number_id, contact_wa_id, contact_name,
                last_message_at, last_message_text, last_direction)
            SELECT DISTINCT ON (phone_number_id, contact_wa_id) org_id, phone_number_id, contact_wa_id,
                   contact_name, timestamp, left(text, 200), direction
            FROM inbox_message WHERE org_id = %s
            ORDER BY phone_number_id, contact_wa_id, timestamp DESC
            """,
            [org.pk],
        )
        cursor.execute("ANALYZE inbox_message; ANALYZE inbox_conversation")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refill", action="store_true", help="drop the bench org's data and fill again")
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    setup_django()

    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from inbox.models import Conversation, Message

    if args.refill or Message.objects.filter(org__slug="bench").count() != MESSAGES:
        print(f"filling {MESSAGES:,} messages over {CONVERSATIONS:,} conversations ...", flush=True)
        fill()
    admin, _ = User.objects.get_or_create(username="bench-admin", defaults={"is_staff": True, "is_superuser": True})
    client = Client(HTTP_HOST="localhost")
    client.force_login(admin)
    conversations = list(Conversation.objects.filter(org__slug="bench").values_list("pk", flat=True))
    rng = random.Random(7)

    pages = {
        "inbox list": lambda: "/admin/inbox/conversation/",
        "inbox list, unread only": lambda: "/admin/inbox/conversation/?unread=yes",
        "inbox list, page 50": lambda: "/admin/inbox/conversation/?p=50",
        "conversation page": lambda: f"/admin/inbox/conversation/{rng.choice(conversations)}/change/",
        "message list": lambda: "/admin/inbox/message/",
    }
    print(f"{Message.objects.count():,} messages, {Conversation.objects.count():,} conversations")
    print(f"{'page':28} {'median ms':>10} {'p95 ms':>8} {'queries':>8}  goal < {GOAL_MS} ms")
    for name, url in pages.items():

        def get(url=url):
            response = client.get(url())
            assert response.status_code == 200, response.status_code

        with CaptureQueriesContext(connection) as queries:
            get()
        count = len(queries)
        median, p95 = timed(get, args.runs)
        verdict = "ok" if median < GOAL_MS else "OVER"
        print(f"{name:28} {median:10.1f} {p95:8.1f} {count:8d}  {verdict}")


if __name__ == "__main__":
    main()
