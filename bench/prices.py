"""The price report at scale: 1,000,000 priced outbound messages of one org over 30 days, 20,000
conversations and 8 templates, in PostgreSQL. Prints the median and p95 of the report over the 30 days
(GET /v1/pricing's work: totals, by category, by template, the top 50 conversations) read from the
tallies (inbox.services.business.price_report), beside the same sums read from every message's `pricing` as
the baseline of the same run, and their ratio (goal: the report under 200 ms median).

Messages are written by SQL, and their tallies by one INSERT ... SELECT that counts them as
inbox.services.business.prices_record does, status by status (the report checks the two agree).

    DATABASE_URL=postgres://kirim:kirim@127.0.0.1:5432/kirim_bench .venv/bin/python bench/prices.py [--refill]
"""

import argparse
import datetime

from common import fresh_org, setup_django, timed

MESSAGES = 1_000_000
CONVERSATIONS = 20_000
DAYS = 30
TEMPLATES = 8
GOAL_MS = 200
SLUG = "bench-prices"


def fill():
    """Message g: conversation g % CONVERSATIONS, active on two days of the period (conversations come
    and go), every third a template of the conversation's own (marketing or utility) and billable, the
    others service messages, free."""
    from django.db import connection

    org, (number,) = fresh_org(SLUG, ["920000000001"])
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO inbox_message (external_id, org_id, phone_number_id, wamid, direction, status, contact_wa_id,
                contact_user_id, group_id, contact_name, type, text, payload, timestamp, created_at, updated_at,
                read_via, pricing)
            SELECT 'msg_' || upper(substr(md5('price' || g), 1, 26)), %s, %s, 'wamid.PRICE' || g, 'outbound', 'delivered',
                   c, '', '', '', t, 'hi', p, d, d, d, '',
                   jsonb_build_object('billable', t = 'template', 'pricing_model', 'PMP',
                                      'category', CASE WHEN t = 'template' THEN k ELSE 'service' END,
                                      'type', CASE WHEN t = 'template' THEN 'regular' ELSE 'free_customer_service' END)
            FROM (
                SELECT g, '62814' || lpad((g %% {CONVERSATIONS})::text, 7, '0') AS c,
                       CASE WHEN g %% 3 = 0 THEN 'template' ELSE 'text' END AS t,
                       CASE WHEN (g %% {CONVERSATIONS}) %% 2 = 0 THEN 'marketing' ELSE 'utility' END AS k,
                       CASE WHEN g %% 3 = 0
                            THEN jsonb_build_object('type', 'template', 'template',
                                 jsonb_build_object('name', 'template_' || ((g %% {CONVERSATIONS}) %% {TEMPLATES})))
                            ELSE '{{"type": "text"}}'::jsonb END AS p,
                       now() - ((((g %% {CONVERSATIONS}) * 7) %% ({DAYS} - 1)) + (g / {CONVERSATIONS}) %% 2)
                             * interval '1 day' AS d
                FROM generate_series(1, {MESSAGES}) AS g
            ) AS m
            """,
            [org.pk, number.pk],
        )
        cursor.execute(
            """
            INSERT INTO inbox_pricetally (org_id, day, phone_number_id, template_name, category, pricing_type,
                                          billable, messages)
            SELECT org_id, (timestamp AT TIME ZONE 'UTC')::date, phone_number_id,
                   coalesce(payload -> 'template' ->> 'name', ''), pricing ->> 'category', pricing ->> 'type',
                   (pricing ->> 'billable')::boolean, count(*)
            FROM inbox_message WHERE org_id = %s GROUP BY 1, 2, 3, 4, 5, 6, 7
            """,
            [org.pk],
        )
        cursor.execute(
            """
            INSERT INTO inbox_conversationpricetally (org_id, day, phone_number_id, contact_wa_id, messages, billable)
            SELECT org_id, (timestamp AT TIME ZONE 'UTC')::date, phone_number_id, contact_wa_id, count(*),
                   count(*) FILTER (WHERE (pricing ->> 'billable')::boolean)
            FROM inbox_message WHERE org_id = %s GROUP BY 1, 2, 3, 4
            """,
            [org.pk],
        )
        cursor.execute("ANALYZE inbox_conversationpricetally")
        cursor.execute("ANALYZE inbox_message")
        cursor.execute("ANALYZE inbox_pricetally")
    return org


def from_every_message(org, since, until, top=50):
    """The baseline: the same sums over the messages themselves, as a report without tallies reads them."""
    from django.db.models import Count, Q
    from django.db.models.fields.json import KT

    messages = (
        org_messages(org)
        .filter(timestamp__date__gte=since, timestamp__date__lte=until, pricing__isnull=False)
        .annotate(category=KT("pricing__category"), kind=KT("pricing__type"), template=KT("payload__template__name"))
        .order_by()
    )
    counts = {"priced": Count("pk"), "charged": Count("pk", filter=Q(pricing__billable=True))}
    return {
        **messages.aggregate(**counts),
        "by_category": list(messages.values("category", "kind").annotate(**counts)),
        "by_template": list(messages.values("template", "category").annotate(**counts)),
        "by_conversation": list(messages.values("contact_wa_id").annotate(**counts).order_by("-charged")[:top]),
    }


def org_messages(org):
    from inbox.models import Message

    return Message.objects.filter(org=org)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refill", action="store_true", help="write the million messages again")
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    setup_django()
    from inbox.models import ConversationPriceTally, Org, PriceTally
    from inbox.services.business import price_report

    org = Org.objects.filter(slug=SLUG).first()
    if args.refill or org is None or not ConversationPriceTally.objects.filter(org=org).exists():
        print(f"writing {MESSAGES:,} messages and their tallies ...", flush=True)
        org = fill()
    until = datetime.datetime.now(datetime.UTC).date()
    since = until - datetime.timedelta(days=DAYS)
    report = price_report(org, since=since, until=until)
    baseline = from_every_message(org, since, until)
    assert (report["messages"], report["billable"]) == (baseline["priced"], baseline["charged"]) == (
        MESSAGES, MESSAGES // 3,
    ), "the tallies and the messages disagree"  # fmt: skip
    tallies = PriceTally.objects.filter(org=org).count()
    by_conversation = ConversationPriceTally.objects.filter(org=org).count()
    print(f"{MESSAGES:,} priced messages, {tallies:,} + {by_conversation:,} tally rows, {CONVERSATIONS:,} "
          f"conversations, {DAYS} days")  # fmt: skip
    medians = {}
    for name, run in (("report from the tallies", lambda: price_report(org, since=since, until=until)),
                      ("baseline: every message", lambda: from_every_message(org, since, until))):  # fmt: skip
        median, p95 = timed(run, args.runs)
        medians[name] = median
        print(f"{name:26} median {median:8.1f} ms   p95 {p95:8.1f} ms")
    ratio = medians["report from the tallies"] / medians["baseline: every message"]
    verdict = "ok" if medians["report from the tallies"] < GOAL_MS else "OVER THE GOAL"
    print(f"ratio report/baseline {ratio:.3f}; goal: report median < {GOAL_MS} ms: {verdict}")


if __name__ == "__main__":
    main()
