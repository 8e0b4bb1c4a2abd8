"""Messages, one row each, for staff who search across conversations."""

from django.contrib import admin
from django.utils.html import format_html

from inbox.admin.display import CappedCountPaginator, ticks
from inbox.models import (
    Message,
)
from orgs.scope import OrgScopedAdmin


@admin.register(Message)
class MessageAdmin(OrgScopedAdmin):
    list_display = (
        "external_id",
        "contact",
        "direction",
        "status_ticks",
        "type",
        "short_text",
        "timestamp",
        "read_via",
    )
    # No filter on `type`: its choices would be a DISTINCT over the whole table on every page load.
    list_filter = ("direction", "status", "phone_number", "read_via")
    search_fields = ("=contact_wa_id", "=wamid", "=external_id", "contact_name", "text")
    list_select_related = ("phone_number",)
    list_per_page = 100

    class Media:
        css = {"all": ("inbox/inbox.css",)}  # noqa: RUF012 (Django's own API)

    paginator = CappedCountPaginator
    show_full_result_count = False
    readonly_fields = tuple(f.name for f in Message._meta.fields)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="contact")
    def contact(self, message):
        return message.contact_name or message.contact_wa_id

    @admin.display(description="status", ordering="status")
    def status_ticks(self, message):
        return format_html("{} {}", ticks(message.status), message.status)

    @admin.display(description="text")
    def short_text(self, message):
        return message.text[:80]

    def messages_of(self, queryset):
        return queryset
