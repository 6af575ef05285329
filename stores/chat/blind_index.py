"""A blind index for encrypted text: keyed HMAC tokens of normalised words.

Index keys are derived with HKDF-SHA256 from each message key (domain-separated from
the encryption use by the HKDF `info`). A message stores its tokens with the id of the
key that made them (`tkid`), so after a rotation old messages stay searchable: a query is
tokenised under every key still in the ring (old keys must stay there anyway to decrypt).
"""
from __future__ import annotations

import base64
import hmac
import re
import unicodedata

from stores.crypto import derive_key

INFO = b"careline chat blind index v1"
TOKEN_BYTES = 16
MAX_TOKENS = 1000  # distinct words per message; a 4000-character text rarely has half that
_WORD = re.compile(r"[^\W_]+")


def normalise(text: str) -> str:
    """Unicode NFKC, then case-folded (so `ＡＢＣ`, `abc` and `ABC` compare equal)."""
    return unicodedata.normalize("NFKC", text).casefold()


def words(text: str) -> list[str]:
    """The normalised words of `text`, punctuation and underscores stripped, in order."""
    return _WORD.findall(normalise(text))


class BlindIndex:
    """Word tokens under the newest key, and query tokens under every key in the ring."""

    def __init__(self, keys: tuple[tuple[str, bytes], ...]) -> None:
        if not keys:
            raise ValueError("at least one key is required")
        self.current_kid = keys[0][0]
        self._keys = {kid: derive_key(key, INFO) for kid, key in keys}

    @property
    def kids(self) -> tuple[str, ...]:
        """Every key id that may have produced stored tokens."""
        return tuple(self._keys)

    def token(self, word: str, kid: str) -> str:
        """The token of one normalised word under key `kid`."""
        digest = hmac.digest(self._keys[kid], word.encode(), "sha256")[:TOKEN_BYTES]
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def tokens(self, text: str, kid: str | None = None) -> list[str]:
        """The distinct tokens of `text` (newest key by default), at most MAX_TOKENS."""
        kid = kid or self.current_kid
        distinct = list(dict.fromkeys(words(text)))[:MAX_TOKENS]
        return [self.token(word, kid) for word in distinct]
