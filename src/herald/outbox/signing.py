"""The `X-Altur-Signature` header: base64(HMAC-SHA256(key = the base64-decoded shared secret, message = the body))."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

SIGNATURE_HEADER = "X-Altur-Signature"


class SecretError(ValueError):
    """A shared secret that is not base64 (Altur's secrets are base64-encoded keys)."""


def secret_key(secret: str) -> bytes:
    """The HMAC key a base64 secret stands for; SecretError when it is not base64 or decodes to nothing."""
    text = secret.strip()
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise SecretError("the secret must be base64 (for example the output of `openssl rand -base64 32`)") from None
    if not key:
        raise SecretError("the secret must not be empty")
    return key


def sign(secret: str, body: bytes) -> str:
    """The signature of `body` under a base64 `secret`."""
    return base64.b64encode(hmac.new(secret_key(secret), body, hashlib.sha256).digest()).decode("ascii")
