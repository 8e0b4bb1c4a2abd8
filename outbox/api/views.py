"""/v1/webhook_subscriptions and /v1/webhook_deliveries: an org's events out. Another org's
subscription or delivery answers exactly like one that does not exist."""

from collections.abc import Mapping
from typing import Any, TypeVar

from django.db.models import Manager, Model, Prefetch, QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from core.api import envelope, list_envelope
from core.errors import InvalidRequest, NotFound
from core.ids import is_public_id
from core.pagination import keyset_page
from core.schema import data_envelope_schema, errors, list_envelope_schema
from orgs.audit import audit_record
from orgs.auth import request_org
from orgs.models import AuditAction, Org, Scope
from outbox import services
from outbox.api.serializers import (
    BulkReplayResultSerializer,
    BulkReplaySerializer,
    DeletedSerializer,
    DeliveryListQuerySerializer,
    DeliverySerializer,
    SubscriptionInSerializer,
    SubscriptionPatchSerializer,
    SubscriptionSerializer,
    SubscriptionWithSecretSerializer,
)
from outbox.models import Delivery, DeliveryAttempt, WebhookSubscription

SUBSCRIPTION_ID = OpenApiParameter("id", str, OpenApiParameter.PATH, description="`wbs_...`")
DELIVERY_ID = OpenApiParameter("id", str, OpenApiParameter.PATH, description="`wbd_...`")


M = TypeVar("M", bound=Model)


def _body(request: Request) -> dict[str, Any]:
    data = request.data
    if not isinstance(data, dict):
        raise InvalidRequest("The body must be a JSON object.", code="invalid_json")
    return data


def _owned(queryset: QuerySet[M] | Manager[M], org: Org, public_id: str, prefix: str, what: str) -> M:
    found = queryset.filter(org=org, external_id=public_id).first() if is_public_id(public_id, prefix) else None
    if found is None:
        raise NotFound(f"No {what} with this id.", param="id")
    return found


class WebhookSubscriptionViewSet(viewsets.GenericViewSet[WebhookSubscription]):
    required_scope = Scope.SUBSCRIPTIONS_MANAGE

    def _subscription(self, request: Request, pk: str) -> WebhookSubscription:
        return _owned(WebhookSubscription.objects, request_org(request), pk, "wbs", "webhook subscription")

    @extend_schema(
        summary="Subscribe a URL to events",
        request=SubscriptionInSerializer,
        responses={
            201: data_envelope_schema("SubscriptionCreated", SubscriptionWithSecretSerializer()),
            **errors(400, 401, 403, 413, 415, 429),
        },
    )
    def create(self, request: Request) -> Response:
        fields = SubscriptionInSerializer(data=_body(request))
        fields.is_valid(raise_exception=True)
        org = request_org(request)
        subscription = services.subscription_create(org=org, **fields.validated_data)
        audit_record(request, AuditAction.SUBSCRIPTION_CHANGED, org=org, target=subscription, detail="created")
        return envelope(request, SubscriptionWithSecretSerializer(subscription).data, status=201)

    @extend_schema(
        summary="The org's webhook subscriptions",
        responses={
            200: list_envelope_schema("SubscriptionList", SubscriptionSerializer(many=True)),
            **errors(401, 403, 429),
        },
    )
    def list(self, request: Request) -> Response:
        subscriptions = WebhookSubscription.objects.filter(org=request_org(request)).order_by("created_at", "pk")
        return list_envelope(request, SubscriptionSerializer(subscriptions, many=True).data)

    @extend_schema(
        summary="One webhook subscription",
        parameters=[SUBSCRIPTION_ID],
        responses={
            200: data_envelope_schema("SubscriptionResponse", SubscriptionSerializer()),
            **errors(401, 403, 404, 429),
        },
    )
    def retrieve(self, request: Request, pk: str) -> Response:
        return envelope(request, SubscriptionSerializer(self._subscription(request, pk)).data)

    @extend_schema(
        summary="Change a subscription's url, receiver, events, description, or enable it again",
        parameters=[SUBSCRIPTION_ID],
        request=SubscriptionPatchSerializer,
        responses={
            200: data_envelope_schema("SubscriptionUpdated", SubscriptionSerializer()),
            **errors(400, 401, 403, 404, 413, 415, 429),
        },
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        subscription = self._subscription(request, pk)
        fields = SubscriptionPatchSerializer(data=_body(request))
        fields.is_valid(raise_exception=True)
        services.subscription_update(subscription, **fields.validated_data)
        audit_record(request, AuditAction.SUBSCRIPTION_CHANGED, org=request_org(request), target=subscription,
                     detail="changed: " + ", ".join(sorted(fields.validated_data)))  # fmt: skip
        return envelope(request, SubscriptionSerializer(subscription).data)

    @extend_schema(
        summary="Delete a subscription and its deliveries",
        parameters=[SUBSCRIPTION_ID],
        responses={200: data_envelope_schema("SubscriptionDeleted", DeletedSerializer()), **errors(401, 403, 404, 429)},
    )
    def destroy(self, request: Request, pk: str) -> Response:
        subscription = self._subscription(request, pk)
        services.subscription_delete(subscription)
        audit_record(request, AuditAction.SUBSCRIPTION_CHANGED, org=request_org(request), target=pk, detail="deleted")
        return envelope(request, {"id": pk, "object": "webhook_subscription", "deleted": True})

    @extend_schema(
        summary="A new signing secret; the old one keeps signing beside it for 24 hours",
        parameters=[SUBSCRIPTION_ID],
        request=None,
        responses={
            200: data_envelope_schema("SubscriptionRotated", SubscriptionWithSecretSerializer()),
            **errors(401, 403, 404, 429),
        },
    )
    @action(detail=True, methods=["post"])
    def rotate_secret(self, request: Request, pk: str) -> Response:
        subscription = services.subscription_rotate_secret(self._subscription(request, pk))
        audit_record(request, AuditAction.SUBSCRIPTION_CHANGED, org=request_org(request), target=subscription,
                     detail="secret rotated")  # fmt: skip
        return envelope(request, SubscriptionWithSecretSerializer(subscription).data)


def _filtered(org: Org, filters: Mapping[str, Any]) -> QuerySet[Delivery]:
    deliveries = Delivery.objects.filter(org=org)
    if "subscription" in filters:
        subscription = filters["subscription"]
        deliveries = (
            deliveries.filter(subscription__external_id=subscription)
            if is_public_id(subscription, "wbs")
            else deliveries.none()
        )
    for name, lookup in (("status", "status"), ("event_type", "event_type"),
                         ("created_after", "created_at__gte"), ("created_before", "created_at__lt")):  # fmt: skip
        if name in filters:
            deliveries = deliveries.filter(**{lookup: filters[name]})
    return deliveries


def _rendered(deliveries: QuerySet[Delivery] | Manager[Delivery]) -> QuerySet[Delivery]:
    return deliveries.select_related("subscription", "event").defer("event__body", "subscription__secret",
        "subscription__previous_secret").prefetch_related(
        Prefetch("attempt_log", queryset=DeliveryAttempt.objects.order_by("number"))
    )  # fmt: skip


class WebhookDeliveryViewSet(viewsets.GenericViewSet[Delivery]):
    required_scope = Scope.SUBSCRIPTIONS_MANAGE

    @extend_schema(
        summary="Deliveries, newest first, with each attempt",
        parameters=[DeliveryListQuerySerializer],
        responses={
            200: list_envelope_schema("DeliveryList", DeliverySerializer(many=True)),
            **errors(400, 401, 403, 429),
        },
    )
    def list(self, request: Request) -> Response:
        query = DeliveryListQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        filters = {k: v for k, v in query.validated_data.items() if k not in ("limit", "cursor")}
        org = request_org(request)
        rows, has_more, next_cursor = keyset_page(
            _rendered(_filtered(org, filters)),
            scope=[org.pk, "webhook_deliveries", filters],
            limit=query.validated_data["limit"],
            cursor=query.validated_data.get("cursor"),
            order_field="created_at",
        )
        return list_envelope(
            request, DeliverySerializer(rows, many=True).data, has_more=has_more, next_cursor=next_cursor
        )

    @extend_schema(
        summary="One delivery, with each attempt",
        parameters=[DELIVERY_ID],
        responses={200: data_envelope_schema("DeliveryResponse", DeliverySerializer()), **errors(401, 403, 404, 429)},
    )
    def retrieve(self, request: Request, pk: str) -> Response:
        return envelope(request, DeliverySerializer(_owned(_rendered(Delivery.objects), request_org(request), pk, "wbd",
                                                           "webhook delivery")).data)  # fmt: skip

    @extend_schema(
        summary="Send a delivery's event again (a new delivery)",
        parameters=[DELIVERY_ID],
        request=None,
        responses={201: data_envelope_schema("DeliveryReplayed", DeliverySerializer()), **errors(401, 403, 404, 429)},
    )
    @action(detail=True, methods=["post"])
    def replay(self, request: Request, pk: str) -> Response:
        original = _owned(Delivery.objects, request_org(request), pk, "wbd", "webhook delivery")
        replayed = services.deliveries_replay([original])
        if not replayed:  # its subscription was deleted meanwhile, and the delivery with it
            raise NotFound("No webhook delivery with this id.", param="id")
        return envelope(
            request, DeliverySerializer(_rendered(Delivery.objects).get(pk=replayed[0].pk)).data, status=201
        )

    @extend_schema(
        summary="Send again the events of every delivery the filters select, oldest first, at most 1000",
        operation_id="webhook_deliveries_bulk_replay",
        request=BulkReplaySerializer,
        responses={
            201: data_envelope_schema("DeliveriesReplayed", BulkReplayResultSerializer()),
            **errors(400, 401, 403, 413, 415, 429),
        },
    )
    @action(detail=False, methods=["post"], url_path="replay")
    def bulk_replay(self, request: Request) -> Response:
        fields = BulkReplaySerializer(data=_body(request))
        fields.is_valid(raise_exception=True)
        filters = dict(fields.validated_data)
        limit = filters.pop("limit")
        selected = list(_filtered(request_org(request), filters).order_by("created_at", "pk")[:limit])
        replays = services.deliveries_replay(selected)
        result = {"replayed": len(replays), "deliveries": [r.external_id for r in replays]}
        return envelope(request, result, status=201)
