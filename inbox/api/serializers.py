"""What the messages API accepts and renders. Send bodies are Meta's own: we check what Meta would
certainly refuse and pass the rest through untouched."""

from rest_framework import serializers

from core.api import NOT_ONLY_WHITESPACE, StrictCharField
from core.errors import InvalidField, InvalidRequest, MissingField
from inbox.models import CONTACT_KEY_LENGTH, ApiKey, Direction, Message, Org, PhoneNumber, Status
from meta import payloads

MEDIA_TYPES = ("image", "audio", "video", "document", "sticker")
SEND_TYPES = ("text", *MEDIA_TYPES, "template", "interactive", "location", "contacts", "reaction")
TEXT_BODY_MAX = 4096


class ContextSerializer(serializers.Serializer):
    message_id = StrictCharField(max_length=255)


class SendSerializer(serializers.Serializer):
    """A message to send, as Meta's POST /{phone_number_id}/messages takes it. Meta takes `null` for any
    optional field (Chatwoot sends `"context": null` with every message), and so does Kirim."""

    messaging_product = serializers.ChoiceField(choices=["whatsapp"])
    recipient_type = serializers.ChoiceField(choices=["individual"], required=False, allow_null=True)
    to = StrictCharField(max_length=32, required=False, help_text="a phone number (or a group's id); or `recipient`")
    recipient = StrictCharField(
        max_length=64, required=False, help_text="a business-scoped user id, in place of `to` (Meta reads `to` first)"
    )
    type = serializers.ChoiceField(choices=SEND_TYPES)
    context = ContextSerializer(required=False, allow_null=True)  # type: ignore[assignment]  # Meta's name; DRF takes declared fields off the class
    # The object named by `type` travels to Meta as the client sent it; its shape is Meta's.
    text = serializers.DictField(
        required=False, allow_null=True, help_text="`body` (up to 4096 characters), `preview_url`"
    )
    image = serializers.DictField(required=False, allow_null=True, help_text="`id` or `link`, optional `caption`")
    audio = serializers.DictField(required=False, allow_null=True, help_text="`id` or `link`")
    video = serializers.DictField(required=False, allow_null=True, help_text="`id` or `link`, optional `caption`")
    document = serializers.DictField(
        required=False, allow_null=True, help_text="`id` or `link`, optional `caption`, `filename`"
    )
    sticker = serializers.DictField(required=False, allow_null=True, help_text="`id` or `link`")
    template = serializers.DictField(required=False, allow_null=True, help_text="`name`, `language`, `components`")
    interactive = serializers.DictField(required=False, allow_null=True, help_text="Meta's interactive object")
    location = serializers.DictField(
        required=False, allow_null=True, help_text="`latitude`, `longitude`, `name`, `address`"
    )
    contacts = serializers.ListField(
        child=serializers.DictField(), required=False, allow_null=True, help_text="Meta's contacts array"
    )
    reaction = serializers.DictField(required=False, allow_null=True, help_text="`message_id`, `emoji`")
    biz_opaque_callback_data = StrictCharField(
        max_length=payloads.CALLER_CALLBACK_LIMIT,
        required=False,
        allow_null=True,
        trim_whitespace=False,
        help_text="echoed in Meta's status webhooks; Kirim puts its own message id before it",
    )

    def validate(self, attrs):
        if not (attrs.get("to") or attrs.get("recipient")):
            raise MissingField("to", "A send names its recipient: `to` (a phone number) or `recipient` (a user id).")
        check_send_object(self.initial_data, attrs["type"])
        return attrs


def _required_string(container, name, param):
    value = container.get(name)
    if value is None:
        raise MissingField(param)
    if not isinstance(value, str) or not value.strip():
        raise InvalidField(param, f"`{param}` must be a non-empty string.")
    return value


def check_send_object(body, kind):
    """Refuse what Meta certainly would: a missing object, an empty or oversized text, media with
    neither `id` nor `link`, a template without a name, a reaction without a message."""
    if kind not in body:
        raise MissingField(kind, f"A `{kind}` message needs a `{kind}` object.")
    content = body[kind]
    if kind == "contacts":
        if not isinstance(content, list) or not content:
            raise InvalidField("contacts", "`contacts` must be a non-empty array.")
        return
    if not isinstance(content, dict):
        raise InvalidField(kind, f"`{kind}` must be an object.")
    if kind == "text":
        text = _required_string(content, "body", "text.body")
        if len(text) > TEXT_BODY_MAX:
            raise InvalidField("text.body", f"`text.body` is limited to {TEXT_BODY_MAX} characters.")
    elif kind in MEDIA_TYPES:
        if not any(isinstance(content.get(name), str) and content.get(name) for name in ("id", "link")):
            raise MissingField(f"{kind}.id", f"`{kind}` needs an `id` (uploaded media) or a `link`.")
    elif kind == "template":
        _required_string(content, "name", "template.name")
    elif kind == "reaction":
        _required_string(content, "message_id", "reaction.message_id")


# What check_send_object takes, as the OpenAPI documents say it: the object a send's `type` names.
_NOT_BLANK = {"type": "string", "pattern": NOT_ONLY_WHITESPACE}
_MEDIA_OBJECT = {"type": "object", "anyOf": [
    {"required": [name], "properties": {name: {"type": "string", "minLength": 1}}} for name in ("id", "link")
]}  # fmt: skip
SEND_OBJECT_SCHEMAS = {
    "text": {
        "type": "object",
        "required": ["body"],
        "properties": {"body": {**_NOT_BLANK, "maxLength": TEXT_BODY_MAX}},
    },
    **{kind: _MEDIA_OBJECT for kind in MEDIA_TYPES},
    "template": {"type": "object", "required": ["name"], "properties": {"name": _NOT_BLANK}},
    "interactive": {"type": "object"},
    "location": {"type": "object"},
    "contacts": {"type": "array", "minItems": 1, "items": {"type": "object"}},
    "reaction": {"type": "object", "required": ["message_id"], "properties": {"message_id": _NOT_BLANK}},
}


def messages_request_in_documents(result, generator, request, public):
    """drf-spectacular postprocessing hook: a POST to {phone_number_id}/messages, in both documents,
    as messages_request_kind and check_send_object take it, which a serializer cannot say. A read
    receipt has no `type` and a send no `status`; a send is one variant per `type`, each with the
    object it names; and it names its recipient by `to` or `recipient`."""
    schemas = result.get("components", {}).get("schemas", {})
    if "SendRequest" not in schemas:
        return result
    ref = "#/components/schemas/SendRequest"
    schemas["ReadReceiptRequest"]["not"] = {"required": ["type"]}
    schemas["SendRequest"]["not"] = {"required": ["status"]}
    schemas["SendRequest"]["anyOf"] = [{"required": ["to"]}, {"required": ["recipient"]}]
    variants = [
        {"allOf": [{"$ref": ref}, {"properties": {"type": {"enum": [kind]}, kind: content}, "required": [kind]}]}
        for kind, content in SEND_OBJECT_SCHEMAS.items()
    ]
    requests = set()
    for name, schema in schemas.items():
        if {"$ref": ref} in schema.get("oneOf", []):
            schema["oneOf"] = [v for v in schema["oneOf"] if v != {"$ref": ref}] + variants
            requests.add(f"#/components/schemas/{name}")
    for operation in (op for path in result["paths"].values() for op in path.values()):
        body = operation.get("requestBody", {})
        if body.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref") in requests:
            body["required"] = True  # a receipt or a send: no body is neither
    return result


READ, SEND = "read", "send"


def messages_request_kind(body):
    """What a POST to {phone_number_id}/messages asks: READ (`status`) or SEND (`type`), as on Meta."""
    if not isinstance(body, dict):
        raise InvalidRequest("The body must be a JSON object.", code="invalid_json")
    if "status" in body and "type" in body:
        raise InvalidField("type", "Send `status` to mark a message read or `type` to send one, not both.")
    if "status" in body:
        return READ
    if "type" in body:
        return SEND
    raise MissingField("type", "Send `type` to send a message, or `status` to mark one read.")


class MessageSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="external_id")
    object = serializers.SerializerMethodField()
    message_id = serializers.CharField(source="wamid", allow_null=True)
    sender = serializers.SerializerMethodField(
        method_name="get_sender",
        help_text="`from`: the contact (its wa_id, or its business-scoped user id when Meta gives no number; "
        "in a group, the member who wrote), or the business number",
    )
    to = serializers.SerializerMethodField(
        help_text="the contact (wa_id or business-scoped user id), the group's id, or the business number"
    )
    contact = serializers.CharField(
        source="contact_wa_id",
        help_text="the conversation: the contact's wa_id or business-scoped user id, or the group's id",
    )
    content = serializers.JSONField(
        source="payload",
        help_text="The message as Meta sent or received it (an edit's content in place); {} once deleted",
    )
    sent_from_app = serializers.BooleanField(
        help_text="sent by staff from the WhatsApp Business app on the same number (an echo, or its history)"
    )
    edits = serializers.JSONField(help_text="[{text, until}]: its earlier texts, oldest first; null if never edited")
    pricing = serializers.JSONField(
        help_text="Meta's `pricing` {billable, pricing_model, category, type} from its status webhook; null until then"
    )

    class Meta:
        model = Message
        fields = (
            "id", "object", "direction", "status", "message_id", "message_status", "sender", "to", "contact",
            "contact_user_id", "group_id", "contact_name", "type", "text", "content", "error", "timestamp",
            "created_at", "read_at", "sent_from_app", "edited_at", "edits", "deleted_at", "pricing",
        )  # fmt: skip

    def get_fields(self):
        # `from` is a Python keyword: declared as `sender`, rendered as `from`, in place.
        return {("from" if name == "sender" else name): field for name, field in super().get_fields().items()}

    def get_object(self, message) -> str:
        return "message"

    def _business(self, message):
        return message.phone_number.display_phone_number

    def get_sender(self, message) -> str:
        if message.direction == Direction.OUTBOUND:
            return self._business(message)
        if message.group_id:  # the member, by number when Meta gave one
            return str(message.payload.get("from") or message.contact_user_id)
        return message.contact_wa_id

    def get_to(self, message) -> str:
        return self._business(message) if message.direction == Direction.INBOUND else message.contact_wa_id


class MessageListQuerySerializer(serializers.Serializer):
    direction = serializers.ChoiceField(choices=Direction.choices, required=False)
    status = serializers.ChoiceField(choices=Status.choices, required=False)
    contact = StrictCharField(
        max_length=CONTACT_KEY_LENGTH,
        required=False,
        help_text="the conversation: the contact's wa_id or business-scoped user id, or a group's id",
    )
    limit = serializers.IntegerField(min_value=1, max_value=100, default=25)
    cursor = StrictCharField(max_length=1000, required=False, help_text="`next_cursor` of the previous page")


class PhoneNumberSerializer(serializers.ModelSerializer):
    object = serializers.SerializerMethodField()

    class Meta:
        model = PhoneNumber
        fields = ("object", "phone_number_id", "display_phone_number", "waba_id", "created_at")

    def get_object(self, number) -> str:
        return "phone_number"


class OrgSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="external_id")

    class Meta:
        model = Org
        fields = ("id", "name", "slug")


class ApiKeySerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="external_id")
    scopes = serializers.SerializerMethodField()

    class Meta:
        model = ApiKey
        fields = ("id", "name", "display_prefix", "created_at", "expires_at", "scopes")

    def get_scopes(self, key) -> list[str]:
        return key.scopes.split()


class ContactErasedSerializer(serializers.Serializer):
    object = serializers.CharField(default="contact_erasure")
    phone_number_id = serializers.CharField()
    contact = serializers.CharField()
    messages_erased = serializers.IntegerField(help_text="messages whose content was emptied now")
    webhook_payloads_deleted = serializers.IntegerField(help_text="raw webhook bodies from Meta that named the contact")
    events_deleted = serializers.IntegerField(help_text="events out about the contact, with their deliveries")


class RotateKeySerializer(serializers.Serializer):
    grace_period_hours = serializers.IntegerField(
        required=False, help_text="how long the key rotated keeps working: API_KEY_ROTATION_GRACE_HOURS unless given"
    )


class RotatedKeySerializer(ApiKeySerializer):
    """The new key, with its secret: shown here once."""

    # The answer's shape; the view writes it from ApiKeySerializer's, as neither is the new key's attribute.
    key = serializers.CharField()
    replaces = ApiKeySerializer(help_text="the key rotated, with the end of its grace period as `expires_at`")

    class Meta:
        model = ApiKey
        fields = ("id", "name", "display_prefix", "created_at", "expires_at", "scopes", "key", "replaces")


class MeSerializer(serializers.Serializer):
    org = OrgSerializer()
    api_key = ApiKeySerializer()
