"""Admin inbox at scale: 1,000,000 messages over 10,000 conversations in PostgreSQL, beside a second org
of 200,000 messages whose conversations interleave with them; prints the median time of the
conversation list (newest activity first), a conversation page, search across every message's text and
the live answers an open inbox and thread poll, and the team inbox's views ("mine", "unassigned", a
label), a contact's page and the report (a manager's), as an agent of the first org (goal: under 200 ms
each), beside a superuser's (no org scope) as the baseline of the same run.

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


def team_fill(org, agents):
    """The team's work over the bench org's conversations: every 4th is the agent's, every 4th + 1 a
    colleague's; every 5th resolved; every 7th has a label (of 10); the open ones have a cycle, half of
    them answered; and 20,000 resolved cycles over the last two weeks, for the report."""
    from django.db import connection

    agent, colleague = agents
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM inbox_conversationlabel WHERE label_id IN (SELECT id FROM inbox_label WHERE org_id = %s)",
                       [org.pk])  # fmt: skip
        cursor.execute("DELETE FROM inbox_label WHERE org_id = %s", [org.pk])
        cursor.execute("DELETE FROM inbox_conversationcycle WHERE org_id = %s", [org.pk])
        cursor.execute("DELETE FROM inbox_hourlymessagecount WHERE org_id = %s", [org.pk])
        cursor.execute(
            """
            UPDATE inbox_conversation SET
                assignee_id = CASE id %% 4 WHEN 0 THEN %s WHEN 1 THEN %s END,
                state = CASE WHEN id %% 5 = 0 THEN 'resolved' ELSE 'open' END,
                opened_at = CASE WHEN id %% 5 = 0 THEN NULL ELSE last_message_at - interval '20 minutes' END,
                first_response_at = CASE WHEN id %% 5 <> 0 AND id %% 2 = 0 THEN last_message_at - interval '12 minutes' END,
                first_responder_id = CASE WHEN id %% 5 <> 0 AND id %% 2 = 0 THEN %s END,
                external_id = COALESCE(external_id, 'cnv_' || upper(substr(md5(id::text), 1, 26)))
            WHERE org_id = %s
            """,
            [agent.pk, colleague.pk, agent.pk, org.pk],
        )
        cursor.execute(
            "INSERT INTO inbox_label (org_id, name, color) SELECT %s, 'label ' || n, '#54656f' FROM generate_series(0, 9) n",
            [org.pk],
        )
        cursor.execute(
            """
            INSERT INTO inbox_conversationlabel (conversation_id, label_id)
            SELECT c.id, l.id FROM inbox_conversation c JOIN inbox_label l
              ON l.org_id = c.org_id AND l.name = 'label ' || (c.id / 7 %% 10)
            WHERE c.org_id = %s AND c.id %% 7 = 0
            """,
            [org.pk],
        )
        cursor.execute(
            """
            INSERT INTO inbox_conversationcycle (org_id, conversation_id, opened_at, first_response_at,
                first_responder_id, resolved_at, resolver_id)
            SELECT c.org_id, c.id, now() - g * interval '1 minute' - interval '3 hours',
                   now() - g * interval '1 minute' - interval '170 minutes', %s,
                   now() - g * interval '1 minute', %s
            FROM generate_series(1, 20000) g
            JOIN inbox_conversation c ON c.id = (SELECT min(id) FROM inbox_conversation WHERE org_id = %s) + g %% 10000
            """,
            [agent.pk, colleague.pk, org.pk],
        )
        cursor.execute("ANALYZE inbox_conversation; ANALYZE inbox_conversationlabel; ANALYZE inbox_conversationcycle")


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
    from inbox.models import Conversation, Label, Message, Org, Role
    from orgs.members import member_add

    if args.refill or any(Message.objects.filter(org__slug=slug).count() != n for slug, _, n, _, _ in ORGS):
        print(f"filling {MESSAGES:,} + {OTHER_MESSAGES:,} messages ...", flush=True)
        fill()
    admin, _ = User.objects.get_or_create(username="bench-admin", defaults={"is_staff": True, "is_superuser": True})
    bench = Org.objects.get(slug="bench")
    agent, _ = member_add(org=bench, username="bench-agent", role=Role.AGENT)
    colleague, _ = member_add(org=bench, username="bench-colleague", role=Role.AGENT)
    manager, _ = member_add(org=bench, username="bench-manager", role=Role.MANAGER)
    team_fill(bench, (agent, colleague))
    clients = {}
    for user in (admin, agent, manager):
        clients[user] = Client(HTTP_HOST="localhost")
        clients[user].force_login(user)
    conversations = list(Conversation.objects.filter(org__slug="bench").values_list("pk", flat=True))
    label = Label.objects.filter(org=bench).first()

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
        # The team inbox: the views agents land on, a label, a contact's page, and (a manager's) report.
        "mine": lambda rng: "/admin/inbox/conversation/?view=mine",
        "unassigned": lambda rng: "/admin/inbox/conversation/?view=unassigned",
        "label filter": lambda rng: f"/admin/inbox/conversation/?view=all&labels__id__exact={label.pk}",
        "contact page": lambda rng: f"/admin/inbox/conversation/{rng.choice(conversations)}/contact/",
        "report, 7 days (manager)": lambda rng: "/admin/inbox/conversation/reports/",
        "report, 30 days (manager)": lambda rng: "/admin/inbox/conversation/reports/?days=30",
    }
    # The report is the managers': the manager stands in for the agent in its rows.
    staff_of = {name: manager if name.startswith("report") else agent for name in pages}
    print(f"{Message.objects.count():,} messages, {Conversation.objects.count():,} conversations")
    print(
        f"{'page':26} {'superuser ms':>12} {'agent ms':>9} {'ratio':>6} {'agent queries':>14}  goal: agent < {GOAL_MS} ms"
    )
    for name, url in pages.items():
        medians = {}
        for user, client in ((admin, clients[admin]), (staff_of[name], clients[staff_of[name]])):
            rng = random.Random(7)  # both users open the same conversations

            def get(client=client, url=url, rng=rng):
                response = client.get(url(rng))
                assert response.status_code == 200, response.status_code

            connection.queries_log.clear()  # with DEBUG on, a full log would make the count wrong
            with CaptureQueriesContext(connection) as queries:
                get()
            medians[user] = timed(get, args.runs)[0]
        staff = medians[staff_of[name]]
        verdict = "ok" if staff < GOAL_MS else "OVER"
        print(
            f"{name:26} {medians[admin]:12.1f} {staff:9.1f} {staff / medians[admin]:6.2f} {len(queries):14d}  {verdict}"
        )


if __name__ == "__main__":
    main()
