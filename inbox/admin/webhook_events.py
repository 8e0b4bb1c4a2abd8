"""Meta's webhooks as received, for operators: failed ones listed and reprocessed."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied

from inbox.admin.readonly import ReadOnly
from inbox.models import (
    WebhookEvent,
)
from inbox.services.ingest import webhook_reprocess


class FailedFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return (("failed", "Failed (to reprocess)"), ("applied", "Applied"))

    def queryset(self, request, queryset):
        if self.value() == "failed":
            return queryset.failed()
        if self.value() == "applied":
            return queryset.applied()
        return queryset


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnly, admin.ModelAdmin):
    """Every org's webhooks in one list: for the operators running Kirim (superusers), not for staff."""

    list_display = ("id", "received_at", "processed_at", "attempts", "failure")
    list_filter = (FailedFilter,)
    date_hierarchy = "received_at"
    actions = ("reprocess",)
    readonly_fields = ("received_at", "processed_at", "attempts", "error", "failed_items", "body")

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    # Never deleted here either: `purge_expired` keeps them for their retention.

    def get_queryset(self, request):
        return super().get_queryset(request).defer("body")

    @admin.display(description="not applied")
    def failure(self, event):
        return event.failure[:120]

    @admin.action(description="Reprocess selected webhook events")
    def reprocess(self, request, queryset):
        if not self.has_module_permission(request):
            raise PermissionDenied
        reprocessed, still_failing = webhook_reprocess(list(queryset.values_list("pk", flat=True)))
        self.message_user(
            request, f"Reprocessed {reprocessed} event(s); {reprocessed - len(still_failing)} applied whole."
        )
        for pk, reason in still_failing.items():
            self.message_user(request, f"Event {pk} still fails: {reason}", messages.WARNING)
