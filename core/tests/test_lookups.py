from datetime import timedelta

from django.utils import timezone

from inbox.models import ApiKey, Message


def field_values(instance):
    return {field.attname: getattr(instance, field.attname) for field in instance._meta.concrete_fields}


def test_message_for_wamid_is_what_select_related_gives(phone_number, make_message, django_assert_num_queries):
    message = make_message(phone_number, payload={"text": {"body": "halo"}, "n": [1, 2]}, read_at=timezone.now())
    expected = Message.objects.select_related("phone_number").get(pk=message.pk)

    with django_assert_num_queries(1):
        found = Message.for_wamid(message.wamid)
        number = found.phone_number

    assert field_values(found) == field_values(expected)
    assert field_values(number) == field_values(expected.phone_number)
    assert found.payload == {"text": {"body": "halo"}, "n": [1, 2]}  # JSON decoded, as the ORM does
    assert found.timestamp.tzinfo is not None
    assert not found._state.adding  # a saved instance: save() updates, never inserts


def test_api_key_for_secret_carries_its_org(org):
    key, secret = ApiKey.issue(org=org, name="lookup", expires_at=timezone.now() + timedelta(days=1))

    found = ApiKey.for_secret(secret)

    assert field_values(found) == field_values(ApiKey.objects.get(pk=key.pk))
    assert field_values(found.org) == field_values(org)


def test_an_unknown_value_is_none(db):
    assert Message.for_wamid("wamid.NOPE") is None
    assert ApiKey.for_secret("kirim_live_nope") is None
