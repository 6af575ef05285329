"""Encryption at rest: AES-256-GCM with a key id, so keys rotate without downtime.

Encrypt with the newest key (first of MESSAGE_KEYS), decrypt with whichever key the
stored key id names. `aad` binds a ciphertext to its document (e.g. the message id),
so ciphertexts cannot be swapped between documents.
"""
from __future__ import annotations

import hmac
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

NONCE_BYTES = 12


class DecryptionError(Exception):
    """A ciphertext could not be decrypted (unknown key id, or tampered)."""


@dataclass(frozen=True)
class Sealed:
    """One ciphertext as stored: key id, nonce and ciphertext with its tag."""

    kid: str
    nonce: bytes
    data: bytes

    def to_doc(self) -> dict[str, object]:
        """The BSON sub-document."""
        return {"kid": self.kid, "n": self.nonce, "c": self.data}

    @classmethod
    def from_doc(cls, doc: dict[str, object]) -> Sealed:
        """Read the BSON sub-document."""
        nonce, data = doc["n"], doc["c"]
        if not isinstance(nonce, bytes) or not isinstance(data, bytes):
            raise DecryptionError("not a sealed value")
        return cls(str(doc["kid"]), nonce, data)


class Cipher:
    """AES-256-GCM over a ring of keys, newest first."""

    def __init__(self, keys: tuple[tuple[str, bytes], ...]) -> None:
        if not keys:
            raise ValueError("at least one key is required")
        self._current_kid = keys[0][0]
        self._keys = {kid: AESGCM(key) for kid, key in keys}

    def seal(self, plaintext: bytes, aad: bytes = b"") -> Sealed:
        """Encrypt with the newest key."""
        nonce = os.urandom(NONCE_BYTES)
        return Sealed(self._current_kid, nonce, self._keys[self._current_kid].encrypt(nonce, plaintext, aad))

    def open(self, sealed: Sealed, aad: bytes = b"") -> bytes:
        """Decrypt with the key the ciphertext names."""
        key = self._keys.get(sealed.kid)
        if key is None:
            raise DecryptionError(f"unknown key id {sealed.kid!r}")
        try:
            return key.decrypt(sealed.nonce, sealed.data, aad)
        except InvalidTag:
            raise DecryptionError("ciphertext failed authentication") from None

    def seal_text(self, text: str, aad: str = "") -> dict[str, object]:
        """Encrypt a string into its stored sub-document."""
        return self.seal(text.encode(), aad.encode()).to_doc()

    def open_text(self, doc: dict[str, object], aad: str = "") -> str:
        """Decrypt a stored sub-document into a string."""
        return self.open(Sealed.from_doc(doc), aad.encode()).decode()


def derive_key(key: bytes, info: bytes) -> bytes:
    """A 32-byte key for one purpose (`info`) from a master key: HKDF-SHA256, domain-separated."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(key)


class Signer:
    """HMAC-SHA256 signatures for one purpose over a ring of keys: signs with the newest, checks with any."""

    def __init__(self, keys: tuple[tuple[str, bytes], ...], info: bytes) -> None:
        if not keys:
            raise ValueError("at least one key is required")
        self._keys = [derive_key(key, info) for _, key in keys]

    def sign(self, message: str) -> str:
        """The signature of `message` (hex)."""
        return hmac.digest(self._keys[0], message.encode(), "sha256").hex()

    def valid(self, message: str, signature: str) -> bool:
        """Whether `signature` was made for `message` by a key still in the ring (constant time)."""
        return any(hmac.compare_digest(hmac.digest(key, message.encode(), "sha256").hex(), signature)
                   for key in self._keys)
