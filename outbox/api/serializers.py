"""What the events-out API accepts and renders."""

from typing import Any

from rest_framework import serializers

from core.api import StrictCharField
from outbox.models import RECEIVES, Delivery, DeliveryAttempt, DeliveryStatus, EventType, Receiver, WebhookSubscription

URL_MAX = 2000
DESCRIPTION_MAX = 500


class StrictBooleanField(serializers.BooleanField):
    """true or false, not "yes" or 1."""

    def to_internal_value(self, data: object) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class SubscriptionInSerializer(serializers.Serializer[dict[str, object]]):
    url = StrictCharField(max_length=URL_MAX, help_text="https only; a public address")
    receiver = serializers.ChoiceField(
        choices=Receiver.choices,
        required=False,
        help_text="`meta`: a handler written for Meta's webhooks, which gets Meta's JSON only (the default); "
        "`kirim`: reads Kirim's envelope too (the default when `events` lists `message.read`)",
    )
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=EventType.choices),
        allow_empty=False,
        min_length=1,  # the documents say so
        required=False,
        help_text="default: every event its receiver parses",
    )
    description = StrictCharField(max_length=DESCRIPTION_MAX, required=False, allow_blank=True)


def subscription_request_in_documents(
    result: dict[str, Any], generator: object, request: object, public: bool
) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: a new subscription as services.receiver_check takes it,
    which a serializer cannot say: its events are any, unless its receiver is `meta`, which lists only
    the events it parses. (A change is checked against the stored subscription: no document can say.)"""
    schema = result.get("components", {}).get("schemas", {}).get("SubscriptionInRequest")
    if schema is not None:
        schema["anyOf"] = [
            {"properties": {"receiver": {"enum": [Receiver.KIRIM]}}},
            {"properties": {"events": {"items": {"enum": RECEIVES[Receiver.META]}}}},
        ]
    return result


class SubscriptionPatchSerializer(SubscriptionInSerializer):
    enabled = StrictBooleanField(required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, partial=True, **kwargs)


class SubscriptionSerializer(serializers.ModelSerializer[WebhookSubscription]):
    id = serializers.CharField(source="external_id")
    object = serializers.SerializerMethodField()
    events = serializers.ListField(child=serializers.ChoiceField(choices=EventType.choices))
    disabled_reason = serializers.CharField(help_text="why Kirim disabled it, when it did")
    disabled_events = serializers.DictField(
        child=serializers.CharField(),
        help_text="event types Kirim stopped after failures in a row, each with why; `enabled: true` resumes them",
    )

    class Meta:
        model = WebhookSubscription
        fields: tuple[str, ...] = ("id", "object", "url", "receiver", "events", "description", "enabled", "disabled_reason",
                  "disabled_events", "created_at")  # fmt: skip

    def get_object(self, subscription: WebhookSubscription) -> str:
        return "webhook_subscription"


class SubscriptionWithSecretSerializer(SubscriptionSerializer):
    """Only the answers to create and rotate_secret carry the secret: it is shown once."""

    secret = serializers.CharField(help_text="`whsec_...`: verify signatures with it; shown once")

    class Meta(SubscriptionSerializer.Meta):
        fields = (*SubscriptionSerializer.Meta.fields, "secret")


class AttemptSerializer(serializers.ModelSerializer[DeliveryAttempt]):
    class Meta:
        model = DeliveryAttempt
        fields = ("number", "started_at", "status_code", "duration_ms", "response_excerpt", "error")


class DeliverySerializer(serializers.ModelSerializer[Delivery]):
    id = serializers.CharField(source="external_id")
    object = serializers.SerializerMethodField()
    subscription_id = serializers.CharField(source="subscription.external_id")
    event_id = serializers.CharField(source="event.external_id")
    attempt_log = AttemptSerializer(many=True, help_text="each attempt: status code, duration, answer excerpt")

    class Meta:
        model = Delivery
        fields = (
            "id", "object", "subscription_id", "event_id", "event_type", "status", "attempts", "next_attempt_at",
            "last_status_code", "last_error", "created_at", "finished_at", "attempt_log",
        )  # fmt: skip

    def get_object(self, delivery: Delivery) -> str:
        return "webhook_delivery"


class DeliveryFilterSerializer(serializers.Serializer[dict[str, object]]):
    subscription = StrictCharField(max_length=32, required=False, help_text="`wbs_...`")
    status = serializers.ChoiceField(choices=DeliveryStatus.choices, required=False)
    event_type = serializers.ChoiceField(choices=EventType.choices, required=False)
    created_after = serializers.DateTimeField(required=False, help_text="ISO 8601")
    created_before = serializers.DateTimeField(required=False, help_text="ISO 8601")


class DeliveryListQuerySerializer(DeliveryFilterSerializer):
    limit = serializers.IntegerField(min_value=1, max_value=100, default=25)
    cursor = StrictCharField(max_length=1000, required=False, help_text="`next_cursor` of the previous page")


class BulkReplaySerializer(DeliveryFilterSerializer):
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=1000, help_text="at most 1000")


class BulkReplayResultSerializer(serializers.Serializer[dict[str, object]]):
    replayed = serializers.IntegerField()
    deliveries = serializers.ListField(child=serializers.CharField(), help_text="the new deliveries' ids")


class DeletedSerializer(serializers.Serializer[dict[str, object]]):
    id = serializers.CharField()
    object = serializers.CharField()
    deleted = serializers.BooleanField()
