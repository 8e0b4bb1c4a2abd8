"""OpenAPI building blocks: the contract's envelopes and error bodies, for drf-spectacular."""

from collections.abc import Callable
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse, extend_schema_serializer, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request

# Any field or serializer: a field's value, data and instance types are its own.
AnyField = serializers.Field[Any, Any, Any, Any]
# drf-spectacular's endpoint: path, path regex, method, view.
Endpoint = tuple[str, str, str, Callable[..., Any]]

ERROR_TYPES = (
    "invalid_request_error",
    "authentication_error",
    "permission_error",
    "not_found",
    "conflict",
    "rate_limit_error",
    "api_error",
)


class UpstreamSerializer(serializers.Serializer[dict[str, object]]):
    http_status = serializers.IntegerField(allow_null=True)
    code = serializers.IntegerField(allow_null=True, help_text="Meta's error code")
    message = serializers.CharField()
    fbtrace_id = serializers.CharField(allow_null=True)
    details = serializers.CharField(required=False)


class ErrorSerializer(serializers.Serializer[dict[str, object]]):
    type = serializers.ChoiceField(choices=ERROR_TYPES)
    code = serializers.CharField(help_text="stable, snake_case: branch on this")
    message = serializers.CharField()
    param = serializers.CharField(allow_null=True)
    request_id = serializers.CharField()
    upstream = UpstreamSerializer(required=False, help_text="502 only: what Meta answered")


class ErrorEnvelopeSerializer(serializers.Serializer[dict[str, object]]):
    error = ErrorSerializer()


ERROR_DESCRIPTIONS = {
    400: "invalid_json, missing_required_field or invalid_field_value",
    401: "invalid_api_key or expired_api_key",
    403: "insufficient_scope: the API key lacks the scope this request needs",
    404: "resource_not_found",
    405: "method_not_allowed",
    409: "idempotency_in_progress",
    413: "request_too_large: the body is over API_MAX_BODY_BYTES (1 MB unless set)",
    415: "unsupported_media_type: not application/json, or a charset other than UTF-8",
    422: "idempotency_key_reuse",
    429: "rate_limit_exceeded",
    502: "whatsapp_upstream_error",
}


def errors(*statuses: int) -> dict[int, OpenApiResponse]:
    return {
        status: OpenApiResponse(ErrorEnvelopeSerializer, description=ERROR_DESCRIPTIONS[status]) for status in statuses
    }


def data_envelope_schema(name: str, data_field: AnyField) -> serializers.Serializer[Any]:
    return inline_serializer(name, {"data": data_field, "request_id": serializers.CharField()})


def list_envelope_schema(name: str, data_field: AnyField) -> serializers.Serializer[Any]:
    envelope = inline_serializer(
        name,
        {
            "data": data_field,
            "has_more": serializers.BooleanField(),
            "next_cursor": serializers.CharField(allow_null=True),
            "request_id": serializers.CharField(),
        },
    )
    extend_schema_serializer(many=False)(type(envelope))  # the envelope is one object, even for a list
    return envelope


class MetaErrorDataSerializer(serializers.Serializer[dict[str, object]]):
    messaging_product = serializers.CharField()
    details = serializers.CharField()


class MetaErrorSerializer(serializers.Serializer[dict[str, object]]):
    message = serializers.CharField()
    type = serializers.CharField()
    code = serializers.IntegerField(help_text="Meta's code; Kirim's own refusals use Meta's code for the case")
    error_subcode = serializers.IntegerField(required=False)
    error_data = MetaErrorDataSerializer(required=False)
    fbtrace_id = serializers.CharField(required=False, help_text="Meta's trace, or Kirim's request id")
    is_transient = serializers.BooleanField(required=False)


class MetaErrorEnvelopeSerializer(serializers.Serializer[dict[str, object]]):
    error = MetaErrorSerializer()


def meta_error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """Error answers of the Graph-compatible door: Meta's shape, Meta's own when Meta refused."""
    return {
        status: OpenApiResponse(MetaErrorEnvelopeSerializer, description="Meta's error object") for status in statuses
    }


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "orgs.auth.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "description": "`Authorization: Bearer kirim_live_...`"}


def overlapping_variants_are_any_of(
    result: dict[str, Any], generator: SchemaGenerator, request: Request | None, public: bool
) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: a message is also a valid read-receipt result (it has
    every field of one), so the POST's result is `anyOf` the two, not `oneOf`."""
    component = result["components"].get("schemas", {}).get("MessagesResult")
    if component and "oneOf" in component:
        component["anyOf"] = component.pop("oneOf")
    return result


class GraphApiKeyScheme(OpenApiAuthenticationExtension):
    """The Graph-compatible door takes the key as a Bearer token or, as Meta does, `?access_token=`."""

    target_class = "orgs.auth.GraphApiKeyAuthentication"
    name = ("graphBearer", "graphAccessToken")  # type: ignore[assignment]  # drf-spectacular takes any sequence

    def get_security_requirement(self, auto_schema: AutoSchema) -> list[dict[str, list[str]]]:
        return [{name: []} for name in self.name]  # either one: OpenAPI's list of alternatives

    def get_security_definition(self, auto_schema: AutoSchema) -> list[dict[str, str]]:
        return [
            {"type": "http", "scheme": "bearer", "description": "`Authorization: Bearer kirim_live_...`"},
            {"type": "apiKey", "in": "query", "name": "access_token", "description": "the same key, in the query"},
        ]


class MediaLinkScheme(OpenApiAuthenticationExtension):
    """The media download takes the key as the rest of the surface does or, instead, the `signature`
    of the url Kirim gave."""

    target_class = "orgs.auth.MediaLinkAuthentication"
    name = "graphMediaLink"

    def get_security_requirement(self, auto_schema: AutoSchema) -> list[dict[str, list[str]]]:
        return [{name: [] for name in GraphApiKeyScheme.name}, {self.name: []}]

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, str]:
        return {"type": "apiKey", "in": "query", "name": "signature",
                "description": "a signed media link's, valid MEDIA_LINK_MAX_AGE seconds"}  # fmt: skip


def metas_paths_once(endpoints: list[Endpoint]) -> list[Endpoint]:
    """drf-spectacular preprocessing hook: Meta's surface answers each of its paths with and without a
    version (kirim/urls.py); a document states each once, under /{version}/. Only those unversioned
    paths begin with a parameter (a Graph id)."""
    return [
        endpoint for endpoint in endpoints if endpoint[0].startswith("/{version}/") or not endpoint[0].startswith("/{")
    ]
