"""What the rest stands on: the version, the secrets, DEBUG and the development tools, the hosts, TLS
behind the load balancer, the staff's second factor and their passwords."""

import base64
import hashlib

from kirim import __version__
from kirim.settings.environment import env, required

KIRIM_VERSION = __version__  # /v1/health and `manage.py kirim_version` answer it
SECRET_KEY = required("SECRET_KEY")
DEBUG = env.bool("DEBUG", default=False)
# The development-only app (dev/: the demo's seed_demo): installed where DEBUG is on, unless told.
DEV_TOOLS = env.bool("DEV_TOOLS", default=DEBUG)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
# Earlier SECRET_KEYs, still accepted for sessions, signed cursors and media links while they age out.
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])
# Fernet keys (core/encryption.py) for Meta tokens and subscription secrets at rest: the first encrypts,
# all decrypt. Unset, keys derived from SECRET_KEY and its fallbacks stand in (`check --deploy` warns).
ENCRYPTION_KEYS = env.list("ENCRYPTION_KEYS", default=[])
ENCRYPTION_KEYS_DERIVED = not ENCRYPTION_KEYS
if ENCRYPTION_KEYS_DERIVED:
    ENCRYPTION_KEYS = [
        base64.urlsafe_b64encode(hashlib.sha256(f"kirim-encryption:{key}".encode()).digest()).decode()
        for key in (SECRET_KEY, *SECRET_KEY_FALLBACKS)
    ]

if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")  # TLS ends at the load balancer
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [
        r"^v1/health(/live|/ready)?$",
        r"^metrics$",
    ]  # load balancers and Prometheus speak plain HTTP
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
# Managers and operators give a TOTP code (or a recovery code) after their password to reach the admin
# (inbox/admin/second_factor.py). On unless DEBUG: development and the tests' own server may go without.
STAFF_REQUIRE_2FA = env.bool("STAFF_REQUIRE_2FA", default=not DEBUG)
OTP_TOTP_ISSUER = "Kirim"
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
