"""/v1/{phone_number_id}/messages: sending messages and reading the inbox back, and the key's own org
and numbers. The endpoint also marks messages read, as on Meta: receipts.api extends these views with
that branch, and the URL map serves its subclass."""

from functools import cached_property

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
    MeSerializer,
    MessageListQuerySerializer,
    MessageSerializer,
    PhoneNumberSerializer,
    SendSerializer,
)
from inbox.models import Message, Status
from inbox.selectors import phone_number_of
from inbox.services.send import message_send

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
        return phone_number_of(self.request.user, self.kwargs["phone_number_id"])


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
            **errors(400, 401, 404, 409, 413, 415, 422, 429, 502),
        },
    )


class MessageViewSet(PhoneNumberScopedMixin, viewsets.GenericViewSet):
    @messages_post_schema([SendSerializer], [MessageSerializer], summary="Send a message")
    def create(self, request, phone_number_id):
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
            **errors(400, 401, 404, 429),
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
        responses={200: data_envelope_schema("MessageResponse", MessageSerializer()), **errors(401, 404, 429)},
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


class MeView(APIView):
    @extend_schema(
        summary="The key's org and key",
        responses={200: data_envelope_schema("MeResponse", MeSerializer()), **errors(401, 429)},
    )
    def get(self, request):
        return envelope(request, MeSerializer({"org": request.user, "api_key": request.auth.key}).data)
