"""Blocking users and the price report, on both surfaces: /v1/{phone_number_id}/block_users in Kirim's
envelope, /{version}/{phone_number_id}/block_users with Meta's body and Meta's answers (a user who
could not be blocked is named in Meta's 400, beside those who were), and /v1/pricing for billing."""

import datetime

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import NOT_ONLY_WHITESPACE, StrictCharField, envelope, list_envelope
from core.errors import InvalidField
from core.schema import data_envelope_schema, errors, list_envelope_schema, meta_error_responses
from inbox.api.graph import GRAPH_ERRORS, VERSION, GraphView
from inbox.api.v1 import PHONE_NUMBER_ID, PhoneNumberScopedMixin
from inbox.models import AuditAction, Scope
from inbox.selectors import phone_number_of
from inbox.services.blocking import MAX_USERS, users_block
from inbox.services.business import price_report
from meta import graph as meta_graph
from orgs.audit import audit_record


class BlockUserSerializer(serializers.Serializer):
    user = StrictCharField(max_length=64, required=False, help_text="a phone number or wa_id")
    user_id = StrictCharField(max_length=64, required=False, help_text="a business-scoped user id")

    def validate(self, attrs):
        if len(attrs) != 1:
            raise InvalidField("block_users", "Each of `block_users` names one user: `user` or `user_id`.")
        return attrs

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise InvalidField("block_users", 'Each of `block_users` is an object: {"user": ...} or {"user_id": ...}.')
        return super().to_internal_value(data)


_ONE_ID = {"type": "string", "maxLength": 64, "pattern": NOT_ONLY_WHITESPACE}


@extend_schema_field({"type": "object", "oneOf": [
    {"required": [name], "properties": {name: _ONE_ID}, "not": {"required": [other]}}
    for name, other in (("user", "user_id"), ("user_id", "user"))
]})  # fmt: skip
class BlockUserField(serializers.JSONField):
    """One user of Meta's `block_users`: `user` or `user_id`, which the documents say as a oneOf."""

    def to_internal_value(self, data):
        user = BlockUserSerializer(data=data)
        user.is_valid(raise_exception=True)
        return user.validated_data


class BlockUsersSerializer(serializers.Serializer):
    """Meta's body of POST and DELETE /{phone_number_id}/block_users."""

    messaging_product = serializers.ChoiceField(choices=["whatsapp"])
    block_users = serializers.ListField(child=BlockUserField(), min_length=1, max_length=MAX_USERS)


class BlockedUsersQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=25)
    after = StrictCharField(max_length=1000, required=False)
    before = StrictCharField(max_length=1000, required=False)


def _block(request, phone_number, *, block):
    body = BlockUsersSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    users = body.validated_data["block_users"]
    status, answer = users_block(phone_number, users, block=block)
    done = (answer.get("block_users") or {}).get("added_users" if block else "removed_users") or []
    audit_record(request, AuditAction.CONTACT_BLOCKED, org=phone_number.org_id,
                 target=", ".join(str(u.get("input")) for u in done if isinstance(u, dict)) or "-",
                 detail=f"{'blocked' if block else 'unblocked'} {len(done)} of {len(users)} through the API")  # fmt: skip
    return status, answer


def _blocked_page(request, phone_number):
    query = BlockedUsersQuerySerializer(data=request.query_params.dict())
    query.is_valid(raise_exception=True)
    return meta_graph.blocked_users(phone_number, **query.validated_data)


BLOCK_RESULT = inline_serializer(
    "BlockResult",
    {
        "object": serializers.CharField(),
        "added_users": serializers.ListField(child=serializers.DictField(), required=False),
        "removed_users": serializers.ListField(child=serializers.DictField(), required=False),
        "failed_users": serializers.ListField(
            child=serializers.DictField(), help_text="Meta's per-user failures: {input, wa_id?, errors}"
        ),
    },
)


class BlockUsersView(PhoneNumberScopedMixin, APIView):
    """/v1/: Meta's body in, Kirim's envelope out. Users Meta could not block are listed in
    `failed_users` with Meta's errors, beside those it did, in a 200: the request itself was done."""

    required_scope = Scope.CONVERSATIONS_MANAGE

    @extend_schema(
        summary="Block users (only those who wrote in the last 24 hours)",
        parameters=[PHONE_NUMBER_ID],
        request=BlockUsersSerializer,
        responses={
            200: data_envelope_schema("BlockUsersResponse", BLOCK_RESULT),
            **errors(400, 401, 404, 413, 415, 429, 502),
        },
    )
    def post(self, request, phone_number_id):
        return self._answer(request, *_block(request, self.phone_number, block=True))

    @extend_schema(
        summary="Unblock users",
        parameters=[PHONE_NUMBER_ID],
        request=BlockUsersSerializer,
        responses={
            200: data_envelope_schema("UnblockUsersResponse", BLOCK_RESULT),
            **errors(400, 401, 404, 413, 415, 429, 502),
        },
    )
    def delete(self, request, phone_number_id):
        return self._answer(request, *_block(request, self.phone_number, block=False))

    @extend_schema(
        summary="The users blocked on the number, from Meta",
        parameters=[PHONE_NUMBER_ID, BlockedUsersQuerySerializer],
        responses={
            200: list_envelope_schema(
                "BlockedUsers", serializers.ListField(child=serializers.DictField(), help_text="{wa_id, user_id?}")
            ),
            **errors(400, 401, 404, 429, 502),
        },
    )
    def get(self, request, phone_number_id):
        page = _blocked_page(request, self.phone_number)
        after = ((page.get("paging") or {}).get("cursors") or {}).get("after")
        more = bool((page.get("paging") or {}).get("next"))
        users = [{k: v for k, v in user.items() if k != "messaging_product"} for user in page.get("data") or []]
        return list_envelope(request, users, has_more=more, next_cursor=after if more else None)

    def _answer(self, request, status, answer):
        results = answer.get("block_users") or {}
        return envelope(request, {"object": "block_users", **results, "failed_users": results.get("failed_users", [])})


class GraphBlockUsersView(GraphView):
    """Meta's POST, DELETE and GET /{phone_number_id}/block_users: Meta's answers as Meta gives them."""

    required_scope = Scope.CONVERSATIONS_MANAGE

    @extend_schema(
        operation_id="graph_block_users",
        summary="Block users (Meta's POST /{phone_number_id}/block_users)",
        parameters=[VERSION, PHONE_NUMBER_ID],
        request=BlockUsersSerializer,
        responses={200: OpenApiTypes.OBJECT, **meta_error_responses(*GRAPH_ERRORS)},
    )
    def post(self, request, phone_number_id, version=None):
        status, answer = _block(request, phone_number_of(request.user, phone_number_id), block=True)
        return Response(answer, status=status)

    @extend_schema(
        operation_id="graph_unblock_users",
        summary="Unblock users (Meta's DELETE /{phone_number_id}/block_users)",
        parameters=[VERSION, PHONE_NUMBER_ID],
        request=BlockUsersSerializer,
        responses={200: OpenApiTypes.OBJECT, **meta_error_responses(*GRAPH_ERRORS)},
    )
    def delete(self, request, phone_number_id, version=None):
        status, answer = _block(request, phone_number_of(request.user, phone_number_id), block=False)
        return Response(answer, status=status)

    @extend_schema(
        operation_id="graph_blocked_users",
        summary="The users blocked on the number (Meta's GET /{phone_number_id}/block_users)",
        parameters=[VERSION, PHONE_NUMBER_ID, BlockedUsersQuerySerializer],
        responses={200: OpenApiTypes.OBJECT, **meta_error_responses(*GRAPH_ERRORS)},
    )
    def get(self, request, phone_number_id, version=None):
        return Response(_blocked_page(request, phone_number_of(request.user, phone_number_id)))


REPORT_DAYS = 30  # the period when none is asked for: the last 30 days, today included


class PriceReportQuerySerializer(serializers.Serializer):
    since = serializers.DateField(required=False, help_text="first day, YYYY-MM-DD (UTC); 29 days before `until`")
    until = serializers.DateField(required=False, help_text="last day, included; today (UTC)")
    phone_number_id = StrictCharField(max_length=20, required=False, help_text="one of the org's numbers only")
    top = serializers.IntegerField(min_value=1, max_value=1000, default=50, help_text="conversations listed")

    def validate(self, attrs):
        attrs.setdefault("until", datetime.datetime.now(datetime.UTC).date())
        attrs.setdefault("since", attrs["until"] - datetime.timedelta(days=REPORT_DAYS - 1))
        return attrs


COUNTS = {"messages": serializers.IntegerField(), "billable": serializers.IntegerField()}


class PriceReportView(APIView):
    required_scope = Scope.MESSAGES_READ

    @extend_schema(
        summary="What the org's messages cost: counts by category, template and conversation over a period",
        description="Messages Meta priced (the `pricing` of their status webhooks), counted on the day of "
        "that status: all, billable, by Meta's category and pricing type, by template, and the `top` "
        "conversations by billable messages.",
        parameters=[PriceReportQuerySerializer],
        responses={
            200: data_envelope_schema(
                "PriceReportResponse",
                inline_serializer(
                    "PriceReport",
                    {
                        "object": serializers.CharField(),
                        "since": serializers.DateField(),
                        "until": serializers.DateField(),
                        **COUNTS,
                        "by_category": inline_serializer(
                            "PriceByCategory",
                            {"category": serializers.CharField(), "pricing_type": serializers.CharField(), **COUNTS},
                            many=True,
                        ),
                        "by_template": inline_serializer(
                            "PriceByTemplate",
                            {"template_name": serializers.CharField(), "category": serializers.CharField(), **COUNTS},
                            many=True,
                        ),
                        "by_conversation": inline_serializer(
                            "PriceByConversation",
                            {"phone_number_id": serializers.CharField(), "contact": serializers.CharField(), **COUNTS},
                            many=True,
                        ),
                    },
                ),
            ),
            **errors(400, 401, 404, 429),
        },
    )
    def get(self, request):
        query = PriceReportQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        wanted = query.validated_data
        number = phone_number_of(request.user, wanted["phone_number_id"]) if "phone_number_id" in wanted else None
        report = price_report(request.user, since=wanted["since"], until=wanted["until"], phone_number=number,
                              top=wanted["top"])  # fmt: skip
        return envelope(request, {"object": "price_report", **report})


def unblock_body_in_documents(result, generator, request, public):
    """drf-spectacular postprocessing hook: Meta's unblock is a DELETE with a body (the users), which
    drf-spectacular documents for no DELETE; it is the block's body, in both documents."""
    for path, operations in result.get("paths", {}).items():
        if path.endswith("/block_users") and "delete" in operations and "post" in operations:
            operations["delete"]["requestBody"] = operations["post"]["requestBody"]
    return result
