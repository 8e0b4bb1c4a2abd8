"""OpenAPI building blocks: the contract's envelopes and error bodies, for drf-spectacular."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse, extend_schema_serializer, inline_serializer
from rest_framework import serializers

ERROR_TYPES = (
    "invalid_request_error",
    "authentication_error",
    "permission_error",
    "not_found",
    "conflict",
    "rate_limit_error",
    "api_error",
)


class UpstreamSerializer(serializers.Serializer):
    http_status = serializers.IntegerField(allow_null=True)
    code = serializers.IntegerField(allow_null=True, help_text="Meta's error code")
    message = serializers.CharField()
    fbtrace_id = serializers.CharField(allow_null=True)
    details = serializers.CharField(required=False)


class ErrorSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=ERROR_TYPES)
    code = serializers.CharField(help_text="stable, snake_case: branch on this")
    message = serializers.CharField()
    param = serializers.CharField(allow_null=True)
    request_id = serializers.CharField()
    upstream = UpstreamSerializer(required=False, help_text="502 only: what Meta answered")


class ErrorEnvelopeSerializer(serializers.Serializer):
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


def errors(*statuses):
    return {
        status: OpenApiResponse(ErrorEnvelopeSerializer, description=ERROR_DESCRIPTIONS[status]) for status in statuses
    }


def data_envelope_schema(name, data_field):
    return inline_serializer(name, {"data": data_field, "request_id": serializers.CharField()})


def list_envelope_schema(name, data_field):
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


class MetaErrorDataSerializer(serializers.Serializer):
    messaging_product = serializers.CharField()
    details = serializers.CharField()


class MetaErrorSerializer(serializers.Serializer):
    message = serializers.CharField()
    type = serializers.CharField()
    code = serializers.IntegerField(help_text="Meta's code; Kirim's own refusals use Meta's code for the case")
    error_subcode = serializers.IntegerField(required=False)
    error_data = MetaErrorDataSerializer(required=False)
    fbtrace_id = serializers.CharField(required=False, help_text="Meta's trace, or Kirim's request id")
    is_transient = serializers.BooleanField(required=False)


class MetaErrorEnvelopeSerializer(serializers.Serializer):
    error = MetaErrorSerializer()


def meta_error_responses(*statuses):
    """Error answers of the Graph-compatible door: Meta's shape, Meta's own when Meta refused."""
    return {
        status: OpenApiResponse(MetaErrorEnvelopeSerializer, description="Meta's error object") for status in statuses
    }


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "orgs.auth.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "`Authorization: Bearer kirim_live_...`"}


def overlapping_variants_are_any_of(result, generator, request, public):
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

    def get_security_requirement(self, auto_schema):
        return [{name: []} for name in self.name]  # either one: OpenAPI's list of alternatives

    def get_security_definition(self, auto_schema):
        return [
            {"type": "http", "scheme": "bearer", "description": "`Authorization: Bearer kirim_live_...`"},
            {"type": "apiKey", "in": "query", "name": "access_token", "description": "the same key, in the query"},
        ]


class MediaLinkScheme(OpenApiAuthenticationExtension):
    """The media download takes the key as the rest of the surface does or, instead, the `signature`
    of the url Kirim gave."""

    target_class = "orgs.auth.MediaLinkAuthentication"
    name = "graphMediaLink"

    def get_security_requirement(self, auto_schema):
        return [{name: [] for name in GraphApiKeyScheme.name}, {self.name: []}]

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "query", "name": "signature",
                "description": "a signed media link's, valid MEDIA_LINK_MAX_AGE seconds"}  # fmt: skip


def metas_paths_once(endpoints):
    """drf-spectacular preprocessing hook: Meta's surface answers each of its paths with and without a
    version (kirim/urls.py); a document states each once, under /{version}/. Only those unversioned
    paths begin with a parameter (a Graph id)."""
    return [
        endpoint for endpoint in endpoints if endpoint[0].startswith("/{version}/") or not endpoint[0].startswith("/{")
    ]
