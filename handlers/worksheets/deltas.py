"""Small results and pushed deltas of /worksheets (records are in stores/worksheets)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from stores.worksheets.assignments import Assignment


@dataclass(frozen=True)
class OpenedDocument:
    """`assignment:open`: the assignment, the whole document as one update, and its state vector (base64)."""

    assignment: Assignment
    update: str
    state_vector: str


@dataclass(frozen=True)
class MissingUpdate:
    """`doc:sync`: what the caller's state vector lacks (base64)."""

    update: str


@dataclass(frozen=True)
class AwarenessUpdated:
    """`awareness:updated`: a user's presence state in a document (None: they left)."""

    assignment_id: str
    user_id: str
    state: dict[str, Any] | None


@dataclass(frozen=True)
class DraftSaved:
    """`draft:save`: when the values were stored and the progress they make."""

    saved_at: datetime
    progress: float


@dataclass(frozen=True)
class ScorePoint:
    """One submitted instrument of one client: when, and how it scored."""

    assignment_id: str
    submitted_at: datetime
    total: int
    severity: str


@dataclass(frozen=True)
class ClientScores:
    """One client's score series, oldest first."""

    client_id: str
    points: list[ScorePoint]


@dataclass(frozen=True)
class Analytics:
    """`worksheet:analytics`: counts by status, on-time rate, median time to submit, score series."""

    worksheet_id: str
    assigned: int
    in_progress: int
    submitted: int
    reviewed: int
    on_time_rate: float | None
    median_seconds_to_submit: float | None
    scores: list[ClientScores]
