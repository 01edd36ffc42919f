"""Encryption at rest for operator-entered keys: MultiFernet over CREDENTIALS_ENCRYPTION_KEYS, newest first.

Decryption never falls back to returning the ciphertext: a value no configured key can open is an error.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class CredentialDecryptionError(RuntimeError):
    """No configured key opens this value: the key it was written with has been removed."""


def _multi_fernet() -> MultiFernet:
    keys = list(settings.CREDENTIALS_ENCRYPTION_KEYS)
    if not keys:
        raise RuntimeError("CREDENTIALS_ENCRYPTION_KEYS is empty")
    return MultiFernet([Fernet(key.encode() if isinstance(key, str) else key) for key in keys])


def encrypt(value: str) -> str:
    return _multi_fernet().encrypt(value.encode()).decode()


def decrypt(ciphertext: str) -> str:
    try:
        return _multi_fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken as exc:
        raise CredentialDecryptionError("no key in CREDENTIALS_ENCRYPTION_KEYS decrypts this credential") from exc


def rotate(ciphertext: str) -> str:
    """Re-encrypt under the newest key (the first in the list)."""
    try:
        return _multi_fernet().rotate(ciphertext.encode()).decode()
    except InvalidToken as exc:
        raise CredentialDecryptionError("no key in CREDENTIALS_ENCRYPTION_KEYS decrypts this credential") from exc
