"""Tenancy in the admin: every registered admin, walked as an agent and as a manager of org ALPHA, never
lists, shows, offers or changes a row of org BRAVO, and answers 404 for BRAVO's ids exactly as for ids
that do not exist. Everything of BRAVO's is named "BRAVO…", so a page that leaks any of it says so."""

import json

import pytest
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Group, User
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_tasks_db.models import DBTaskResult

from conftest import logged_in
from inbox.models import (
    AccountEvent,
    ApiKey,
    AuditAction,
    Contact,
    Conversation,
    Direction,
    Label,
    Membership,
    Message,
    MessageTemplate,
    Org,
    PhoneNumber,
    PriceTally,
    Role,
    SavedReply,
    WebhookEvent,
)
from orgs.audit import audit_record
from orgs.members import member_add, memberships_remove
from orgs.scope import OrgScopedAdmin, org_path_of
from outbox.models import EventType, WebhookSubscription
from outbox.record import events_record
from testing.meta import meta_confirms_number

# Admins of models no org owns: for operators (superusers) only; staff get 403 on every page.
# the task queue's results (django-tasks-db's admin), and every org's webhook events
OPERATORS_ONLY = {User, Group, DBTaskResult, WebhookEvent, TOTPDevice, StaticDevice}  # OTP devices: a lost phone
MISSING_PK = 987654321
STANDARD_VIEWS = {"change", "history", "delete"}


@pytest.fixture
def world(db, make_message):
    """Two orgs with a number, an API key, conversations both ways, a member and a history each."""
    orgs = {}
    for prefix, digits in (("ALPHA", "1"), ("BRAVO", "2")):
        org = Org.objects.create(name=f"{prefix} Coffee", slug=prefix.lower())
        number = PhoneNumber.objects.create(
            org=org, phone_number_id=f"10654035224292{digits}", display_phone_number=f"+62 {prefix}",
            access_token=f"EAAG-{prefix}-token",
        )  # fmt: skip
        ApiKey.issue(org=org, name=f"{prefix}-key")
        audit_record(None, AuditAction.KEY_CREATED, org=org, target=f"{prefix}-key")
        make_message(number, contact=f"62{digits}1", contact_name=f"{prefix} Siti", text=f"{prefix} halo")
        make_message(number, contact=f"62{digits}1", direction=Direction.OUTBOUND, text=f"{prefix} reply")
        MessageTemplate.objects.create(org=org, waba_id=f"{prefix}-waba", meta_id=digits, name=f"{prefix.lower()}_hi",
                                       language="en", status="APPROVED", synced_at=timezone.now())  # fmt: skip
        member_add(org=org, username=f"{prefix}-member", role=Role.AGENT)
        Label.objects.create(org=org, name=f"{prefix}-label")
        SavedReply.objects.create(org=org, name=f"{prefix}-saved", body=f"{prefix} thanks {{{{contact_name}}}}")
        Contact.objects.create(org=org, phone_number=number, contact_wa_id=f"62{digits}1", saved_name=f"{prefix} Siti",
                               blocked=True)  # fmt: skip
        AccountEvent.objects.create(org=org, waba_id=f"{prefix}-waba", field="account_update", event="VERIFIED_ACCOUNT",
                                    value={"event": "VERIFIED_ACCOUNT"})  # fmt: skip
        PriceTally.objects.create(org=org, phone_number=number, day=timezone.now().date(),
                                  template_name=f"{prefix.lower()}_hi", category="utility", billable=True, messages=3)  # fmt: skip
        subscription = WebhookSubscription.objects.create(
            org=org, url=f"https://{prefix.lower()}.example.com/{prefix}-hook", events=["message.read"],
            description=f"{prefix} CRM",
        )  # fmt: skip
        events_record(EventType.MESSAGE_READ, {org.pk: {"note": f"{prefix} event"}}, {org.pk: [subscription]})
        orgs[prefix] = org
    operator = logged_in(User.objects.create_superuser("operator", password="pw"))
    bravo_number = PhoneNumber.objects.get(org=orgs["BRAVO"])
    change = {"org": orgs["BRAVO"].pk, "phone_number_id": bravo_number.phone_number_id,
              "display_phone_number": "+62 BRAVO 2", "waba_id": "", "access_token": "",
              "read_receipt_policy": "manual"}  # fmt: skip
    operator.post(reverse("admin:inbox_phonenumber_change", args=[bravo_number.pk]), change)
    assert LogEntry.objects.filter(object_id=str(bravo_number.pk)).exists()  # BRAVO's number has a history
    return orgs


def rows_of(model, org):
    if model in OPERATORS_ONLY:
        return model.objects.filter(username__startswith=org.name.split()[0]) if model is User else model.objects.all()
    return model._default_manager.filter(**{org_path_of(model): org.pk})


def snapshot(org):
    """Every row BRAVO owns, field by field: what no request of ALPHA's staff may change."""
    return {
        model: list(rows_of(model, org).order_by("pk").values())
        for model in admin.site._registry
        if model not in OPERATORS_ONLY
    }


def url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def custom_object_urls(model_admin, pk):
    """The admin's own URLs that name an object (the thread's mark-read button, ...)."""
    info = f"{model_admin.opts.app_label}_{model_admin.opts.model_name}_"
    for pattern in model_admin.get_urls():
        name = pattern.name or ""
        if "object_id" in pattern.pattern.converters and name.removeprefix(info) not in STANDARD_VIEWS and name:
            yield reverse(f"admin:{name}", kwargs={"object_id": pk})


def assert_hides_bravo(response, where, allowed=(200, 403)):
    assert response.status_code in allowed, (where, response.status_code)
    assert b"BRAVO" not in response.content, where


def assert_like_missing(client, method, address, missing_address, where):
    foreign = getattr(client, method)(address)
    missing = getattr(client, method)(missing_address)
    assert foreign.status_code == missing.status_code, where
    assert foreign.status_code in ((404, 405) if method == "get" else (404,)), (where, foreign.status_code)
    assert foreign.content == missing.content, where


@pytest.mark.parametrize("role", [Role.AGENT, Role.MANAGER])
def test_every_admin_hides_and_protects_another_orgs_rows(world, role, make_member, meta):
    alpha, bravo = world["ALPHA"], world["BRAVO"]
    staff = logged_in(make_member(alpha, role, f"alpha-{role}"))
    before = snapshot(bravo)
    walked = []

    for model, model_admin in admin.site._registry.items():
        name = model._meta.label
        if model in OPERATORS_ONLY:
            assert not isinstance(model_admin, OrgScopedAdmin)
            assert staff.get(url(model, "changelist")).status_code == 403, name
            for row in rows_of(model, bravo):
                assert staff.get(url(model, "change", row.pk)).status_code == 403, name
            continue
        assert isinstance(model_admin, OrgScopedAdmin), f"{name}: an org-owned admin must be an OrgScopedAdmin"
        bravo_pks = list(rows_of(model, bravo).values_list("pk", flat=True))
        assert bravo_pks, f"{name}: the fixture gives BRAVO no row to hide"

        listing = staff.get(url(model, "changelist"))
        assert_hides_bravo(listing, f"{name} list")
        if listing.status_code == 200:
            walked.append(name)
            shown = {row.pk for row in listing.context["cl"].result_list}
            assert shown == set(rows_of(model, alpha).values_list("pk", flat=True)), f"{name}: ALPHA's rows, all"
            assert_hides_bravo(staff.get(url(model, "changelist"), {"q": "Siti"}), f"{name} search")
            for spec in model_admin.list_filter:
                path = spec[0] if isinstance(spec, tuple) else spec
                if isinstance(path, str) and model._meta.get_field(path).is_relation:
                    related = rows_of(model._meta.get_field(path).related_model, bravo).first()
                    filtered = staff.get(url(model, "changelist"), {f"{path}__id__exact": related.pk})
                    assert_hides_bravo(filtered, f"{name} filtered on {path}")
            for action in model_admin.get_actions(listing.wsgi_request):
                ran = staff.post(url(model, "changelist"), {"action": action, "_selected_action": bravo_pks,
                                                            "select_across": "0", "post": "yes"}, follow=True)  # fmt: skip
                assert_hides_bravo(ran, f"{name} action {action}")
        for field in model._meta.fields:
            if field.is_relation and field.related_model in admin.site._registry:
                params = {"app_label": model._meta.app_label, "model_name": model._meta.model_name,
                          "field_name": field.name, "term": ""}  # fmt: skip
                found = staff.get(reverse("admin:autocomplete"), params)  # 404: the target is not searchable
                assert_hides_bravo(found, f"{name}.{field.name} autocomplete", allowed=(200, 403, 404))
        assert_hides_bravo(staff.get(url(model, "add")), f"{name} add form")

        for pk in bravo_pks:
            for view in ("change", "history", "delete"):
                assert_like_missing(staff, "get", url(model, view, pk), url(model, view, MISSING_PK), f"{name} {view}")
            assert_like_missing(staff, "post", url(model, "change", pk), url(model, "change", MISSING_PK), name)
            delete, missing = url(model, "delete", pk), url(model, "delete", MISSING_PK)
            assert staff.post(delete, {"post": "yes"}).status_code == staff.post(missing, {"post": "yes"}).status_code
            for address, missing in zip(
                custom_object_urls(model_admin, pk), custom_object_urls(model_admin, MISSING_PK), strict=True
            ):
                for method in ("get", "post"):
                    assert_like_missing(staff, method, address, missing, f"{name} {address}")

    assert snapshot(bravo) == before
    assert len(meta.calls) == 0  # nothing of BRAVO's was marked read on WhatsApp
    expected = {"inbox.Conversation", "inbox.Message", "inbox.Label", "inbox.SavedReply", "inbox.Contact"} | (
        {
            "inbox.Org",
            "inbox.PhoneNumber",
            "inbox.ApiKey",
            "inbox.AuditEntry",
            "inbox.MessageTemplate",
            "inbox.AccountEvent",
            "inbox.PriceTally",
            "outbox.WebhookSubscription",
            "outbox.Delivery",
        }
        if role == Role.MANAGER
        else set()
    )
    assert set(walked) == expected  # the lists each role works with were really opened


def test_a_staff_user_with_no_membership_sees_no_org(world):
    drifter = User.objects.create_user("drifter", password="pw", is_staff=True)
    drifter.groups.add(*Group.objects.all())  # every role's permissions, but no org
    staff = logged_in(drifter)

    for model in (Conversation, Message, PhoneNumber, ApiKey, Org):
        listing = staff.get(url(model, "changelist"))
        assert listing.status_code == 200
        assert list(listing.context["cl"].result_list) == [], model
    new_key = staff.post(url(ApiKey, "add"), {"org": world["ALPHA"].pk, "name": "sneaky", "expires_at": ""})
    assert new_key.status_code == 200 and new_key.context["adminform"].form.errors["org"]
    assert not ApiKey.objects.filter(name="sneaky").exists()
    assert Conversation.objects.count() == 2


def test_a_manager_creates_keys_and_numbers_for_their_own_org_only(world, make_member):
    alpha, bravo = world["ALPHA"], world["BRAVO"]
    manager = logged_in(make_member(alpha, Role.MANAGER))

    foreign = manager.post(url(ApiKey, "add"), {"org": bravo.pk, "name": "BRAVO-stolen", "expires_at": ""})
    own = manager.post(
        url(ApiKey, "add"), {"org": alpha.pk, "name": "alpha-crm", "expires_at": "", "scopes": ["media"]}
    )
    number = manager.post(url(PhoneNumber, "add"), {"org": bravo.pk, "phone_number_id": "1999", "display_phone_number": "+1",
                                                    "waba_id": "", "access_token": "EAAG-x"})  # fmt: skip

    assert "org" in foreign.context["adminform"].form.errors
    assert not ApiKey.objects.filter(name="BRAVO-stolen").exists()
    assert ApiKey.for_secret(own.context["secret"]).org == alpha
    assert "org" in number.context["adminform"].form.errors and not PhoneNumber.objects.filter(phone_number_id="1999")


def test_roles_see_what_their_role_allows_in_each_org(world, make_member):
    """Agent in ALPHA and manager in BRAVO: conversations of both, numbers of BRAVO only."""
    user = make_member(world["ALPHA"], Role.AGENT, "two-hats")
    member_add(org=world["BRAVO"], username="two-hats", role=Role.MANAGER)
    staff = logged_in(user)

    numbers = staff.get(url(PhoneNumber, "changelist")).context["cl"].result_list
    assert [n.org for n in numbers] == [world["BRAVO"]]
    assert staff.get(url(PhoneNumber, "change", PhoneNumber.objects.get(org=world["ALPHA"]).pk)).status_code == 404
    listed = staff.get(reverse("admin:inbox_conversation_changelist")).context["cl"].result_list
    assert {c.org for c in listed} == {world["ALPHA"], world["BRAVO"]}


def test_recent_actions_never_name_an_org_the_user_has_left(world, make_member):
    agent = make_member(world["ALPHA"], Role.MANAGER, "mover")
    member_add(org=world["BRAVO"], username="mover", role=Role.MANAGER)
    bravo_key = ApiKey.objects.get(org=world["BRAVO"])
    LogEntry.objects.create(user=agent, content_type=ContentType.objects.get_for_model(ApiKey),
                            object_id=str(bravo_key.pk), object_repr=str(bravo_key), action_flag=CHANGE)  # fmt: skip
    memberships_remove(list(Membership.objects.filter(user=agent, org=world["BRAVO"]).select_related("user")))

    index = logged_in(agent).get(reverse("admin:index")).content.decode()

    assert "BRAVO" not in index and "Recent actions" not in index
    operator_index = logged_in(User.objects.get(username="operator")).get(reverse("admin:index")).content.decode()
    assert "Recent actions" in operator_index  # operators keep the list


NOT_THEIRS = {"error": {"message": "Unsupported get request. Object with ID does not exist, cannot be loaded due to "
                        "missing permissions, or does not support this operation.", "type": "GraphMethodException",
                        "code": 100, "error_subcode": 33, "fbtrace_id": "A1"}}  # fmt: skip


def number_added(client, org, phone_number_id, access_token, **fields):
    form = {"org": org.pk, "phone_number_id": phone_number_id, "display_phone_number": "+62 811", "waba_id": "",
            "access_token": access_token, "read_receipt_policy": "manual", **fields}  # fmt: skip
    return client.post(url(PhoneNumber, "add"), form)


def form_errors(response):
    return response.context["adminform"].form.errors


def test_a_manager_connects_a_number_only_when_meta_confirms_their_token(world, make_member, meta):
    """A manager could connect any number id not yet connected, on their word: its messages then went
    to their org, and the real owner was refused."""
    alpha = world["ALPHA"]
    manager = logged_in(make_member(alpha, Role.MANAGER))
    meta.get(f"{settings.META_GRAPH_URL}/106540352249999", status=400, json=NOT_THEIRS)

    refused = number_added(manager, alpha, "106540352249999", "EAAG-not-for-this-number")

    assert refused.status_code == 200
    assert "Meta did not confirm" in form_errors(refused)["phone_number_id"][0]
    assert not PhoneNumber.objects.filter(phone_number_id="106540352249999").exists()
    meta.replace("GET", f"{settings.META_GRAPH_URL}/106540352249999", json={
        "id": "106540352249999", "display_phone_number": "+62 811 9999", "verified_name": "ALPHA Coffee"})  # fmt: skip
    assert number_added(manager, alpha, "106540352249999", "EAAG-for-this-number").status_code == 302
    assert PhoneNumber.objects.get(phone_number_id="106540352249999").org == alpha
    assert [c.request.headers["Authorization"] for c in meta.calls] == ["Bearer EAAG-not-for-this-number",
                                                                        "Bearer EAAG-for-this-number"]  # fmt: skip


def test_another_orgs_number_is_refused_like_any_number_meta_does_not_confirm(world, make_member, meta):
    """Without a token for it, BRAVO's number answers ALPHA's manager exactly like a number no org has:
    not even whether it is connected. With one (the same business in two orgs), it is "taken", no more."""
    alpha, bravo_number = world["ALPHA"], PhoneNumber.objects.get(org=world["BRAVO"])
    manager = logged_in(make_member(alpha, Role.MANAGER))
    unknown = "106540352249999"
    for phone_number_id in (bravo_number.phone_number_id, unknown):
        meta.get(f"{settings.META_GRAPH_URL}/{phone_number_id}", status=400, json=NOT_THEIRS)

    theirs = number_added(manager, alpha, bravo_number.phone_number_id, "EAAG-guess")
    nobodys = number_added(manager, alpha, unknown, "EAAG-guess")

    assert form_errors(theirs).get_json_data() == json.loads(
        json.dumps(form_errors(nobodys).get_json_data()).replace(unknown, bravo_number.phone_number_id)
    )
    meta_confirms_number(meta, bravo_number.phone_number_id, token="EAAG-also-theirs")
    taken = number_added(manager, alpha, bravo_number.phone_number_id, "EAAG-also-theirs")
    assert list(form_errors(taken)) == ["phone_number_id"] and "BRAVO" not in taken.content.decode()
    assert PhoneNumber.objects.get(phone_number_id=bravo_number.phone_number_id).org == world["BRAVO"]


def test_a_new_id_waba_or_token_is_confirmed_again_and_other_changes_are_not(world, make_member, meta):
    alpha = world["ALPHA"]
    number = PhoneNumber.objects.get(org=alpha)
    manager = logged_in(make_member(alpha, Role.MANAGER))
    form = {"org": alpha.pk, "phone_number_id": number.phone_number_id, "display_phone_number": "+62 ALPHA",
            "waba_id": "", "access_token": "", "read_receipt_policy": "on_reply"}  # fmt: skip
    change = url(PhoneNumber, "change", number.pk)

    assert manager.post(change, form).status_code == 302  # a policy: Meta is not asked
    assert not meta.calls
    meta.get(f"{settings.META_GRAPH_URL}/102290129340398/phone_numbers", json={"data": [{"id": "106540352240000"}]})
    meta_confirms_number(meta, number.phone_number_id, token=number.access_token)
    moved = manager.post(change, {**form, "waba_id": "102290129340398"})  # the stored token, on another WABA
    assert "does not list" in form_errors(moved)["waba_id"][0]
    meta.get(f"{settings.META_GRAPH_URL}/{number.phone_number_id}", status=400, json=NOT_THEIRS)
    assert "phone_number_id" in form_errors(manager.post(change, {**form, "access_token": "EAAG-wrong"}))
    number.refresh_from_db()
    assert (number.waba_id, number.access_token, number.read_receipt_policy) == ("", "EAAG-ALPHA-token", "on_reply")
