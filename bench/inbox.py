"""Admin inbox at scale: 1,000,000 messages over 10,000 conversations in PostgreSQL, beside a second org
of 200,000 messages whose conversations interleave with them; prints the median time of the
conversation list (newest activity first), a conversation page, search across every message's text and
the live answers an open inbox and thread poll, as an agent of the first org (goal: under 200 ms each),
beside a superuser's (no org scope) as the baseline of the same run.

    DATABASE_URL=postgres://kirim:kirim@127.0.0.1:5432/kirim_bench .venv/bin/python bench/inbox.py [--refill]
"""

import argparse
import random
from urllib.parse import quote

from common import fresh_org, setup_django, timed

MESSAGES = 1_000_000
CONVERSATIONS = 10_000
NUMBERS = 5
# Another org's inbox over the same hours, so the agent's scope has rows to leave out.
OTHER_MESSAGES = 200_000
OTHER_CONVERSATIONS = 2_000
GOAL_MS = 200
ORGS = (  # slug, first digits of its numbers, messages, conversations, seconds between messages
    ("bench", "90000000000", MESSAGES, CONVERSATIONS, 1),
    ("bench-other", "90000000001", OTHER_MESSAGES, OTHER_CONVERSATIONS, 5),
)


def fill():
    """Both orgs' messages in one INSERT in time order, so their ids interleave as live traffic's do."""
    from django.db import connection

    selects, params, org_ids = [], [], []
    for slug, number_prefix, messages, conversations, seconds_apart in ORGS:
        org, numbers = fresh_org(slug, [f"{number_prefix}{n}" for n in range(NUMBERS)])
        org_ids.append(org.pk)
        # Message g belongs to conversation g % conversations; every third is outbound; the newest 1%
        # of inbound messages are unread.
        selects.append(
            f"""
            SELECT 'msg_' || upper(substr(md5(%s || g::text), 1, 26)), %s,
                   %s + (g %% {conversations}) %% {NUMBERS}, 'wamid.BENCH' || %s || g,
                   CASE WHEN g %% 3 = 0 THEN 'outbound' ELSE 'inbound' END,
                   CASE WHEN g %% 3 = 0 THEN 'delivered' WHEN g > {messages * 99 // 100} THEN 'received' ELSE 'read' END,
                   '62812' || lpad((g %% {conversations})::text, 7, '0'), 'Contact ' || (g %% {conversations}),
                   'text', 'message number ' || g, '{{}}'::jsonb,
                   now() - ({messages} - g) * interval '{seconds_apart} seconds' AS sent_at, now(), now(), '', '', ''
            FROM generate_series(1, {messages}) AS g"""
        )
        params += [slug, org.pk, numbers[0].pk, slug]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO inbox_message (external_id, org_id, phone_number_id, wamid, direction, status,
                contact_wa_id, contact_name, type, text, payload, timestamp, created_at, updated_at,
                read_via, contact_user_id, group_id)
            SELECT * FROM ({" UNION ALL ".join(selects)}) AS generated ORDER BY sent_at
            """,
            params,
        )
        cursor.execute(
            """
            INSERT INTO inbox_conversation (org_id, phone_number_id, contact_wa_id, contact_name,
                last_message_at, last_message_text, last_direction, contact_user_id)
            SELECT DISTINCT ON (phone_number_id, contact_wa_id) org_id, phone_number_id, contact_wa_id,
                   contact_name, timestamp, left(text, 200), direction, ''
            FROM inbox_message WHERE org_id = ANY(%s)
            ORDER BY phone_number_id, contact_wa_id, timestamp DESC
            """,
            [org_ids],
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
    from django.db.models import Subquery
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from inbox.admin.live import live_cursor
    from inbox.models import Conversation, Message, Org, Role
    from orgs.members import member_add

    if args.refill or any(Message.objects.filter(org__slug=slug).count() != n for slug, _, n, _, _ in ORGS):
        print(f"filling {MESSAGES:,} + {OTHER_MESSAGES:,} messages ...", flush=True)
        fill()
    admin, _ = User.objects.get_or_create(username="bench-admin", defaults={"is_staff": True, "is_superuser": True})
    agent, _ = member_add(org=Org.objects.get(slug="bench"), username="bench-agent", role=Role.AGENT)
    clients = {}
    for user in (admin, agent):
        clients[user] = Client(HTTP_HOST="localhost")
        clients[user].force_login(user)
    conversations = list(Conversation.objects.filter(org__slug="bench").values_list("pk", flat=True))

    # Live answers: 50 messages of each org changed "just now" (a fixed cursor, so every run sees them).
    changed_at = timezone.now()
    for slug in ("bench", "bench-other"):
        touched = Message.objects.filter(org__slug=slug).order_by("?").values("pk")[:50]
        Message.objects.filter(pk__in=Subquery(touched)).update(updated_at=changed_at)
    since = quote(live_cursor(changed_at))

    pages = {
        "inbox list": lambda rng: "/admin/inbox/conversation/",
        "inbox list, unread only": lambda rng: "/admin/inbox/conversation/?unread=yes",
        "inbox list, page 50": lambda rng: "/admin/inbox/conversation/?p=50",
        "conversation page": lambda rng: f"/admin/inbox/conversation/{rng.choice(conversations)}/change/",
        "message list": lambda rng: "/admin/inbox/message/",
        # Search reads every message's text: one message's words, and a contact's name.
        "search, one message": lambda rng: "/admin/inbox/conversation/?q=number+777777",
        "search, a contact's name": lambda rng: "/admin/inbox/conversation/?q=Contact+4242",
        "live inbox, nothing new": lambda rng: (
            f"/admin/inbox/conversation/live/?since={quote(live_cursor(timezone.now()))}"
        ),
        "live inbox, 50 changed": lambda rng: f"/admin/inbox/conversation/live/?since={since}",
        "live thread": lambda rng: f"/admin/inbox/conversation/{rng.choice(conversations)}/live/?since={since}",
    }
    print(f"{Message.objects.count():,} messages, {Conversation.objects.count():,} conversations")
    print(
        f"{'page':26} {'superuser ms':>12} {'agent ms':>9} {'ratio':>6} {'agent queries':>14}  goal: agent < {GOAL_MS} ms"
    )
    for name, url in pages.items():
        medians = {}
        for user, client in clients.items():
            rng = random.Random(7)  # both users open the same conversations

            def get(client=client, url=url, rng=rng):
                response = client.get(url(rng))
                assert response.status_code == 200, response.status_code

            connection.queries_log.clear()  # with DEBUG on, a full log would make the count wrong
            with CaptureQueriesContext(connection) as queries:
                get()
            medians[user] = timed(get, args.runs)[0]
        verdict = "ok" if medians[agent] < GOAL_MS else "OVER"
        ratio = medians[agent] / medians[admin]
        print(f"{name:26} {medians[admin]:12.1f} {medians[agent]:9.1f} {ratio:6.2f} {len(queries):14d}  {verdict}")


if __name__ == "__main__":
    main()
