"""Operator commands: orgs, numbers (token never on the command line), keys shown once, the demo."""

import io
import subprocess
import sys
import threading
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from dev.management.commands.seed_demo import DEMO_WABA_ID, OTHER_PHONE_NUMBER_ID, SPARE_PHONE_NUMBER_ID
from fakemeta.server import make_server
from inbox.models import ApiKey, Membership, Message, Org, PhoneNumber, Status
from testing.meta import meta_confirms_number


def run(*args):
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_org_slugifies_the_name(db):
    run("create_org", "--name", "Toko Kopi Jaya")
    assert Org.objects.get().slug == "toko-kopi-jaya"
    with pytest.raises(CommandError, match="exists already"):
        run("create_org", "--name", "Toko Kopi Jaya")


def test_add_phone_number_reads_the_token_from_the_environment(org, monkeypatch, meta):
    monkeypatch.setenv("META_ACCESS_TOKEN", "EAAG-env-token")
    meta_confirms_number(meta, "1065403522", token="EAAG-env-token")

    out = run(
        "add_phone_number", "--org", org.slug, "--phone-number-id", "1065403522", "--display-phone-number", "+62 811"
    )

    number = PhoneNumber.objects.get()
    assert number.access_token == "EAAG-env-token" and number.org == org
    assert "EAAG" not in out


def test_add_phone_number_reads_the_token_from_stdin(org, monkeypatch, meta):
    monkeypatch.delenv("META_ACCESS_TOKEN", raising=False)
    meta_confirms_number(meta, "1065403522", token="EAAG-stdin-token")
    monkeypatch.setattr("sys.stdin", io.StringIO("EAAG-stdin-token\n"))

    run(
        "add_phone_number",
        "--org",
        org.slug,
        "--phone-number-id",
        "1065403522",
        "--display-phone-number",
        "+62",
        "--access-token-stdin",
    )

    assert PhoneNumber.objects.get().access_token == "EAAG-stdin-token"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--phone-number-id", "12ab"], "6 to 20 digits"),
        (["--phone-number-id", "1065403522", "--org", "nope"], "No org"),
    ],
)
def test_add_phone_number_refuses_bad_input(org, monkeypatch, args, message):
    monkeypatch.setenv("META_ACCESS_TOKEN", "t")
    base = {"--org": org.slug, "--phone-number-id": "1065403522", "--display-phone-number": "+62"}
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    with pytest.raises(CommandError, match=message):
        run("add_phone_number", *[x for pair in base.items() for x in pair])


def test_add_phone_number_connects_only_what_meta_confirms_for_the_token(org, monkeypatch, meta):
    """Any number id used to be connected on the word of whoever typed it: its inbound messages then
    went to their org, and the real owner was refused."""
    monkeypatch.setenv("META_ACCESS_TOKEN", "EAAG-someone-elses")
    not_theirs = {"error": {"message": "Unsupported get request. Object with ID '1065403522' does not exist, cannot "
                            "be loaded due to missing permissions, or does not support this operation.",
                            "type": "GraphMethodException", "code": 100, "error_subcode": 33, "fbtrace_id": "A1"}}  # fmt: skip
    meta.get(f"{settings.META_GRAPH_URL}/1065403522", status=400, json=not_theirs)

    with pytest.raises(CommandError, match="Meta did not confirm that this access token can act for phone number id"):
        run("add_phone_number", "--org", org.slug, "--phone-number-id", "1065403522", "--display-phone-number", "+62")

    assert not PhoneNumber.objects.exists()
    asked = meta.calls[0].request
    assert asked.headers["Authorization"] == "Bearer EAAG-someone-elses"
    assert parse_qs(urlsplit(asked.url).query) == {"fields": ["id,display_phone_number,verified_name"]}


def test_add_phone_number_checks_the_number_is_one_of_the_waba_given(org, monkeypatch, meta):
    monkeypatch.setenv("META_ACCESS_TOKEN", "EAAG-token")
    meta_confirms_number(meta, "1065403522", token="EAAG-token")
    meta.get(f"{settings.META_GRAPH_URL}/102290129340398/phone_numbers", json={"data": [{"id": "1065400000"}]})
    args = ["--org", org.slug, "--phone-number-id", "1065403522", "--waba-id", "102290129340398"]

    with pytest.raises(CommandError, match="does not list phone number id 1065403522 among the numbers of WABA"):
        run("add_phone_number", *args)

    assert not PhoneNumber.objects.exists()
    meta.replace("GET", f"{settings.META_GRAPH_URL}/102290129340398/phone_numbers",
                 json={"data": [{"id": "1065400000"}], "paging": {"cursors": {"after": "Mg"}, "next": "https://x"}})  # fmt: skip
    meta.add("GET", f"{settings.META_GRAPH_URL}/102290129340398/phone_numbers",
             match=[responses.matchers.query_param_matcher({"fields": "id", "limit": "100", "after": "Mg"})],
             json={"data": [{"id": "1065403522"}]})  # fmt: skip
    out = run("add_phone_number", *args)  # found on the second page
    number = PhoneNumber.objects.get()
    assert (number.waba_id, number.display_phone_number) == ("102290129340398", "+62 811 0000 0001")  # Meta's
    assert "Toko Kopi on WhatsApp" in out


def test_a_number_connected_to_another_org_is_refused_without_naming_it(org, other_org, monkeypatch, meta):
    PhoneNumber.objects.create(org=other_org, phone_number_id="1065403522", display_phone_number="+62",
                               access_token="EAAG-theirs")  # fmt: skip
    monkeypatch.setenv("META_ACCESS_TOKEN", "EAAG-also-valid")
    meta_confirms_number(meta, "1065403522", token="EAAG-also-valid")

    with pytest.raises(CommandError) as refused:
        run("add_phone_number", "--org", org.slug, "--phone-number-id", "1065403522")

    assert str(refused.value) == "This number is connected to Kirim already."
    assert PhoneNumber.objects.get().org == other_org


def test_the_meta_stand_in_confirms_its_own_numbers_only(org, monkeypatch, settings):
    """Under `make run` Kirim asks the stand-in: it confirms the numbers it has, in their WABA."""
    stand_in = make_server(port=0)
    threading.Thread(target=stand_in.serve_forever, daemon=True).start()
    settings.META_GRAPH_URL = f"http://127.0.0.1:{stand_in.server_port}/v23.0"
    monkeypatch.setenv("META_ACCESS_TOKEN", "any-token")
    try:
        out = run("add_phone_number", "--org", org.slug, "--phone-number-id", SPARE_PHONE_NUMBER_ID,
                  "--waba-id", DEMO_WABA_ID)  # fmt: skip
        with pytest.raises(CommandError, match="Meta did not confirm"):
            run("add_phone_number", "--org", org.slug, "--phone-number-id", "1065403522")
        with pytest.raises(CommandError, match="does not list"):
            run("add_phone_number", "--org", org.slug, "--phone-number-id", OTHER_PHONE_NUMBER_ID,
                "--waba-id", DEMO_WABA_ID)  # fmt: skip
    finally:
        stand_in.shutdown()
        stand_in.server_close()

    assert "Demo Coffee on WhatsApp" in out
    assert list(PhoneNumber.objects.values_list("phone_number_id", "display_phone_number")) == [
        (SPARE_PHONE_NUMBER_ID, "+62 811 0000 0003")
    ]


def test_add_phone_number_without_a_token_says_how_to_give_one(org, monkeypatch):
    monkeypatch.delenv("META_ACCESS_TOKEN", raising=False)
    with pytest.raises(CommandError, match="META_ACCESS_TOKEN"):
        run("add_phone_number", "--org", org.slug, "--phone-number-id", "1065403522", "--display-phone-number", "+62")


def test_create_api_key_prints_a_working_key_once_on_the_last_line(org, phone_number):
    out = run("create_api_key", "--org", org.slug, "--name", "crm", "--expires-in-days", "30")

    secret = out.strip().splitlines()[-1]
    assert out.count(secret) == 1
    key = ApiKey.for_secret(secret)
    assert key.org == org and key.name == "crm" and key.expires_at is not None


def test_seed_demo_resets_the_demo_and_writes_what_to_curl(db, tmp_path):
    env_file = tmp_path / "demo.env"
    run("seed_demo", "--env-file", str(env_file))
    run("seed_demo", "--env-file", str(env_file))

    values = dict(line.removeprefix("export ").split("=", 1) for line in env_file.read_text().splitlines())
    assert Org.objects.filter(slug="demo").count() == 1
    assert ApiKey.for_secret(values["KIRIM_KEY"]).org.slug == "demo"
    message = Message.objects.get(wamid=values["WAMID"])
    assert message.status == Status.RECEIVED and message.phone_number.phone_number_id == values["PHONE_ID"]
    agent = authenticate(username="agent", password=values["AGENT_PASSWORD"])
    assert agent.is_staff and not agent.is_superuser
    assert list(agent.kirim_memberships.values_list("org__slug", "role")) == [("demo", "agent")]
    assert authenticate(username="admin", password=values["ADMIN_PASSWORD"]).is_superuser
    assert Message.objects.filter(org__slug="demo-books").exists()  # a second org the agent does not see


def test_purge_expired_deletes_only_what_has_served_its_time(org):
    from datetime import timedelta

    from django.utils import timezone

    from inbox.models import AuthFailureWindow, IdempotencyRecord, RateLimitWindow, WebhookEvent
    from orgs.ratelimit import WINDOW_SECONDS

    now = timezone.now()
    minute = int(now.timestamp() // WINDOW_SECONDS)
    IdempotencyRecord.objects.create(org=org, key="old", request_digest="x", expires_at=now - timedelta(seconds=1))
    IdempotencyRecord.objects.create(org=org, key="live", request_digest="x", expires_at=now + timedelta(hours=1))
    RateLimitWindow.objects.create(org=org, minute=minute - 5, count=3)
    RateLimitWindow.objects.create(org=org, minute=minute, count=3)
    AuthFailureWindow.objects.create(address="203.0.113.7", minute=minute - 5, count=10)
    AuthFailureWindow.objects.create(address="203.0.113.7", minute=minute, count=10)
    old = WebhookEvent.objects.create(body="{}", processed_at=now)
    WebhookEvent.objects.filter(pk=old.pk).update(received_at=now - timedelta(days=31))
    WebhookEvent.objects.create(body="{}", processed_at=now)
    unapplied = WebhookEvent.objects.create(body="{}")
    WebhookEvent.objects.filter(pk=unapplied.pk).update(received_at=now - timedelta(days=31))

    assert (
        "Deleted 1 idempotency records, 1 rate-limit windows, 1 failed-authentication windows, 1 webhook events, "
        "0 failed webhook events, 0 early statuses, 0 finished webhook deliveries (dead letters included), "
        "0 events out, 0 uploaded media ids, 0 audit log entries. 1 failed webhook event(s) kept"
        in run("purge_expired")
    )
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["live"]
    assert list(RateLimitWindow.objects.values_list("minute", flat=True)) == [minute]
    assert list(AuthFailureWindow.objects.values_list("minute", flat=True)) == [minute]
    assert WebhookEvent.objects.count() == 2  # the recent one, and the old one never applied


def test_purge_expired_forgets_uploads_meta_no_longer_keeps(phone_number):
    from django.utils import timezone

    from inbox.models import UPLOADED_MEDIA_LIFETIME, UploadedMedia

    for media_id in ("1000000000000001", "1000000000000002"):
        UploadedMedia.objects.create(org=phone_number.org, phone_number=phone_number, media_id=media_id)
    UploadedMedia.objects.filter(media_id="1000000000000001").update(
        uploaded_at=timezone.now() - UPLOADED_MEDIA_LIFETIME
    )

    assert "1 uploaded media ids" in run("purge_expired")
    assert list(UploadedMedia.objects.values_list("media_id", flat=True)) == ["1000000000000002"]


def test_purge_expired_applies_a_status_its_send_missed(phone_number, make_message):
    """The race a send cannot see: its status was kept while it was checking for early ones."""
    from django.utils import timezone

    from inbox.models import Direction, EarlyStatus, Message, Status

    sent = make_message(phone_number, direction=Direction.OUTBOUND, status=Status.ACCEPTED)
    EarlyStatus.objects.create(phone_number_id=phone_number.phone_number_id, wamid=sent.wamid, status="delivered",
                               timestamp=timezone.now())  # fmt: skip
    EarlyStatus.objects.create(phone_number_id=phone_number.phone_number_id, wamid="wamid.NOT_YET",
                               status="read", timestamp=timezone.now())  # fmt: skip

    assert "Applied 1 early status(es);" in run("purge_expired")
    assert Message.objects.get(pk=sent.pk).status == Status.DELIVERED
    assert list(EarlyStatus.objects.values_list("wamid", flat=True)) == ["wamid.NOT_YET"]


def test_purge_expired_marks_sends_whose_request_died_unconfirmed(phone_number, make_message):
    from datetime import timedelta

    from django.utils import timezone

    from inbox.models import Direction

    lapsed, in_flight = timezone.now() - timedelta(seconds=1), timezone.now() + timedelta(seconds=30)
    cut_off = make_message(phone_number, direction=Direction.OUTBOUND, status=Status.PENDING, claim_expires_at=lapsed)
    flying = make_message(phone_number, direction=Direction.OUTBOUND, status=Status.PENDING, claim_expires_at=in_flight)

    assert "1 cut-off send(s) now unconfirmed" in run("purge_expired")
    assert Message.objects.get(pk=cut_off.pk).status == Status.UNCONFIRMED  # Meta may have it: not failed
    assert Message.objects.get(pk=flying.pk).status == Status.PENDING


def test_add_member_creates_a_staff_user_and_a_second_run_changes_the_role(org, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough passphrase\n"))

    created = run("add_member", "--org", org.slug, "--username", "siti", "--role", "agent",
                  "--email", "siti@example.com", "--password-stdin")  # fmt: skip
    promoted = run("add_member", "--org", org.slug, "--username", "siti", "--role", "manager")

    user = authenticate(username="siti", password="a long enough passphrase")
    assert user is not None and user.is_staff and not user.is_superuser and user.email == "siti@example.com"
    assert "passphrase" not in created
    assert created == "Created staff user siti, agent of toko-kopi.\n"
    assert promoted == "siti is now manager of toko-kopi (was agent).\n"
    assert list(Membership.objects.values_list("user__username", "org", "role")) == [("siti", org.pk, "manager")]
    assert list(user.groups.values_list("name", flat=True)) == ["Kirim managers"]
    assert user.has_perm("inbox.change_phonenumber") and User.objects.count() == 1


def test_add_member_adds_an_existing_user_to_a_second_org(org, other_org):
    run("add_member", "--org", org.slug, "--username", "budi", "--role", "manager")
    run("add_member", "--org", other_org.slug, "--username", "budi", "--role", "agent")

    user = User.objects.get(username="budi")
    assert not user.has_usable_password()  # no password given: none that could be guessed
    assert set(Membership.objects.values_list("org__slug", "role")) == {("toko-kopi", "manager"), ("other-co", "agent")}
    assert set(user.groups.values_list("name", flat=True)) == {"Kirim agents", "Kirim managers"}


@pytest.mark.parametrize(
    "args, stdin, message",
    [
        (["--org", "nope", "--role", "agent"], "", "No org"),
        (["--org", "toko-kopi", "--role", "owner"], "", "invalid choice"),
        (["--org", "toko-kopi", "--role", "agent", "--password-stdin"], "short\n", "password is refused"),
    ],
)
def test_add_member_refuses(org, monkeypatch, args, stdin, message):
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))

    with pytest.raises(CommandError, match=message):
        run("add_member", "--username", "ayu", *args)
    assert not User.objects.filter(username="ayu").exists()


def test_kirim_version_prints_the_release_the_changelog_names_first(db):
    """Through manage.py itself: its `version` is Django's own, answered before any app's command."""
    changelog = (settings.BASE_DIR / "CHANGELOG.md").read_text()
    first_release = next(line for line in changelog.splitlines() if line.startswith("## "))
    printed = subprocess.run(
        [sys.executable, "manage.py", "kirim_version"],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    assert printed.strip() == settings.KIRIM_VERSION
    assert first_release.startswith(f"## {settings.KIRIM_VERSION} ")
