"""AES-256-GCM at rest with key rotation."""
from __future__ import annotations

import pytest

from config import parse_message_keys
from stores.crypto import Cipher, DecryptionError

OLD = parse_message_keys("old:" + "B" * 43)
NEW = parse_message_keys("new:" + "C" * 43)


def test_rotation_encrypts_with_newest_and_decrypts_with_any() -> None:
    sealed_before = Cipher(OLD).seal_text("hello", aad="m1")
    rotated = Cipher(NEW + OLD)
    assert rotated.open_text(sealed_before, aad="m1") == "hello"
    sealed_after = rotated.seal_text("again", aad="m2")
    assert sealed_after["kid"] == "new" and b"again" not in sealed_after["c"]  # type: ignore[operator]
    with pytest.raises(DecryptionError):
        Cipher(OLD).open_text(sealed_after, aad="m2")


def test_ciphertext_is_bound_to_its_document() -> None:
    cipher = Cipher(NEW)
    sealed = cipher.seal_text("secret", aad="m1")
    with pytest.raises(DecryptionError):
        cipher.open_text(sealed, aad="m2")
