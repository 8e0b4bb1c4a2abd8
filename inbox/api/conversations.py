"""/v1/conversations: the team inbox for integrators. List with filters and cursor pages, read and
change one (state, assignee, labels), add a private note. Every query is cut to the key's org, so
another org's conversation answers exactly like a missing one; changes go through
inbox.services.teaminbox, which passes them to subscribers as events."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.views import APIView

from core.api import StrictCharField, envelope, list_envelope
from core.errors import InvalidField, InvalidRequest, NotFound
from core.ids import is_public_id
from core.pagination import keyset_page
from core.schema import data_envelope_schema, errors, list_envelope_schema
from inbox.models import Conversation, ConversationState
from inbox.services import teaminbox
from inbox.services.teaminbox import Actor
from orgs.auth import require_scope
from orgs.models import Scope
from orgs.ratelimit import client_address

CONVERSATION_ID = OpenApiParameter("id", str, OpenApiParameter.PATH, description="`cnv_...`")


class ConversationListQuery(serializers.Serializer):
    state = serializers.ChoiceField(choices=ConversationState.choices, required=False)
    assignee = StrictCharField(max_length=150, required=False, help_text="a username, or `none` for unassigned")
    # DRF takes declared fields off the class, so this query parameter does not replace Field.label.
    label = StrictCharField(max_length=64, required=False)  # type: ignore[assignment]
    phone_number_id = serializers.RegexField(r"^[0-9]{6,20}$", required=False)
    contact = StrictCharField(max_length=128, required=False, help_text="the contact's wa_id")
    limit = serializers.IntegerField(min_value=1, max_value=100, default=25)
    cursor = serializers.CharField(required=False)


class ConversationChange(serializers.Serializer):
    state = serializers.ChoiceField(choices=ConversationState.choices, required=False)
    snoozed_until = serializers.DateTimeField(required=False, allow_null=True)
    assignee = StrictCharField(max_length=150, required=False, allow_null=True)
    labels = serializers.ListField(child=StrictCharField(max_length=64), required=False, max_length=50)


class NoteIn(serializers.Serializer):
    body = StrictCharField(max_length=teaminbox.NOTE_MAX)


class ContactOut(serializers.Serializer):
    wa_id = serializers.CharField()
    user_id = serializers.CharField(allow_null=True)
    name = serializers.CharField()


class ConversationOut(serializers.Serializer):
    """What inbox.services.teaminbox.as_data renders (the API answers and the events carry it)."""

    id = serializers.CharField(help_text="`cnv_...`")
    object = serializers.CharField()
    phone_number_id = serializers.CharField()
    contact = ContactOut()
    state = serializers.ChoiceField(choices=ConversationState.choices)
    snoozed_until = serializers.DateTimeField(allow_null=True)
    assignee = serializers.CharField(allow_null=True, help_text="a staff username")
    labels = serializers.ListField(child=serializers.CharField())
    last_message_at = serializers.DateTimeField()
    last_message_text = serializers.CharField()
    last_direction = serializers.CharField()


class NoteOut(serializers.Serializer):
    id = serializers.CharField(help_text="`note_...`")
    object = serializers.CharField()
    body = serializers.CharField()
    author = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()


def conversations_of(org):
    return (
        Conversation.objects.filter(org=org, external_id__isnull=False)
        .select_related("phone_number", "assignee")
        .prefetch_related("labels")
    )


def conversation_of(org, conversation_id):
    """The org's conversation; another org's answers exactly like one that does not exist."""
    found = (
        conversations_of(org).filter(external_id=conversation_id).first()
        if is_public_id(conversation_id, "cnv")
        else None
    )
    if found is None:
        raise NotFound("No conversation with this id.", param="id")
    return found


def actor_of(request):
    """The request's API key, from the client's address: who the team inbox records and announces."""
    return Actor(api_key=request.auth.key, address=client_address(request))


def validated(serializer_class, data):
    if not isinstance(data, dict):
        raise InvalidRequest("The body must be a JSON object.", code="invalid_json")
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class ConversationListView(APIView):
    @extend_schema(
        operation_id="conversations_list",  # an APIView's GET is a "retrieve" to drf-spectacular, as the one below
        summary="List conversations, newest activity first",
        parameters=[ConversationListQuery],
        responses={200: list_envelope_schema("ConversationList", ConversationOut(many=True)), **errors(400, 401, 429)},
    )
    def get(self, request):
        query = validated(ConversationListQuery, request.query_params.dict())
        org = request.user
        rows = conversations_of(org)
        filters = {k: v for k, v in query.items() if k not in ("limit", "cursor")}
        if "state" in filters:
            rows = rows.filter(teaminbox.state_q(filters["state"]))
        if filters.get("assignee") == "none":
            rows = rows.filter(assignee__isnull=True)
        elif "assignee" in filters:
            rows = rows.filter(assignee__username=filters["assignee"])
        if "label" in filters:
            rows = rows.filter(labels__org=org, labels__name=filters["label"])
        if "phone_number_id" in filters:
            rows = rows.filter(phone_number__phone_number_id=filters["phone_number_id"])
        if "contact" in filters:
            rows = rows.filter(contact_wa_id=filters["contact"])
        page, has_more, next_cursor = keyset_page(
            rows, scope=["conversations", org.pk, filters], limit=query["limit"], cursor=query.get("cursor"),
            order_field="last_message_at",
        )  # fmt: skip
        return list_envelope(request, [teaminbox.as_data(c) for c in page], has_more=has_more, next_cursor=next_cursor)


class ConversationView(APIView):
    @extend_schema(
        summary="Get one conversation",
        parameters=[CONVERSATION_ID],
        responses={200: data_envelope_schema("ConversationResponse", ConversationOut()), **errors(401, 404, 429)},
    )
    def get(self, request, conversation_id):
        return envelope(request, teaminbox.as_data(conversation_of(request.user, conversation_id)))

    @extend_schema(
        summary="Change a conversation's state, assignee or labels",
        description="`state`: open, pending, snoozed (with `snoozed_until`) or resolved; `assignee`: a staff "
        "username of the org, or null; `labels`: the org's label names, replacing the conversation's.",
        parameters=[CONVERSATION_ID],
        request=ConversationChange,
        responses={
            200: data_envelope_schema("ConversationChanged", ConversationOut()),
            **errors(400, 401, 403, 404, 413, 415, 429),
        },
    )
    def patch(self, request, conversation_id):
        require_scope(request, Scope.CONVERSATIONS_MANAGE)
        conversation = conversation_of(request.user, conversation_id)
        change = validated(ConversationChange, request.data)
        if not change:
            raise InvalidField("state", "Give at least one of `state`, `assignee`, `labels`.")
        if "snoozed_until" in change and "state" not in change:
            raise InvalidField("snoozed_until", "`snoozed_until` goes with `state: snoozed`.")
        actor = actor_of(request)
        # Everything is checked before anything changes: a 400 leaves the conversation as it was.
        assignee = None
        if change.get("assignee") is not None:
            assignee = teaminbox.agent_named(request.user, change["assignee"])
        labels = teaminbox.labels_named(request.user, change["labels"]) if "labels" in change else None
        if "state" in change:
            teaminbox.check_snooze(change["state"], change.get("snoozed_until"))
            conversation = teaminbox.conversation_set_state(
                conversation=conversation, state=change["state"], snoozed_until=change.get("snoozed_until"),
                actor=actor,
            )  # fmt: skip
        if "assignee" in change:
            conversation = teaminbox.conversation_assign(conversation=conversation, assignee=assignee, actor=actor)
        if labels is not None:
            teaminbox.conversation_set_labels(conversation=conversation, labels=labels, actor=actor)
        return envelope(request, teaminbox.as_data(conversation_of(request.user, conversation_id)))


class ConversationNotesView(APIView):
    @extend_schema(
        summary="Add a private note (never sent to WhatsApp)",
        parameters=[CONVERSATION_ID],
        request=NoteIn,
        responses={201: data_envelope_schema("NoteResponse", NoteOut()), **errors(400, 401, 403, 404, 413, 415, 429)},
    )
    def post(self, request, conversation_id):
        require_scope(request, Scope.CONVERSATIONS_MANAGE)
        conversation = conversation_of(request.user, conversation_id)
        body = validated(NoteIn, request.data)["body"]
        note = teaminbox.note_add(conversation=conversation, body=body, actor=actor_of(request))
        return envelope(request, teaminbox.note_as_data(note), status=201)
