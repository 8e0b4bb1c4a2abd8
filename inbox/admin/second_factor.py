"""Staff second factor (STAFF_REQUIRE_2FA): managers and operators reach the admin only after a TOTP
code (an authenticator app) or one of their single-use recovery codes, from django-otp. Agents work
with their password alone.

After the password (Django's admin login) the middleware sends a user who needs a second factor to
set one up (a TOTP device, confirmed with its first code, and ten recovery codes shown once) or, once
one exists, to enter a code; every other admin page waits until the session is verified. An operator
resets a lost device by deleting it in the admin (OTP devices)."""

from base64 import b32encode

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.views.decorators.cache import never_cache
from django_otp import login as otp_login
from django_otp import match_token, user_has_device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from inbox.models import Membership, Role

RECOVERY_CODES = 10
# Pages a user reaches before the second factor: its own, and leaving.
OPEN_PATHS = ("/admin/second-factor/", "/admin/login/", "/admin/logout/", "/admin/jsi18n/")


def needs_second_factor(user):
    """Operators (superusers) and managers of any org, when STAFF_REQUIRE_2FA is on."""
    if not (settings.STAFF_REQUIRE_2FA and user.is_authenticated and user.is_staff):
        return False
    return user.is_superuser or Membership.objects.filter(user_id=user.pk, role=Role.MANAGER).exists()


class SecondFactorMiddleware:
    """After django-otp's OTPMiddleware: an admin page for a user who needs a second factor and has not
    given one in this session redirects to the page that asks for it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path_info
        if path.startswith("/admin/") and not path.startswith(OPEN_PATHS):
            user = request.user
            if needs_second_factor(user) and not user.is_verified():
                return redirect(f"{reverse('second-factor')}?next={request.get_full_path()}")
        return self.get_response(request)


class CodeForm(forms.Form):
    code = forms.CharField(max_length=16, label="Code", widget=forms.TextInput(attrs={"autocomplete": "one-time-code",
                                                                                        "autofocus": True}))  # fmt: skip


@never_cache
@login_required(login_url="admin:login")
def second_factor(request):
    """Set up a TOTP device (the first time), else verify a code from it or a recovery code."""
    user = request.user
    form = CodeForm(request.POST or None)
    code = form.cleaned_data["code"].strip().replace(" ", "") if form.is_valid() else None
    if user_has_device(user, confirmed=True):
        verified = match_token(user, code) if code else None  # a recovery code is used up by this
        if verified is not None:
            otp_login(request, verified)
            return redirect(safe_next(request))
        return code_page(request, form, refused=code is not None)
    device, _ = TOTPDevice.objects.get_or_create(user=user, confirmed=False, defaults={"name": "authenticator"})
    if code and device.verify_token(code):
        otp_login(request, device)
        return TemplateResponse(request, "admin/second_factor/recovery_codes.html", {
            **admin_context(request), "codes": confirm_with_recovery_codes(device), "next": safe_next(request),
        })  # fmt: skip
    return code_page(request, form, refused=code is not None, device=device)


def code_page(request, form, *, refused, device=None):
    """The page asking for a code; with `device`, the key to set up first."""
    if refused:
        form.add_error("code", "That code is not valid (a recovery code works once).")
    return TemplateResponse(request, "admin/second_factor/code.html", {
        **admin_context(request), "form": form, "setting_up": device is not None, "device": device,
        "secret": b32encode(device.bin_key).decode() if device is not None else "",
    })  # fmt: skip


def confirm_with_recovery_codes(device):
    """Confirm the TOTP device and give the user new recovery codes (any earlier ones stop working)."""
    with transaction.atomic():
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        StaticDevice.objects.filter(user=device.user).delete()
        recovery = StaticDevice.objects.create(user=device.user, name="recovery codes")
        codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
        StaticToken.objects.bulk_create([StaticToken(device=recovery, token=code) for code in codes])
    return codes


def safe_next(request):
    target = request.GET.get("next", "")
    return target if target.startswith("/admin/") and not target.startswith("//") else reverse("admin:index")


def admin_context(request):
    return {**admin.site.each_context(request), "title": "Second factor"}


urls = [path("admin/second-factor/", second_factor, name="second-factor")]
