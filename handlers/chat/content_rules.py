"""Content rules of chat: the blocklist (refuses), crisis phrases (alerts, never refuses), emoji validity."""
from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from stores.chat.blind_index import normalise, words

log = logging.getLogger("careline.chat")

MAX_EMOJI_CODEPOINTS = 16
_KEYCAP_BASES = set("0123456789#*")
_EMOJI_CATEGORIES = {"So", "Sk"}  # symbols, and modifiers such as skin tones
_JOINERS = {"\u200d", "\ufe0f", "\ufe0e", "\u20e3"}  # ZWJ, variation selectors, keycap


def is_emoji(text: str) -> bool:
    """A single emoji (or ZWJ sequence, keycap, flag, tag sequence), not arbitrary text."""
    if not 0 < len(text) <= MAX_EMOJI_CODEPOINTS:
        return False
    has_symbol = False
    for index, char in enumerate(text):
        keycap = char in _KEYCAP_BASES and index == 0 and "\u20e3" in text
        if unicodedata.category(char) in _EMOJI_CATEGORIES or keycap:
            has_symbol = True
        elif char not in _JOINERS and not 0xE0020 <= ord(char) <= 0xE007F:
            return False
    return has_symbol


def _lines(path: Path | None) -> list[str]:
    if path is None:
        return []
    text = path.read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


@dataclass(frozen=True)
class ContentRules:
    """The configured blocklist patterns and crisis phrases (both matched on normalised text)."""

    blocklist: tuple[re.Pattern[str], ...] = ()
    crisis_phrases: tuple[tuple[str, ...], ...] = ()

    @classmethod
    def load(cls, blocklist_file: Path | None, crisis_file: Path | None) -> ContentRules:
        """Read both files: one regular expression / one phrase per line, `#` comments."""
        patterns = tuple(re.compile(normalise(line), re.IGNORECASE) for line in _lines(blocklist_file))
        phrases = tuple(tuple(words(line)) for line in _lines(crisis_file))
        rules = cls(patterns, tuple(phrase for phrase in phrases if phrase))
        if patterns or rules.crisis_phrases:
            log.info("chat content rules: %d blocklist patterns, %d crisis phrases", len(patterns),
                     len(rules.crisis_phrases))
        return rules

    def blocked(self, text: str) -> bool:
        """Whether the text matches a blocklist pattern."""
        if not self.blocklist or not text:
            return False
        folded = normalise(text)
        return any(pattern.search(folded) for pattern in self.blocklist)

    def crisis(self, text: str) -> bool:
        """Whether the text contains a crisis phrase as a whole-word sequence (case, width, punctuation ignored)."""
        if not self.crisis_phrases or not text:
            return False
        padded = " " + " ".join(words(text)) + " "
        return any(" " + " ".join(phrase) + " " in padded for phrase in self.crisis_phrases)
