"""Events out in the admin, scoped to the member's orgs (orgs/scope.py): subscriptions for the
org's managers (the secret shown once, on the page that answers a create or a rotation), and the
deliveries with every attempt, read-only, with a replay action."""

from django import forms
from django.contrib import admin
from django.template.response import TemplateResponse

from core.errors import ApiError
from orgs.audit import audit_record
from orgs.models import AuditAction
from orgs.scope import MANAGERS, OrgScopedAdmin
from outbox import services
from outbox.models import Delivery, DeliveryAttempt, EventType, WebhookSubscription


class SubscriptionForm(forms.ModelForm):
    events = forms.MultipleChoiceField(
        choices=EventType.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="None ticked: every event its receiver parses.",
    )

    class Meta:
        model = WebhookSubscription
        fields = ("org", "url", "receiver", "events", "description", "enabled")

    def _checked(self, check, name):
        try:
            return check(self.cleaned_data[name])
        except ApiError as error:
            raise forms.ValidationError(error.message) from None

    def clean_url(self):
        return self._checked(services.url_check, "url")

    def clean(self):
        super().clean()
        cleaned = self.cleaned_data
        if "receiver" in cleaned and "events" in cleaned:
            try:
                cleaned["receiver"], cleaned["events"] = services.receiver_check(
                    cleaned["receiver"], cleaned["events"] or None
                )
            except ApiError as error:
                self.add_error("events", error.message)
        return cleaned


def changed(request, subscription, detail):
    audit_record(request, AuditAction.SUBSCRIPTION_CHANGED, org=subscription.org_id, target=subscription, detail=detail)


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(OrgScopedAdmin):
    roles = MANAGERS
    form = SubscriptionForm
    list_display = ("external_id", "url", "org", "receiver", "enabled", "disabled_reason", "created_at")
    list_filter = ("org", "receiver", "enabled")
    list_select_related = ("org",)
    search_fields = ("url", "description", "=external_id")
    readonly_fields = ("external_id", "disabled_reason", "disabled_events", "failure_streaks", "created_at")
    actions = ("rotate_secret",)

    def get_fields(self, request, obj=None):
        if obj is None:
            return SubscriptionForm.Meta.fields
        return ("external_id", *SubscriptionForm.Meta.fields, *self.readonly_fields[1:])

    def get_readonly_fields(self, request, obj=None):
        # A subscription stays with its org: its deliveries belong to that org.
        return (*self.readonly_fields, "org") if obj is not None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        if change:
            services.subscription_update(obj, **{name: form.cleaned_data[name] for name in form.changed_data})
            changed(request, obj, "changed: " + ", ".join(sorted(form.changed_data)))
            return
        created = services.subscription_create(org=obj.org, url=obj.url, receiver=obj.receiver, events=obj.events,
                                               description=obj.description, enabled=obj.enabled)  # fmt: skip
        obj.pk, obj.external_id, obj.secret = created.pk, created.external_id, created.secret
        changed(request, obj, "created")

    def get_deleted_objects(self, objs, request):
        """What a delete takes: the subscriptions, and their deliveries counted, not listed (a busy
        subscription has thousands). Those go with their subscription, by the service, so a manager
        needs no permission on deliveries, which the role only views."""
        subscriptions = list(objs)
        counts = {
            WebhookSubscription._meta.verbose_name_plural: len(subscriptions),
            Delivery._meta.verbose_name_plural: Delivery.objects.filter(subscription__in=subscriptions).count(),
        }
        return [str(s) for s in subscriptions], counts, set(), []

    def delete_model(self, request, obj):
        services.subscription_delete(obj)
        changed(request, obj, "deleted")

    def delete_queryset(self, request, queryset):
        for subscription in queryset.order_by("pk"):
            services.subscription_delete(subscription)
            changed(request, subscription, "deleted")

    def response_add(self, request, obj, post_url_continue=None):
        return self._secrets_page(request, [obj], rotated=False)

    @admin.action(description="Rotate the signing secret of selected subscriptions", permissions=("change",))
    def rotate_secret(self, request, queryset):
        rotated = [services.subscription_rotate_secret(s) for s in queryset]
        for subscription in rotated:
            changed(request, subscription, "secret rotated")
        return self._secrets_page(request, rotated, rotated=True)

    def _secrets_page(self, request, subscriptions, *, rotated):
        return TemplateResponse(
            request,
            "admin/outbox/webhooksubscription/secrets.html",
            {**self.admin_site.each_context(request), "title": "Signing secrets", "opts": self.opts,
             "subscriptions": subscriptions, "rotated": rotated},
        )  # fmt: skip


class AttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    fields = ("number", "started_at", "status_code", "duration_ms", "response_excerpt", "error")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Delivery)
class DeliveryAdmin(OrgScopedAdmin):
    roles = MANAGERS
    list_display = ("external_id", "event_type", "subscription", "status", "attempts", "last_status_code",
                    "next_attempt_at", "created_at")  # fmt: skip
    list_filter = ("status", "event_type", "subscription")
    list_select_related = ("subscription",)
    search_fields = ("=external_id", "=event__external_id")
    fields = ("external_id", "org", "subscription", "event_type", "status", "attempts", "next_attempt_at",
              "last_status_code", "last_error", "created_at", "finished_at")  # fmt: skip
    readonly_fields = fields
    inlines = (AttemptInline,)
    actions = ("replay",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Replay selected deliveries (send their events again)", permissions=("view",))
    def replay(self, request, queryset):
        replays = services.deliveries_replay(list(queryset[: services.BULK_REPLAY_MAX]))
        self.message_user(request, f"Queued {len(replays)} replay(s).")
