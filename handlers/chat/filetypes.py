"""File types careline accepts, detected from content (never from the name), and safe file names."""
from __future__ import annotations

import codecs
import re
import unicodedata

ALLOWED = {
    "image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "image/webp": ".webp",
    "application/pdf": ".pdf", "text/plain": ".txt",
}
SNIFF_BYTES = 16
_UNSAFE = re.compile(r"[^\w.\- ()\[\]]+", re.UNICODE)


def sniff(head: bytes) -> str | None:
    """The binary type the first bytes announce, or None (text is checked separately)."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    return None


class TextCheck:
    """Decides incrementally whether a stream is plain text: valid UTF-8, no NUL or control bytes."""

    _ALLOWED_CONTROLS = {"\t", "\n", "\r", "\f"}

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self.ok = True

    def feed(self, chunk: bytes, final: bool = False) -> bool:
        """Feed the next bytes; returns whether the stream is still plain text."""
        if not self.ok:
            return False
        try:
            text = self._decoder.decode(chunk, final)
        except UnicodeDecodeError:
            self.ok = False
            return False
        self.ok = not any(ch < " " and ch not in self._ALLOWED_CONTROLS for ch in text) and "\x7f" not in text
        return self.ok


def safe_name(name: str | None, mime: str) -> str:
    """A file name safe for Content-Disposition and file systems, with the extension of its real type."""
    base = unicodedata.normalize("NFKC", (name or "").replace("\\", "/").rsplit("/", 1)[-1])
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C")
    base = _UNSAFE.sub("_", base).strip(" .")
    stem = base.rsplit(".", 1)[0] if "." in base else base
    stem = stem[:120] or "file"
    return stem + ALLOWED[mime]


MAX_NAME_CHARACTERS = 255


def name_problem(name: str | None) -> str | None:
    """Why a declared file name is refused (control characters, too long), or None."""
    if name is None:
        return None
    if len(name) > MAX_NAME_CHARACTERS:
        return f"At most {MAX_NAME_CHARACTERS} characters."
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        return "No control characters."
    return None
