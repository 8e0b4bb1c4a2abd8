"""/v1/{phone_number_id}/messages: sending messages and reading the inbox back, and the key's own org
and numbers. The endpoint also marks messages read, as on Meta: receipts.api extends these views with
that branch, and the URL map serves its subclass."""

from datetime import timedelta
from functools import cached_property
from types import MappingProxyType

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import viewsets
from rest_framework.views import APIView

from core.api import envelope, list_envelope
from core.errors import NotFound
from core.ids import is_public_id
from core.pagination import keyset_page
from core.schema import data_envelope_schema, errors, list_envelope_schema
from inbox.api import idempotency
from inbox.api.serializers import (
    ApiKeySerializer,
    ContactErasedSerializer,
    MeSerializer,
    MessageListQuerySerializer,
    MessageSerializer,
    PhoneNumberSerializer,
    RotatedKeySerializer,
    RotateKeySerializer,
    SendSerializer,
)
from inbox.models import CONTACT_KEY_HELP, AuditAction, Message, Scope, Status
from inbox.selectors import phone_number_of
from inbox.services.erasure import contact_erase
from inbox.services.send import message_send
from orgs.audit import audit_record
from orgs.auth import request_org, require_scope
from orgs.keys import api_key_rotate

PHONE_NUMBER_ID = OpenApiParameter(
    "phone_number_id", str, OpenApiParameter.PATH, pattern=r"^[0-9]{6,20}$", description="Meta's id of your number"
)

LIST_FILTERS = {"direction": "direction", "status": "status", "contact": "contact_wa_id"}  # query param: column


class PhoneNumberScopedMixin(APIView):
    """Views under /v1/{phone_number_id}/: the number must belong to the key's org.

    Another org's number answers exactly like one that does not exist."""

    @cached_property
    def phone_number(self):
        """Looked up on first use: the read-receipt branch finds the number with its message instead."""
        return phone_number_of(request_org(self.request), self.kwargs["phone_number_id"])


def messages_post_schema(request_serializers, result_serializers, **texts):
    """The OpenAPI of POST {phone_number_id}/messages, for the bodies a view takes: the send here, and
    the read receipt where receipts.api adds it."""
    return extend_schema(
        **texts,
        parameters=[
            PHONE_NUMBER_ID,
            OpenApiParameter(
                idempotency.HEADER,
                str,
                OpenApiParameter.HEADER,
                description="sends only: replays the first answer for 24 h",
            ),
        ],
        request=PolymorphicProxySerializer(
            "MessagesRequest", serializers=request_serializers, resource_type_field_name=None
        ),
        responses={
            200: data_envelope_schema(
                "MessagesResponse",
                PolymorphicProxySerializer(
                    "MessagesResult", serializers=result_serializers, resource_type_field_name=None
                ),
            ),
            202: OpenApiResponse(
                data_envelope_schema("UnconfirmedSendResponse", MessageSerializer()),
                description="a send Meta may have received whose answer was lost: `unconfirmed` until its "
                "status webhook; a retry with the same Idempotency-Key answers it as it stands",
            ),
            **errors(400, 401, 403, 404, 409, 413, 415, 422, 429, 502),
        },
    )


class MessageViewSet(PhoneNumberScopedMixin, viewsets.GenericViewSet):
    required_scope = MappingProxyType({"list": Scope.MESSAGES_READ, "retrieve": Scope.MESSAGES_READ})  # create: by body

    @messages_post_schema([SendSerializer], [MessageSerializer], summary="Send a message")
    def create(self, request, phone_number_id):
        require_scope(request, Scope.MESSAGES_SEND)
        body = request.data
        SendSerializer(data=body).is_valid(raise_exception=True)

        def respond(claim):
            message = message_send(phone_number=self.phone_number, body=body, claim=claim)
            # 202: Meta's answer was lost; the message is `unconfirmed` until its status webhook comes.
            status = 202 if message.status == Status.UNCONFIRMED else 200
            return envelope(request, MessageSerializer(message).data, status=status)

        return idempotency.run_once(
            request, org=request.user, scope=self.phone_number.phone_number_id, body=body, respond=respond
        )

    @extend_schema(
        summary="List messages, newest first",
        parameters=[PHONE_NUMBER_ID, MessageListQuerySerializer],
        responses={
            200: list_envelope_schema("MessageList", MessageSerializer(many=True)),
            **errors(400, 401, 403, 404, 429),
        },
    )
    def list(self, request, phone_number_id):
        query = MessageListQuerySerializer(data=request.query_params.dict())  # `?status=` is an error, not absent
        query.is_valid(raise_exception=True)
        filters = {k: v for k, v in query.validated_data.items() if k in LIST_FILTERS}
        messages = Message.objects.filter(
            phone_number=self.phone_number, **{LIST_FILTERS[name]: value for name, value in filters.items()}
        )
        rows, has_more, next_cursor = keyset_page(
            messages,
            scope=[request.user.pk, self.phone_number.pk, filters],
            limit=query.validated_data["limit"],
            cursor=query.validated_data.get("cursor"),
        )
        for row in rows:
            row.phone_number = self.phone_number  # every row is this number's: no join needed
        return list_envelope(
            request, MessageSerializer(rows, many=True).data, has_more=has_more, next_cursor=next_cursor
        )

    @extend_schema(
        summary="Get one message by its id",
        parameters=[PHONE_NUMBER_ID, OpenApiParameter("id", str, OpenApiParameter.PATH, description="`msg_...`")],
        responses={200: data_envelope_schema("MessageResponse", MessageSerializer()), **errors(401, 403, 404, 429)},
    )
    def retrieve(self, request, phone_number_id, pk):
        message = None
        if is_public_id(pk, "msg"):
            message = Message.objects.filter(phone_number=self.phone_number, external_id=pk).first()
        if message is None:
            raise NotFound("No message with this id on this phone number.", param="id")
        message.phone_number = self.phone_number
        return envelope(request, MessageSerializer(message).data)


class AccountsView(APIView):
    @extend_schema(
        summary="The org's phone numbers",
        responses={200: list_envelope_schema("PhoneNumberList", PhoneNumberSerializer(many=True)), **errors(401, 429)},
    )
    def get(self, request):
        numbers = request.user.phone_numbers.order_by("created_at", "pk")
        return list_envelope(request, PhoneNumberSerializer(numbers, many=True).data)


class ContactView(PhoneNumberScopedMixin):
    required_scope = Scope.CONVERSATIONS_MANAGE

    @extend_schema(
        summary="Erase a contact",
        description="Empties the content of every message with the contact on this number (text, Meta's message "
        "objects with media ids and links, names), and deletes the raw webhook payloads and events out (delivered "
        "or not) that name them. Rows, ids, statuses and times stay. Erasing again changes nothing.",
        parameters=[
            PHONE_NUMBER_ID,
            OpenApiParameter("contact", str, OpenApiParameter.PATH, description=CONTACT_KEY_HELP),
        ],
        responses={
            200: data_envelope_schema("ContactErasedResponse", ContactErasedSerializer()),
            **errors(401, 403, 404, 429),
        },
    )
    def delete(self, request, phone_number_id, contact):
        erased = contact_erase(phone_number=self.phone_number, contact=contact)
        audit_record(request, AuditAction.CONTACT_ERASED, org=request.user, target=contact,
                     detail=f"on {phone_number_id}: {erased.messages} messages")  # fmt: skip
        data = {"phone_number_id": phone_number_id, "contact": contact, "messages_erased": erased.messages,
                "webhook_payloads_deleted": erased.webhook_payloads, "events_deleted": erased.events}  # fmt: skip
        return envelope(request, ContactErasedSerializer(data).data)


class RotateKeyView(APIView):
    @extend_schema(
        summary="Rotate the key making this request",
        description="A new key with this one's name, scopes and expiry, shown once. This key keeps working "
        "for the grace period, then answers 401 `expired_api_key`.",
        request=RotateKeySerializer,
        responses={
            201: data_envelope_schema("KeyRotated", RotatedKeySerializer()),
            **errors(400, 401, 413, 415, 429),
        },
    )
    def post(self, request):
        fields = RotateKeySerializer(data=request.data)  # no body: {}; a JSON null is refused
        fields.is_valid(raise_exception=True)
        hours = fields.validated_data.get("grace_period_hours")
        old = request.auth.key
        key, secret = api_key_rotate(key=old, grace=None if hours is None else timedelta(hours=hours))
        audit_record(request, AuditAction.KEY_ROTATED, org=request.user, target=old, detail=key.external_id)
        rotated = {**ApiKeySerializer(key).data, "key": secret, "replaces": ApiKeySerializer(old).data}
        return envelope(request, rotated, status=201)  # as RotatedKeySerializer describes it


class MeView(APIView):
    @extend_schema(
        summary="The key's org and key",
        responses={200: data_envelope_schema("MeResponse", MeSerializer()), **errors(401, 429)},
    )
    def get(self, request):
        return envelope(request, MeSerializer({"org": request.user, "api_key": request.auth.key}).data)
