"""The admin's pages of what Meta tells a business beyond its messages: the account's events, the
contacts (saved names, blocks), and the price report. Managers only, as numbers and keys are."""

from django.contrib import admin

from inbox.admin.readonly import ReadOnly
from inbox.models import AccountEvent, Contact, ConversationPriceTally, PriceTally
from inbox.services.business import price_summary
from orgs.scope import MANAGERS, OrgScopedAdmin


@admin.register(AccountEvent)
class AccountEventAdmin(ReadOnly, OrgScopedAdmin):
    roles = MANAGERS
    list_display = ("received_at", "field", "event", "waba_id", "org")
    list_filter = ("field", "event", "org")
    readonly_fields = ("org", "waba_id", "field", "event", "value", "received_at")
    ordering = ("-received_at",)


@admin.register(Contact)
class ContactAdmin(ReadOnly, OrgScopedAdmin):
    list_display = ("contact_wa_id", "saved_name", "blocked", "blocked_at", "phone_number")
    list_filter = ("blocked", "phone_number")
    search_fields = ("=contact_wa_id", "saved_name")
    readonly_fields = ("org", "phone_number", "contact_wa_id", "saved_name", "blocked", "blocked_at", "updated_at")


@admin.register(PriceTally)
class PriceReportAdmin(ReadOnly, OrgScopedAdmin):
    """What messages cost, over the period and filters chosen: totals and bars per category, template
    and conversation above the day-by-day rows they sum."""

    roles = MANAGERS
    list_display = ("day", "template_name", "category", "pricing_type", "billable", "messages", "phone_number")
    list_filter = ("day", "category", "billable", "phone_number", "org")
    search_fields = ("template_name",)
    ordering = ("-day", "-messages")
    date_hierarchy = "day"

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None) or {}  # a redirect (a bad filter) has none
        changelist = context.get("cl")
        if changelist is not None:  # the conversations of the same orgs, numbers and days as the rows listed
            rows = changelist.queryset.order_by()
            conversations = ConversationPriceTally.objects.filter(
                org__in=rows.values("org"), phone_number__in=rows.values("phone_number"), day__in=rows.values("day")
            )
            context["report"] = _with_bars(price_summary(rows, conversations))
        return response


def _with_bars(report):
    """Each row's share of the largest one's messages, in percent, for its bar."""
    for key in ("by_category", "by_template", "by_conversation"):
        largest = max((row["messages"] for row in report[key]), default=0) or 1
        for row in report[key]:
            row["bar"] = round(100 * row["messages"] / largest)
    return report
