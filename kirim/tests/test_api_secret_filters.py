"""No API list filters on a secret column, whatever the query string asks: every GET of /v1/ that
lists (its OpenAPI document says which), asked with a lookup on each path to a secret, answers what
it answers without one. A filter backend or a new list that passed query parameters on would fail."""

import re
from urllib.parse import urlencode

import responses
from django.apps import apps
from django.test import Client

from core.middleware import URL_MAX_BYTES
from inbox.models import Direction
from outbox.models import EventType, WebhookSubscription
from outbox.record import events_record
from testing.secrets import SECRET_LOOKUPS, paths_to_secrets

NEVER_MATCHES = "not-a-prefix-of-any-secret"


# Answers that change from one moment to the next, whatever the query: readiness reports ages.
TIME_DEPENDENT = {"/v1/health/ready"}


def list_paths(phone_number):
    """The GET paths of the API's OpenAPI document that take no object id, with the number filled in."""
    schema = Client(HTTP_HOST="localhost").get("/v1/openapi.json").json()
    for path, operations in schema["paths"].items():
        if "get" in operations and not re.search(r"\{(?!phone_number_id\})", path) and path not in TIME_DEPENDENT:
            yield path.replace("{phone_number_id}", phone_number.phone_number_id)


def queries_within_the_url_limit(path, asked):
    """`asked` spread over as few query strings as keep each URL within Kirim's limit (else a 414)."""
    queries, query = [], ""
    for pair in (urlencode({name: value}) for name, value in asked.items()):
        if query and len(f"{path}?{query}&{pair}") > URL_MAX_BYTES:
            queries.append(query)
            query = ""
        query = f"{query}&{pair}" if query else pair
    return [*queries, query]


def without_request_id(response):
    return {name: value for name, value in response.json().items() if name != "request_id"}


@responses.activate
def test_no_api_list_filters_on_a_secret(api, org, phone_number, make_message, settings):
    blocked = {"data": [{"messaging_product": "whatsapp", "wa_id": "6281"}], "paging": {"cursors": {"after": "A"}}}
    responses.get(f"{settings.META_GRAPH_URL}/{phone_number.phone_number_id}/block_users", json=blocked)
    make_message(phone_number, contact="6281")
    make_message(phone_number, contact="6281", direction=Direction.OUTBOUND)
    subscription = WebhookSubscription.objects.create(
        org=org, url="https://hooks.example.com/", events=["message.read"]
    )
    events_record(EventType.MESSAGE_READ, {org.pk: {}}, {org.pk: [subscription]})
    lookups = {f"{path}{lookup}" for model in apps.get_models() for path in paths_to_secrets(model, relations=1)
               for lookup in SECRET_LOOKUPS}  # fmt: skip
    asked = {name: "1" if name.endswith("__isnull") else NEVER_MATCHES for name in lookups}

    lists = list(list_paths(phone_number))
    for path in lists:
        plain = api.get(path)
        assert plain.status_code == 200, path
        for query in queries_within_the_url_limit(path, asked):
            assert without_request_id(api.get(f"{path}?{query}")) == without_request_id(plain), path
    assert {"/v1/accounts", "/v1/webhook_subscriptions", "/v1/webhook_deliveries"} <= set(lists)
    assert f"/v1/{phone_number.phone_number_id}/messages" in lists
    assert all(api.get(path).json().get("data") for path in lists if path != "/v1/health")  # nothing empty
