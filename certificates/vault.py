"""The key vault: private keys encrypted at rest with Fernet keys from the environment.

settings.TRUSTVIEW_KEY_ENCRYPTION_KEYS holds one or more keys; the first encrypts, every one decrypts,
so keys can be rotated: put the new key first, run `manage.py reencrypt_keys`, then drop the old one.
A key is stored as unencrypted PKCS#8 DER inside the Fernet token and only ever leaves the vault in
memory (for a CA call or a PKCS#12 export with a fresh password).
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .x509 import PrivateKey


class VaultError(RuntimeError):
    """A stored key that none of the configured encryption keys opens (the message names no secret)."""


def _fernet() -> MultiFernet:
    keys = settings.TRUSTVIEW_KEY_ENCRYPTION_KEYS
    if not keys:
        raise ImproperlyConfigured("TRUSTVIEW_KEY_ENCRYPTION_KEYS is empty: set at least one Fernet key.")
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(
            "TRUSTVIEW_KEY_ENCRYPTION_KEYS holds a value that is not a Fernet key "
            "(32 url-safe base64-encoded bytes; make one with `python -m certificates.vault`)."
        ) from exc


def seal(key: PrivateKey) -> str:
    """Encrypt a private key for storage; returns the Fernet token as text."""
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return _fernet().encrypt(der).decode()


def unseal(token: str) -> PrivateKey:
    """Decrypt a stored private key."""
    try:
        der = _fernet().decrypt(token.encode())
    except InvalidToken as exc:
        raise VaultError(
            "A stored private key cannot be decrypted with the configured TRUSTVIEW_KEY_ENCRYPTION_KEYS."
        ) from exc
    # Fernet authenticates what it decrypts, so these are the exact bytes `seal` wrote from a key that was
    # checked when it came in (an import, or the CA's PKCS#12). Checking an RSA key again costs 0.2 s of
    # CPU per use (every call to the CA that presents it), which adds up for the renewals of a large
    # inventory.
    return serialization.load_der_private_key(  # type: ignore[return-value]
        der, password=None, unsafe_skip_rsa_key_validation=True
    )


def reseal(token: str) -> str:
    """Re-encrypt a stored token with the first (newest) encryption key."""
    try:
        return _fernet().rotate(token.encode()).decode()
    except InvalidToken as exc:
        raise VaultError(
            "A stored private key cannot be decrypted with the configured TRUSTVIEW_KEY_ENCRYPTION_KEYS."
        ) from exc


def seal_text(text: str) -> str:
    """Encrypt a short secret (an alert channel's webhook address or signing secret) for storage."""
    return _fernet().encrypt(text.encode()).decode()


def unseal_text(token: str) -> str:
    """Decrypt a secret sealed by seal_text."""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise VaultError(
            "A stored secret cannot be decrypted with the configured TRUSTVIEW_KEY_ENCRYPTION_KEYS."
        ) from exc


if __name__ == "__main__":
    print(Fernet.generate_key().decode())
