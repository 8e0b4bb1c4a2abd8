"""Meta's own API at Kirim: /{version}/... answers as graph.facebook.com does, so code written for
Meta's Cloud API works by changing its base URL and token (docs/guides/meta-compatible-api.md). The
same paths without a version answer the same (`version` is None then), as Meta's do.

Doors over the services /v1/ uses (sends, read receipts, idempotency keys, key auth and rate limits,
logs); only the shapes differ: Meta's answers, and Meta's errors (meta.errors)."""

from urllib.parse import urlencode

from django.conf import settings
from django.http import StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import StrictCharField
from core.errors import InvalidField, MissingField, NotFound, UpstreamError
from core.schema import meta_error_responses
from inbox.api import idempotency
from inbox.api.serializers import SendSerializer
from inbox.api.v1 import PHONE_NUMBER_ID
from inbox.models import Scope, Status
from inbox.selectors import phone_number_of, waba_number_of
from inbox.services.media import media_describe, media_upload
from inbox.services.send import addressee, message_send
from meta import errors as meta_errors
from meta import graph as meta_graph
from orgs.auth import (
    GraphApiKeyAuthentication,
    HasApiKeyOrMediaLink,
    MediaLinkAuthentication,
    media_link_signature,
    require_scope,
)


class GraphView(APIView):
    authentication_classes = (GraphApiKeyAuthentication,)

    def get_exception_handler(self):
        return meta_errors.exception_handler


def sent_answer(body, message):
    """Meta's answer to an accepted send: `message_status` only where Meta gave one, as Meta does."""
    sent = {"id": message.wamid}
    if message.message_status is not None:
        sent["message_status"] = message.message_status
    contact = {"input": addressee(body)}
    if body.get("to") or message.contact_wa_id.isdigit():  # a send by user id alone has Meta's wa_id only if given
        contact["wa_id"] = message.contact_wa_id
    if message.contact_user_id:
        contact["user_id"] = message.contact_user_id
    return {"messaging_product": "whatsapp", "contacts": [contact], "messages": [sent]}


def send_unconfirmed(message):
    """The error for a send whose answer from Meta was lost (the message is `unconfirmed`)."""
    return UpstreamError(
        f"Meta may have received this message ({message.external_id}) but its answer was lost. Its status "
        "webhook will settle it; a retry with the same Idempotency-Key answers its outcome and never sends twice.",
        meta_received=None,
    )


class SuccessSerializer(serializers.Serializer):
    success = serializers.BooleanField()


class SentContactSerializer(serializers.Serializer):
    input = serializers.CharField()
    wa_id = serializers.CharField(required=False, help_text="absent for a send by `recipient` Meta gave none for")
    user_id = serializers.CharField(
        required=False, help_text="the recipient's business-scoped user id, as Meta answers it"
    )


class SentIdSerializer(serializers.Serializer):
    id = serializers.CharField()
    message_status = serializers.CharField(
        required=False,
        help_text="Meta's template pacing status (`accepted`, `held_for_quality_assessment`), as Meta gave it",
    )


class SentSerializer(serializers.Serializer):
    messaging_product = serializers.ChoiceField(choices=["whatsapp"])
    contacts = SentContactSerializer(many=True)
    messages = SentIdSerializer(many=True)


GRAPH_ERRORS = (400, 401, 403, 404, 405, 409, 415, 422, 429, 500, 502, 503)  # Meta's own status when Meta refused
VERSION = OpenApiParameter("version", str, OpenApiParameter.PATH, pattern=rf"^{meta_errors.GRAPH_VERSION}$",
                           description="any Graph API version, e.g. v23.0")  # fmt: skip


def graph_messages_post_schema(request_serializers, result_serializers, **texts):
    """The OpenAPI of Meta's POST /{phone_number_id}/messages, for the bodies a view takes."""
    return extend_schema(
        operation_id="graph_messages",
        **texts,
        parameters=[VERSION, PHONE_NUMBER_ID],
        request=PolymorphicProxySerializer(
            "GraphMessagesRequest", serializers=request_serializers, resource_type_field_name=None
        ),
        responses={
            200: PolymorphicProxySerializer(
                "GraphMessagesResult", serializers=result_serializers, resource_type_field_name=None
            ),
            **meta_error_responses(*GRAPH_ERRORS),
        },
    )


class GraphMessagesView(GraphView):
    @graph_messages_post_schema(
        [SendSerializer], [SentSerializer], summary="Send a message (Meta's POST /{phone_number_id}/messages)"
    )
    def post(self, request, phone_number_id, version=None):
        require_scope(request, Scope.MESSAGES_SEND)
        body = request.data
        SendSerializer(data=body).is_valid(raise_exception=True)
        phone_number = phone_number_of(request.user, phone_number_id)

        def respond(claim):
            message = message_send(phone_number=phone_number, body=body, claim=claim)
            if message.status == Status.UNCONFIRMED:  # Meta's shape has no "maybe": an error that says so
                raise send_unconfirmed(message)
            return Response(sent_answer(body, message))

        return idempotency.run_once(
            request,
            org=request.user,
            # Its own scope: a key first used on /v1/ is refused here (422), never replayed in /v1/'s shape.
            scope=f"graph:{phone_number_id}",
            body=body,
            respond=respond,
            render_error=meta_errors.meta_error_response,
            restamp=False,
        )


class TemplatesQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=500, default=25)
    after = StrictCharField(max_length=1000, required=False)
    before = StrictCharField(max_length=1000, required=False)


class GraphTemplatesView(GraphView):
    required_scope = Scope.MESSAGES_SEND

    @extend_schema(
        operation_id="graph_message_templates",
        summary="The WhatsApp Business Account's message templates, from Meta, with Meta's paging",
        parameters=[VERSION, TemplatesQuerySerializer],
        responses={
            200: inline_serializer(
                "TemplatesPage",
                {
                    "data": serializers.ListField(child=serializers.DictField(), help_text="Meta's templates"),
                    "paging": serializers.DictField(help_text="`cursors` {before, after}; `next`, `previous` URLs"),
                    "summary": serializers.DictField(required=False, help_text="Meta's counts, asked with `summary`"),
                },
            ),
            **meta_error_responses(*GRAPH_ERRORS),
        },
    )
    def get(self, request, waba_id, version=None):
        query = TemplatesQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        number = waba_number_of(request.user, waba_id)
        page = meta_graph.message_templates(
            number,
            after=query.validated_data.get("after"),
            before=query.validated_data.get("before"),
            limit=query.validated_data["limit"],
            filters=request.query_params.dict(),
        )
        answer = {"data": page.templates, "paging": self._paging(request, page)}
        if page.summary is not None:
            answer["summary"] = page.summary
        return Response(answer)

    def _paging(self, request, page):
        """Meta's paging, its `next` and `previous` pointing back at Kirim with the caller's own query
        (Chatwoot follows `next` as it is, its `access_token` included, as Meta's own `next` does)."""
        cursors = {name: cursor for name, cursor in (("before", page.before), ("after", page.after)) if cursor}
        paging = {"cursors": cursors}
        query = {name: value for name, value in request.query_params.items() if name not in ("after", "before")}
        for link, cursor_name in (("next", "after"), ("previous", "before")):
            if cursors.get(cursor_name):
                paging[link] = request.build_absolute_uri(
                    f"{request.path}?{urlencode({**query, cursor_name: cursors[cursor_name]})}"
                )
        return paging


class MediaUploadParser(MultiPartParser):
    body_hint = "multipart/form-data with the fields `file`, `type` and `messaging_product`"


@extend_schema_field({"type": "string", "format": "binary", "minLength": 1})
class UploadedFileField(serializers.FileField):
    """The documents' file of an upload: one byte at least, since Django keeps no empty file."""


class GraphMediaUploadView(GraphView):
    required_scope = Scope.MEDIA
    parser_classes = (MediaUploadParser,)

    @extend_schema(
        operation_id="graph_media_upload",
        summary="Upload media for later sends (Meta's POST /{phone_number_id}/media)",
        parameters=[VERSION, PHONE_NUMBER_ID],
        request={
            "multipart/form-data": inline_serializer(
                "MediaUpload",
                {
                    "file": UploadedFileField(),
                    # Kirim checks neither (it tells Meta `messaging_product` itself): any value goes.
                    "type": serializers.JSONField(required=False, help_text="its MIME type; the file's own if absent"),
                    "messaging_product": serializers.JSONField(required=False, help_text="`whatsapp`"),
                },
            )
        },
        responses={
            200: inline_serializer("MediaId", {"id": serializers.CharField()}),
            **meta_error_responses(*GRAPH_ERRORS),
        },
    )
    def post(self, request, phone_number_id, version=None):
        phone_number = phone_number_of(request.user, phone_number_id)
        upload = request.FILES.get("file")
        if upload is None:
            raise MissingField("file", "Upload the media as the multipart field `file`.")
        if upload.size > settings.MEDIA_MAX_BYTES:
            raise InvalidField("file", f"Media is limited to {settings.MEDIA_MAX_BYTES // 2**20} MB.")
        mime_type = request.data.get("type") or upload.content_type
        media_id = media_upload(
            phone_number=phone_number, content=upload.read(), filename=upload.name, mime_type=mime_type
        )
        return Response({"id": media_id})


MEDIA_ID = OpenApiParameter("media_id", str, OpenApiParameter.PATH, pattern=r"^[0-9]{6,32}$")


class GraphMediaView(GraphView):
    required_scope = Scope.MEDIA

    @extend_schema(
        operation_id="graph_media",
        summary="Describe media (Meta's GET /{media_id}); `url` downloads it through Kirim",
        description="Media this org received or uploaded through Kirim; any other id is Meta's missing object. "
        "`url` downloads it with the Kirim key, or without one for MEDIA_LINK_MAX_AGE seconds (a signed link).",
        parameters=[VERSION, MEDIA_ID],
        responses={200: OpenApiTypes.OBJECT, **meta_error_responses(*GRAPH_ERRORS)},
    )
    def get(self, request, media_id, version=None):
        """Meta's description of the media, its `url` pointing at Kirim: Meta's own needs Meta's token."""
        _, description = media_describe(org=request.user, media_id=media_id)
        signature = urlencode({"signature": media_link_signature(org=request.user, media_id=media_id)})
        content_url = request.build_absolute_uri(f"{request.path.rstrip('/')}/content?{signature}")
        return Response({**description, "url": content_url})


class GraphMediaContentView(GraphView):
    required_scope = Scope.MEDIA
    authentication_classes = (MediaLinkAuthentication,)
    permission_classes = (HasApiKeyOrMediaLink,)

    @extend_schema(
        operation_id="graph_media_content",
        summary="The media's bytes, fetched from Meta with the number's token",
        description="With the Kirim key, or the `signature` of the `url` that GET /{version}/{media_id} gave.",
        parameters=[VERSION, MEDIA_ID],
        responses={(200, "*/*"): OpenApiTypes.BINARY, **meta_error_responses(*GRAPH_ERRORS)},
    )
    def get(self, request, media_id, version=None):
        number, description = media_describe(org=request.user, media_id=media_id)
        content_type, chunks = meta_graph.media_download(number, description.get("url"))
        return StreamingHttpResponse(chunks, content_type=content_type)


@csrf_exempt
def unknown_graph_path(request, *args, **kwargs):
    return meta_errors.meta_error_response(request, NotFound(f"Unknown path components: {request.path}"))
