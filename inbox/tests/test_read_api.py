"""Reading the inbox back: list with filters and cursors, one message, the org's numbers, the key."""

from datetime import timedelta

import pytest
from django.core import signing
from django.db import connection
from django.utils import timezone

from core.pagination import SALT
from inbox.models import Direction, Status


def list_messages(api, phone_number, **params):
    return api.get(f"/v1/{phone_number.phone_number_id}/messages", params)


def test_list_is_newest_first_in_the_list_envelope(api, phone_number, make_message):
    messages = [make_message(phone_number) for _ in range(3)]

    body = list_messages(api, phone_number).json()

    assert [m["id"] for m in body["data"]] == [m.external_id for m in reversed(messages)]
    assert body["has_more"] is False and body["next_cursor"] is None
    assert body["request_id"].startswith("req_")
    first = body["data"][0]
    assert first["object"] == "message" and first["direction"] == "inbound" and first["status"] == "received"
    assert first["message_id"] == messages[-1].wamid
    assert first["from"] == messages[-1].contact_wa_id and first["to"] == phone_number.display_phone_number


def test_filters(api, phone_number, make_message):
    unread = make_message(phone_number, contact="621")
    make_message(phone_number, contact="621", status=Status.READ)
    outbound = make_message(phone_number, contact="622", direction=Direction.OUTBOUND)

    def ids(**params):
        return [m["id"] for m in list_messages(api, phone_number, **params).json()["data"]]

    assert ids(direction="inbound", status="received") == [unread.external_id]
    assert ids(direction="outbound") == [outbound.external_id]
    assert ids(contact="622") == [outbound.external_id]
    assert len(ids(contact="621")) == 2


@pytest.mark.parametrize(
    "params, param",
    [({"direction": "sideways"}, "direction"), ({"status": "lost"}, "status"), ({"limit": 0}, "limit"),
     ({"limit": 101}, "limit"), ({"limit": "ten"}, "limit"), ({"cursor": "forged"}, "cursor")],
)  # fmt: skip
def test_bad_query_parameters_are_400(api, phone_number, params, param):
    response = list_messages(api, phone_number, **params)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


def test_cursor_pages_through_everything_once_even_with_inserts_between_pages(api, phone_number, make_message):
    messages = [make_message(phone_number) for _ in range(7)]
    seen, cursor = [], None
    for page in range(4):
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        body = list_messages(api, phone_number, **params).json()
        seen += [m["id"] for m in body["data"]]
        cursor = body["next_cursor"]
        make_message(phone_number, timestamp=timezone.now() + timedelta(minutes=page))  # newer than all
        if not body["has_more"]:
            break

    assert seen == [m.external_id for m in reversed(messages)]
    assert cursor is None


def test_a_cursor_cannot_be_moved_to_another_filter_or_number(api, phone_number, second_number, make_message):
    for _ in range(3):
        make_message(phone_number)
        make_message(second_number)
    cursor = list_messages(api, phone_number, limit=1).json()["next_cursor"]

    other_filter = list_messages(api, phone_number, limit=1, cursor=cursor, direction="outbound")
    other_number = list_messages(api, second_number, limit=1, cursor=cursor)
    tampered = signing.loads(cursor, salt=SALT)
    tampered["scope"] = "0" * 24

    assert other_filter.status_code == other_number.status_code == 400
    assert other_filter.json()["error"]["param"] == "cursor"
    forged = signing.dumps(tampered, salt="guess")
    assert list_messages(api, phone_number, cursor=forged).status_code == 400


def test_list_query_count_does_not_grow_with_the_page(api, phone_number, make_message, django_assert_num_queries):
    for _ in range(60):
        make_message(phone_number)

    # 1 key + org with, on PostgreSQL, the org's rate-limit window in the same statement (an upsert of
    # its own on SQLite), 2 last_used_at (the key's first use; then at most once a minute), 3 phone
    # number, 4 the page.
    with django_assert_num_queries(4 if connection.vendor == "postgresql" else 5):
        assert len(list_messages(api, phone_number, limit=50).json()["data"]) == 50


def test_another_orgs_number_is_404_like_an_unknown_one(api, foreign_number, make_message):
    make_message(foreign_number)
    assert list_messages(api, foreign_number).json()["error"]["code"] == "resource_not_found"


def test_retrieve_by_public_id(api, phone_number, second_number, make_message):
    message = make_message(phone_number)
    elsewhere = make_message(second_number)
    url = f"/v1/{phone_number.phone_number_id}/messages/"

    found = api.get(url + message.external_id)
    assert found.status_code == 200
    assert found.json()["data"]["id"] == message.external_id
    for missing in (elsewhere.external_id, "msg_01HXYZABCDEFGHJKMNPQRSTVWX", str(message.pk), "nope"):
        response = api.get(url + missing)
        assert response.status_code == 404, missing
        assert response.json()["error"]["code"] == "resource_not_found"


def test_accounts_lists_only_the_orgs_numbers(api, phone_number, second_number, foreign_number):
    body = api.get("/v1/accounts").json()

    assert [n["phone_number_id"] for n in body["data"]] == [phone_number.phone_number_id, second_number.phone_number_id]
    assert body["has_more"] is False
    assert "access_token" not in str(body)


def test_me_names_the_org_and_key(api, org):
    data = api.get("/v1/me").json()["data"]

    assert data["org"] == {"id": org.external_id, "name": org.name, "slug": org.slug}
    assert data["api_key"]["id"].startswith("key_")
    assert data["api_key"]["display_prefix"].startswith("kirim_live_")
    assert "digest" not in data["api_key"]
