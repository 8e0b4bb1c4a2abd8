"""Signatures on the webhooks Kirim sends: its own scheme, Standard Webhooks', and Meta's.

Each takes the subscription's secrets (`whsec_...`): every active secret signs, so a receiver that has
only the old one or only the new one accepts a delivery during a rotation."""

import base64
import hashlib
import hmac
from collections.abc import Iterable


def _hmac_hex(key: bytes, message: bytes) -> str:
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def kirim_signature(secrets: Iterable[str], timestamp: int, body: bytes) -> str:
    """`X-Kirim-Signature`: `t=<unix>,v1=<hex>[,v1=<hex>]`, HMAC-SHA256 over `"{t}.{body}"` keyed with
    the secret string as it is shown (UTF-8)."""
    signed = f"{timestamp}.".encode() + body
    return ",".join([f"t={timestamp}", *(f"v1={_hmac_hex(s.encode(), signed)}" for s in secrets)])


def standard_webhooks_signature(secrets: Iterable[str], message_id: str, timestamp: int, body: bytes) -> str:
    """`webhook-signature` as the Standard Webhooks spec (and its `standardwebhooks` library) has it:
    space-separated `v1,<base64>`, keyed with the base64-decoded part of `whsec_...`."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1," + base64.b64encode(hmac.new(_standard_key(s), signed, hashlib.sha256).digest()).decode() for s in secrets
    )


def _standard_key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix("whsec_"))


def meta_signature(secret: str, body: bytes) -> str:
    """`X-Hub-Signature-256` as Meta computes it with an app secret: code written for Meta's webhooks
    (pywa with `app_secret` set to the subscription's secret, say) verifies it unchanged."""
    return "sha256=" + _hmac_hex(secret.encode(), body)
