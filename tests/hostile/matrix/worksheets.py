"""Matrix rows of /worksheets (to be filled: every request of /worksheets that takes an id)."""
from __future__ import annotations

from tests.hostile.matrix import Maker, Row

MAKERS: dict[str, Maker] = {}
ROWS: dict[tuple[str, str], Row] = {}
