"""The read-receipt branch of POST {phone_number_id}/messages, on both surfaces: a body with
`status: "read"` marks a message read, as on Meta. These views extend the inbox's message views with
that branch, and the URL map serves them."""

from rest_framework import serializers
from rest_framework.response import Response

from core.api import StrictCharField, envelope
from inbox.api.graph import GraphMessagesView, SentSerializer, SuccessSerializer, graph_messages_post_schema
from inbox.api.serializers import READ, MessageSerializer, SendSerializer, messages_request_kind
from inbox.api.v1 import MessageViewSet, messages_post_schema
from inbox.models import AuditAction, ReadVia, Scope
from orgs.audit import audit_record
from orgs.auth import require_scope
from receipts.services.reads import message_mark_read


class TypingIndicatorSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["text"])


class ReadReceiptSerializer(serializers.Serializer):
    messaging_product = serializers.ChoiceField(choices=["whatsapp"])
    status = serializers.ChoiceField(choices=["read"])
    message_id = StrictCharField(max_length=255, trim_whitespace=False)
    typing_indicator = TypingIndicatorSerializer(required=False, allow_null=True)  # null: Meta takes it


# A fast path, with its plain path and their equivalence test: docs/development/performance.md.
class ReadReceiptOutSerializer(serializers.Serializer):
    """The fields document the answer; `to_representation` writes it without DRF's per-request copy
    of every field: a fast path (docs/development/performance.md). A test holds the two to the same output."""

    id = serializers.CharField(source="external_id")
    object = serializers.SerializerMethodField()
    status = serializers.CharField()
    message_id = serializers.CharField(source="wamid")

    def get_object(self, message) -> str:
        return "message"

    def to_representation(self, message):
        return {"id": message.external_id, "object": "message", "status": message.status, "message_id": message.wamid}


def mark_read_from_body(request, phone_number_id, body):
    """The read receipt a request's body asks for, checked and carried out; its ReadOutcome. Both
    doors (/v1/ and Meta's shapes) call this."""
    receipt = ReadReceiptSerializer(data=body)
    receipt.is_valid(raise_exception=True)
    outcome = message_mark_read(
        org=request.user,
        phone_number_id=phone_number_id,
        wamid=receipt.validated_data["message_id"],
        typing=receipt.validated_data.get("typing_indicator") is not None,
        via=ReadVia.API,
        api_key=request.auth.key,
    )
    if outcome.rows_read:  # a repeat read nothing: nothing to record
        audit_record(request, AuditAction.MARK_READ, org=request.user, target=outcome.message,
                     detail=f"{outcome.rows_read} message(s)")  # fmt: skip
    return outcome


def read_receipt(request, phone_number_id, body):
    outcome = mark_read_from_body(request, phone_number_id, body)
    return envelope(request, ReadReceiptOutSerializer(outcome.message).data)


class ReadingMessageViewSet(MessageViewSet):
    @messages_post_schema(
        [ReadReceiptSerializer, SendSerializer],
        [ReadReceiptOutSerializer, MessageSerializer],
        summary="Send a message, or mark one read",
        description='A body with `status: "read"` is a read receipt (optionally with a typing bubble); '
        "a body with `type` sends a message. Both or neither is 400.",
    )
    def create(self, request, phone_number_id):
        if messages_request_kind(request.data) == READ:
            require_scope(request, Scope.MESSAGES_MARK_READ)
            return read_receipt(request, phone_number_id, request.data)
        return super().create(request, phone_number_id)


class ReadingGraphMessagesView(GraphMessagesView):
    @graph_messages_post_schema(
        [ReadReceiptSerializer, SendSerializer],
        [SuccessSerializer, SentSerializer],
        summary="Send a message, or mark one read (Meta's POST /{phone_number_id}/messages)",
    )
    def post(self, request, phone_number_id, version=None):
        if messages_request_kind(request.data) == READ:
            require_scope(request, Scope.MESSAGES_MARK_READ)
            mark_read_from_body(request, phone_number_id, request.data)
            return Response({"success": True})
        return super().post(request, phone_number_id, version)
