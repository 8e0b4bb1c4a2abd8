"""Meta access tokens are write-only for everyone: every admin page a superuser, a manager and an agent
can open, forms re-shown with errors, and every history entry are searched for a recognisable token.
A new API key is shown once, on the page that answers its creation, and nowhere after."""

import pytest
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from conftest import logged_in
from inbox.models import ApiKey, Direction, PhoneNumber, Role
from orgs.scope import OrgScopedAdmin
from outbox.models import WebhookSubscription
from testing.meta import meta_confirms_number
from testing.secrets import SECRET_LOOKUPS, paths_to_secrets

MARKER = "EAAGRECOGNISABLE"  # every token below contains it


def token(label):
    return f"{MARKER}-{label}-0123456789abcdef"


@pytest.fixture
def numbers(org, other_org, make_message):
    made = []
    for owner, phone_number_id in ((org, "106540352242921"), (other_org, "209999999999991")):
        number = PhoneNumber.objects.create(
            org=owner, phone_number_id=phone_number_id, display_phone_number=f"+62 {phone_number_id[-4:]}",
            access_token=token(owner.slug),
        )  # fmt: skip
        make_message(number, contact="6281")
        make_message(number, contact="6281", direction=Direction.OUTBOUND)
        made.append(number)
    return made


def number_form(number, access_token="", **changes):
    return {"org": number.org_id, "phone_number_id": number.phone_number_id, "waba_id": "",
            "display_phone_number": number.display_phone_number, "access_token": access_token,
            "read_receipt_policy": number.read_receipt_policy, **changes}  # fmt: skip


def edit_numbers_and_keys(superuser, manager, numbers, org, meta):
    """What leaves tokens and keys in forms and history: edits with and without a new token, a form
    refused with a new token in it, a number added, a key issued."""
    mine, theirs = numbers
    for phone_number_id, label in ((mine.phone_number_id, "rotated-by-operator"), (theirs.phone_number_id, "refused"),
                                   (mine.phone_number_id, "rotated-by-manager"), ("1777000001", "added"),
                                   (mine.phone_number_id, "refused-add")):  # fmt: skip
        meta_confirms_number(meta, phone_number_id, token=token(label))
    change = reverse("admin:inbox_phonenumber_change", args=[mine.pk])
    pages = [
        superuser.post(change, number_form(mine)),
        superuser.post(change, number_form(mine, token("rotated-by-operator"))),
        superuser.post(change, number_form(mine, token("refused"), phone_number_id=theirs.phone_number_id)),
        manager.post(change, number_form(mine, token("rotated-by-manager"))),
        manager.post(
            reverse("admin:inbox_phonenumber_add"), number_form(mine, token("added"), phone_number_id="1777000001")
        ),
        manager.post(reverse("admin:inbox_phonenumber_add"), number_form(mine, token("refused-add"))),  # taken id
    ]
    assert [p.status_code for p in pages] == [302, 302, 200, 302, 302, 200]
    assert PhoneNumber.objects.get(pk=mine.pk).access_token == token("rotated-by-manager")
    issued = manager.post(
        reverse("admin:inbox_apikey_add"), {"org": org.pk, "name": "crm", "expires_at": "", "scopes": ["media"]}
    )
    secret = issued.context["secret"]
    assert issued.content.decode().count(secret) == 1  # shown once, on the answer to its creation
    return pages, secret


def every_page():
    """The admin index and, for every registered admin, its list, add form and each row's pages."""
    yield reverse("admin:index")
    for model in admin.site._registry:
        info = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        yield reverse(f"{info}_changelist")
        yield reverse(f"{info}_add")
        for pk in model._default_manager.values_list("pk", flat=True):
            for view in ("change", "history", "delete"):
                yield reverse(f"{info}_{view}", args=[pk])


def test_no_page_form_or_history_entry_shows_a_token_or_a_key(numbers, org, make_member, meta):
    superuser = logged_in(User.objects.create_superuser("operator", password="pw"))
    manager = logged_in(make_member(org, Role.MANAGER))
    agent = logged_in(make_member(org, Role.AGENT))
    viewer = make_member(org, Role.MANAGER, "viewer")  # sees numbers read-only: no change permission
    viewer.groups.clear()
    viewer.user_permissions.add(*Permission.objects.filter(codename__in=["view_phonenumber", "view_apikey"]))
    viewer = logged_in(viewer)
    edits, secret = edit_numbers_and_keys(superuser, manager, numbers, org, meta)

    opened = 0
    for who, client in (("superuser", superuser), ("manager", manager), ("agent", agent), ("viewer", viewer)):
        for address in every_page():
            response = client.get(address)
            assert response.status_code in (200, 403, 404), (who, address)
            page = response.content.decode()
            assert MARKER not in page and secret not in page, (who, address)
            opened += response.status_code == 200
    for page in edits:
        assert MARKER not in page.content.decode()
    history = list(LogEntry.objects.values_list("object_repr", "change_message"))
    assert len(history) == 5 and not any(MARKER in f"{r} {m}" or secret in m for r, m in history)
    assert opened > 60  # the walk really opened pages, not a row of 403s
    unchanged_token = LogEntry.objects.order_by("pk").first().get_change_message()
    assert unchanged_token == "No fields changed."  # a blank token field keeps it and says nothing


@pytest.mark.parametrize(
    "params", [{"access_token__startswith": "EAAG"}, {"phone_number__access_token__startswith": "EAAG"}]
)
def test_a_token_cannot_be_guessed_through_a_list_filter(numbers, org, make_member, params):
    manager = logged_in(make_member(org, Role.MANAGER))
    model = "phonenumber" if "phone_number" not in next(iter(params)) else "conversation"

    assert manager.get(reverse(f"admin:inbox_{model}_changelist"), params).status_code == 400


def test_api_key_digest_is_not_a_lookup_either(org, make_member):
    manager = logged_in(make_member(org, Role.MANAGER))
    key = ApiKey.issue(org=org)[0]

    response = manager.get(reverse("admin:inbox_apikey_changelist"), {"digest__startswith": key.digest[:4]})

    assert response.status_code == 400


# --- No lookup reads a secret, on any admin, whatever the URL asks -----------------------------------


def test_no_registered_admin_filters_on_a_secret_whatever_the_url_asks(db):
    """Every registered admin, its list asked for each lookup on each path to a secret column (its own,
    or a related model's): refused with a 400, for the operator too. A new admin, or a new secret
    column, that forgets the rule fails here."""
    operator = logged_in(User.objects.create_superuser("operator", password="pw"))
    asked = 0
    for model in admin.site._registry:
        changelist = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        for path in set(paths_to_secrets(model)):
            for lookup in SECRET_LOOKUPS:
                response = operator.get(changelist, {f"{path}{lookup}": "1" if lookup == "__isnull" else "a"})
                assert response.status_code == 400, (model.__name__, f"{path}{lookup}", response.status_code)
                asked += 1
    assert asked > 400  # the walk reached the secrets through relations, not just a handful


def test_the_subscriptions_list_does_not_answer_questions_about_signing_secrets(org, make_member):
    """A manager asked `?secret__startswith=` letter by letter and read a whole secret from which
    answers listed the subscription."""
    subscription = WebhookSubscription.objects.create(
        org=org, url="https://hooks.example.com/", events=["message.read"]
    )
    WebhookSubscription.objects.filter(pk=subscription.pk).update(previous_secret="whsec_previous")
    manager = logged_in(make_member(org, Role.MANAGER))
    changelist = reverse("admin:outbox_webhooksubscription_changelist")

    for name, value in (("secret", subscription.secret), ("previous_secret", "whsec_previous")):
        assert manager.get(changelist, {f"{name}__startswith": value[:8]}).status_code == 400
        assert manager.get(changelist, {f"{name}__startswith": "nothing"}).status_code == 400
    deliveries = reverse("admin:outbox_delivery_changelist")
    assert manager.get(deliveries, {"subscription__secret__startswith": subscription.secret[:8]}).status_code == 400


def test_an_admin_that_names_a_secret_in_its_list_filters_or_search_gets_none_of_them(rf):
    """Declared by mistake, a secret column would be printed in the list, offered as filter choices
    or searched: each is dropped."""

    class CarelessAdmin(OrgScopedAdmin):
        list_display = ("url", "secret", "previous_secret", "enabled")
        list_filter = ("enabled", "secret", ("previous_secret", admin.AllValuesFieldListFilter))
        search_fields = ("url", "=secret", "^previous_secret")

    careless = CarelessAdmin(WebhookSubscription, admin.AdminSite())
    request = rf.get("/")
    request.user = User(is_superuser=True)

    assert careless.get_list_display(request) == ["url", "enabled"]
    assert careless.get_list_filter(request) == ["enabled"]
    assert careless.get_search_fields(request) == ["url"]
