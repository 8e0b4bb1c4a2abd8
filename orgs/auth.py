"""API key authentication: `Authorization: Bearer kirim_live_...` resolves to a key and its org."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypeAlias

from django.conf import settings
from django.core import signing
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from core import metrics
from core.errors import ExpiredApiKey, InsufficientScope, InvalidApiKey, RateLimited
from orgs.models import API_KEY_PREFIX, ApiKey, Org
from orgs.ratelimit import WINDOW_SECONDS, KeyCheck, auth_failures, count_request, key_counting_request

if TYPE_CHECKING:  # DRF's views read the settings, which name these classes: a cycle at run time
    from rest_framework.views import APIView

# last_used_at is for humans auditing keys; minute precision spares a write on almost every request.
LAST_USED_PRECISION = timedelta(minutes=1)


class ApiKeyAuthentication(BaseAuthentication):
    """Sets request.user to the key's org and request.auth to its KeyCheck: the key, this request
    counted against the org's rate limit in the same round trip (orgs.ratelimit decides)."""

    def secret_of(self, request: Request) -> str:
        scheme, _, secret = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        return secret.strip() if scheme.lower() == "bearer" else ""

    def authenticate(self, request: Request) -> "Authenticated":
        now = timezone.now()
        secret = self.secret_of(request)
        retry_after = auth_failures.retry_after(request, now.timestamp())
        if retry_after is not None and not auth_failures.is_known_good(secret):
            metrics.api_refused("auth_failures_limit")
            raise RateLimited(
                "Too many failed authentications from this address. Retry after the seconds in Retry-After.",
                headers={"Retry-After": str(retry_after)},
            )
        try:
            check = self.key_for(secret, now)
        except InvalidApiKey as refused:
            metrics.api_refused(refused.code)  # invalid_api_key or expired_api_key
            auth_failures.failed(request, now.timestamp())
            raise
        key = check.key
        auth_failures.succeeded(key)
        if key.last_used_at is None or now - key.last_used_at > LAST_USED_PRECISION:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        return key.org, check

    @staticmethod
    def key_for(secret: str, now: datetime) -> KeyCheck:
        """The KeyCheck of the active key with this secret, its request counted (orgs.ratelimit); else
        InvalidApiKey or ExpiredApiKey, having written nothing."""
        if not secret.startswith(API_KEY_PREFIX):
            raise InvalidApiKey()
        check = key_counting_request(secret, now)
        if check is None or check.key.revoked_at is not None:
            raise InvalidApiKey()
        if check.key.is_expired(now):
            raise ExpiredApiKey()
        return check

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="kirim"'


class GraphApiKeyAuthentication(ApiKeyAuthentication):
    """The Graph-compatible door also takes the key as `?access_token=`, as Meta does: Chatwoot lists
    templates that way. Only there, since a query string lands in proxies' logs and browser history;
    Kirim's own request log records the route, never the query."""

    def secret_of(self, request: Request) -> str:
        return super().secret_of(request) or request.GET.get("access_token", "").strip()


def request_org(request: Request) -> Org:
    """The org an API request authenticated as: Kirim's authentications give it as request.user."""
    org = request.user
    if not isinstance(org, Org):  # a door without Kirim's authentication: no org to act for
        raise InvalidApiKey()
    return org


def require_scope(request: Request, scope: str) -> None:
    """InsufficientScope unless the request's key has `scope`. Checked before any lookup, so a key
    without it learns nothing of what exists."""
    if not request.auth.key.has_scope(scope):
        raise InsufficientScope(scope)


class HasApiKey(BasePermission):
    """A key, with the scope the view's `required_scope` names: one for the view, or one per action
    of a viewset ({action: scope}; actions left out, and views without it, need none)."""

    def has_permission(self, request: Request, view: "APIView") -> bool:
        if not isinstance(request.auth, KeyCheck):
            return False
        scope = getattr(view, "required_scope", None)
        if isinstance(scope, Mapping):
            scope = scope.get(getattr(view, "action", None))
        if scope:
            require_scope(request, scope)
        return True


# Signed media links: the `url` Kirim gives for media downloads it for a few minutes without a key, as
# clients expect of Meta's own (some send their token to Meta's host only). Bound to the org and the
# media id, signed with SECRET_KEY; the link holds the org's public id and the media id, no secret.
MEDIA_LINK_SALT = "kirim.media-link"


def media_link_signature(*, org: Org, media_id: str) -> str:
    """The `signature` query parameter that lets whoever holds it download media `media_id` of `org`
    for MEDIA_LINK_MAX_AGE seconds."""
    return signing.dumps([org.external_id, media_id], salt=MEDIA_LINK_SALT)


@dataclass(frozen=True)
class MediaLink:
    """request.auth for a download by signed link: this request counted in the org's rate-limit
    window (minute, count after it), as a key's is."""

    window: tuple[int, int]


# What Kirim's API doors authenticate a request as: the org (request.user) and how (request.auth).
Authenticated: TypeAlias = tuple[Org, KeyCheck | MediaLink]


class MediaLinkAuthentication(GraphApiKeyAuthentication):
    """The media download door: a key as anywhere on Meta's surface or, when none is given, the
    link's `signature` for the media id of the URL."""

    def authenticate(self, request: Request) -> "Authenticated":
        signature = request.GET.get("signature")
        if signature is None or self.secret_of(request):
            return super().authenticate(request)
        media_id = request.parser_context["kwargs"]["media_id"]
        try:
            org_id, signed_media_id = signing.loads(
                signature, salt=MEDIA_LINK_SALT, max_age=settings.MEDIA_LINK_MAX_AGE
            )
        except signing.SignatureExpired:
            raise ExpiredApiKey("This media link has expired: GET the media again for a fresh `url`.") from None
        except signing.BadSignature:
            org_id = signed_media_id = None
        org = Org.objects.filter(external_id=org_id).first() if signed_media_id == media_id else None
        if org is None:  # tampered with, or another media's link, or its org is gone
            raise InvalidApiKey("This media link is not valid: use the `url` Kirim gave, or your API key.")
        minute = int(timezone.now().timestamp() // WINDOW_SECONDS)
        return org, MediaLink(window=(minute, count_request(org.pk, minute)))


class HasApiKeyOrMediaLink(HasApiKey):
    """A link was made for a key with the media scope; it needs no scope of its own."""

    def has_permission(self, request: Request, view: "APIView") -> bool:
        return isinstance(request.auth, MediaLink) or super().has_permission(request, view)
