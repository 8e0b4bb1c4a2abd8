"""The managers' inbox report: conversations opened and resolved, first response and resolution
times per agent and per day, messages in and out per day, and the charts of them as inline SVG (drawn
here, nothing loaded from another host). Reads only: cycles come from ConversationCycle (resolved)
and Conversation (the open ones), messages from the index message_number_timeline."""

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, TypedDict

from django.db.models import Count, DurationField, ExpressionWrapper, F, QuerySet, Sum
from django.db.models.functions import TruncDate, TruncHour
from django.db.models.functions.datetime import TruncBase
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from inbox.models import Conversation, ConversationCycle, HourlyMessageCount, Message, Org, PhoneNumber

DAYS = {"7": 7, "14": 14, "30": 30}
DEFAULT_DAYS = 7
ROLLUP_AFTER = timedelta(hours=2)


@dataclass
class Times:
    """Durations summed per (agent, day): {(username, day): (count, seconds)}, averaged on demand."""

    sums: dict[tuple[str, date], tuple[int, float]] = field(default_factory=dict)

    def add(self, agent: str, day: date, count: int, seconds: float) -> None:
        had = self.sums.get((agent, day), (0, 0.0))
        self.sums[agent, day] = (had[0] + count, had[1] + seconds)

    def agents(self) -> set[str]:
        return {agent for agent, _ in self.sums}

    def count(self, agent: str | None = None, day: date | None = None) -> int:
        return self._total(agent, day)[0]

    def average(self, agent: str | None = None, day: date | None = None) -> float | None:
        count, seconds = self._total(agent, day)
        return seconds / count if count else None

    def _total(self, agent: str | None, day: date | None) -> tuple[int, float]:
        picked = [v for (a, d), v in self.sums.items() if agent in (None, a) and day in (None, d)]
        return sum(c for c, _ in picked), sum(s for _, s in picked)


# Spelled as a call: `in` is a keyword.
DayRow = TypedDict(
    "DayRow",
    {"day": date, "opened": int, "resolved": int, "in": int, "out": int, "first_response": str, "resolution": str},
)


class AgentRow(TypedDict):
    agent: str
    responses: int
    first_response: str
    resolved: int
    resolution: str


@dataclass
class InboxReport:
    days: list[date]
    opened: dict[date, int]
    resolved: dict[date, int]
    messages_in: dict[date, int]
    messages_out: dict[date, int]
    first_response: Times
    resolution: Times

    def rows(self) -> list[DayRow]:
        """One row per day for the table."""
        return [
            {
                "day": day,
                "opened": self.opened.get(day, 0),
                "resolved": self.resolved.get(day, 0),
                "in": self.messages_in.get(day, 0),
                "out": self.messages_out.get(day, 0),
                "first_response": duration(self.first_response.average(day=day)),
                "resolution": duration(self.resolution.average(day=day)),
            }
            for day in self.days
        ]

    def agents(self) -> list[AgentRow]:
        """Per agent over the period: first responses and resolutions, and their average times."""
        return [
            {
                "agent": name,
                "responses": self.first_response.count(agent=name),
                "first_response": duration(self.first_response.average(agent=name)),
                "resolved": self.resolution.count(agent=name),
                "resolution": duration(self.resolution.average(agent=name)),
            }
            for name in sorted(self.first_response.agents() | self.resolution.agents())
        ]

    def conversations_chart(self) -> SafeString:
        return bar_chart(self.days, [("opened", self.opened, "#0671b8"), ("resolved", self.resolved, "#0f8a4a")])

    def messages_chart(self) -> SafeString:
        return bar_chart(self.days, [("in", self.messages_in, "#54656f"), ("out", self.messages_out, "#d9822b")])


def per_day(
    rows: QuerySet[ConversationCycle] | QuerySet[Conversation], moment: str, agent: str | None, since: str, times: Times
) -> dict[date, int]:
    """Rows grouped in the database by the day of `moment` and the `agent` (a user lookup): their count
    and, into `times`, their summed time since `since`. Returns {day: count}."""
    took = ExpressionWrapper(F(moment) - F(since), output_field=DurationField())
    counted: defaultdict[date, int] = defaultdict(int)
    keys = ("day", agent) if agent else ("day",)
    grouped = rows.annotate(day=TruncDate(moment)).values(*keys).annotate(n=Count("pk"), took=Sum(took))
    for row in grouped.order_by():
        counted[row["day"]] += row["n"]
        if agent and row[agent] is not None and row["took"] is not None:
            times.add(row[agent], row["day"], row["n"], row["took"].total_seconds())
    return counted


def inbox_report(*, orgs: QuerySet[Org], days: int = DEFAULT_DAYS, now: datetime | None = None) -> InboxReport:
    """The report of the last `days` days (today included) over `orgs`, in the current time zone.
    Everything is grouped by the database: a few dozen rows come back, however many cycles."""
    now = timezone.localtime(now or timezone.now())
    first_day = now.date() - timedelta(days=days - 1)
    start = start_of(first_day)
    org_ids = list(orgs.values_list("pk", flat=True))
    first_response, resolution = Times(), Times()
    cycles = ConversationCycle.objects.filter(org_id__in=org_ids)
    resolved = per_day(cycles.filter(resolved_at__gte=start), "resolved_at", "resolver__username", "opened_at",
                       resolution)  # fmt: skip
    opened: defaultdict[date, int] = defaultdict(int)
    open_cycles = Conversation.objects.filter(org_id__in=org_ids, opened_at__isnull=False)
    for source in (cycles, open_cycles):
        for day, n in per_day(source.filter(opened_at__gte=start), "opened_at", None, "opened_at", Times()).items():
            opened[day] += n
        answered = source.filter(opened_at__gte=start, first_response_at__isnull=False)
        per_day(answered, "first_response_at", "first_responder__username", "opened_at", first_response)
    messages_in: defaultdict[date, int] = defaultdict(int)
    messages_out: defaultdict[date, int] = defaultdict(int)
    kept, live_from = kept_counts(org_ids, start, now)
    for hour, inbound, outbound in kept.values_list("hour", "inbound", "outbound"):
        messages_in[timezone.localtime(hour).date()] += inbound
        messages_out[timezone.localtime(hour).date()] += outbound
    for row in message_counts(org_ids, live_from, None):  # the hours not kept yet: still changing
        (messages_in if row["direction"] == "inbound" else messages_out)[row["at"]] += row["n"]
    return InboxReport(
        days=[first_day + timedelta(days=n) for n in range(days)],
        opened=dict(opened),
        resolved=dict(resolved),
        messages_in=dict(messages_in),
        messages_out=dict(messages_out),
        first_response=first_response,
        resolution=resolution,
    )


def message_counts(
    org_ids: list[int], start: datetime, end: datetime | None, bucket: type[TruncBase] = TruncDate
) -> QuerySet[Any, Mapping[str, Any]]:  # Message rows annotated with `at` and `n`
    """Messages of the orgs per (`bucket` of their time, direction) from `start` to `end` (None: now),
    through the index message_number_timeline."""
    numbers = PhoneNumber.objects.filter(org_id__in=org_ids).values("pk")
    messages = Message.objects.filter(phone_number__in=numbers, timestamp__gte=start)
    if end is not None:
        messages = messages.filter(timestamp__lt=end)
    return messages.annotate(at=bucket("timestamp")).values("at", "direction").annotate(n=Count("pk")).order_by()


def kept_counts(org_ids: list[int], start: datetime, now: datetime) -> tuple[QuerySet[HourlyMessageCount], datetime]:
    """The orgs' HourlyMessageCount rows from `start` on, the missing ones counted and kept first, and
    when the hours not kept begin. An hour is kept once it ended ROLLUP_AFTER ago, so that messages
    Meta delivers late (its retries) are in; until then it is counted live. Two reports filling the
    same hour write it once."""
    live_from = (now - ROLLUP_AFTER).replace(minute=0, second=0, microsecond=0)
    kept = HourlyMessageCount.objects.filter(org_id__in=org_ids, hour__gte=start, hour__lt=live_from)
    have = set(kept.values_list("org_id", "hour"))
    hours = [start + timedelta(hours=n) for n in range(int((live_from - start).total_seconds() // 3600))]
    missing = sorted({hour for hour in hours for org_id in org_ids if (org_id, hour) not in have})
    if missing:
        counted: defaultdict[tuple[int, datetime], list[int]] = defaultdict(lambda: [0, 0])
        numbers = dict(PhoneNumber.objects.filter(org_id__in=org_ids).values_list("pk", "org_id"))
        rows = message_counts(org_ids, missing[0], live_from, TruncHour).values("at", "direction", "phone_number")
        for row in rows.annotate(n=Count("pk")):
            counted[numbers[row["phone_number"]], row["at"]][row["direction"] != "inbound"] += row["n"]
        HourlyMessageCount.objects.bulk_create(
            [
                HourlyMessageCount(org_id=org_id, hour=hour, inbound=counted[org_id, hour][0],
                                   outbound=counted[org_id, hour][1])
                for org_id in org_ids for hour in missing if (org_id, hour) not in have
            ],
            ignore_conflicts=True,
        )  # fmt: skip
    return kept, max(start, live_from)


def start_of(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def duration(seconds: float | None) -> str:
    """A time for people: 45 s, 12 min, 3 h 05 min."""
    if seconds is None:
        return "—"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


CHART_HEIGHT = 120
BAR_WIDTH = 10


def bar_chart(days: list[date], series: list[tuple[str, dict[date, int], str]]) -> SafeString:
    """Grouped bars per day as inline SVG, one colour per series, with a title per bar for its value."""
    tallest = max([1, *(counts.get(day, 0) for _, counts, _ in series for day in days)])
    group = BAR_WIDTH * len(series) + 8
    bars = []
    for index, day in enumerate(days):
        for offset, (name, counts, colour) in enumerate(series):
            value = counts.get(day, 0)
            height = round(value / tallest * CHART_HEIGHT)
            bars.append((index * group + offset * BAR_WIDTH, CHART_HEIGHT - height, BAR_WIDTH - 1, height, colour,
                         f"{day:%d %b} {name}: {value}"))  # fmt: skip
    legend = format_html_join(" ", '<tspan fill="{}">■ {}</tspan>', ((colour, name) for name, _, colour in series))
    return format_html(
        '<svg class="chart" role="img" width="{}" height="{}" viewBox="0 0 {} {}">{}'
        '<text x="0" y="{}" font-size="12">{}</text></svg>',
        len(days) * group, CHART_HEIGHT + 18, len(days) * group, CHART_HEIGHT + 18,
        format_html_join("", '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}</title></rect>', bars),
        CHART_HEIGHT + 14, legend,
    )  # fmt: skip
