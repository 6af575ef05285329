"""The `worksheets` collection: a therapist's templates (fields, or a built-in instrument); never edited."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING

from stores.mongo import Database, Doc, insert_or_existing


@dataclass(frozen=True)
class Field:
    """One question of a worksheet (`options` for choice/multi, and anchor labels of a scale)."""

    id: str
    type: str
    label: str
    required: bool = False
    options: tuple[str, ...] | None = None
    min: int | None = None
    max: int | None = None


@dataclass(frozen=True)
class Worksheet:
    """A stored worksheet."""

    id: str
    therapist_id: str
    title: str
    description: str | None
    fields: tuple[Field, ...]
    instrument: str | None
    request_id: str
    fingerprint: str
    archived_at: datetime | None
    created_at: datetime

    def field(self, field_id: str) -> Field | None:
        """The field with this id."""
        return next((each for each in self.fields if each.id == field_id), None)


def _field_doc(field: Field) -> Doc:
    doc: Doc = {"id": field.id, "type": field.type, "label": field.label, "required": field.required}
    if field.options is not None:
        doc["options"] = list(field.options)
    for bound in ("min", "max"):
        if getattr(field, bound) is not None:
            doc[bound] = getattr(field, bound)
    return doc


def _field(doc: Doc) -> Field:
    options = doc.get("options")
    return Field(id=doc["id"], type=doc["type"], label=doc["label"], required=doc.get("required", False),
                 options=tuple(options) if options is not None else None, min=doc.get("min"), max=doc.get("max"))


def _worksheet(doc: Doc) -> Worksheet:
    return Worksheet(id=doc["_id"], therapist_id=doc["therapistId"], title=doc["title"],
                     description=doc.get("description"), fields=tuple(_field(each) for each in doc["fields"]),
                     instrument=doc.get("instrument"), request_id=doc["requestId"], fingerprint=doc["fingerprint"],
                     archived_at=doc.get("archivedAt"), created_at=doc["createdAt"])


class WorksheetStore:
    """Named queries on `worksheets`."""

    def __init__(self, db: Database) -> None:
        self._worksheets = db["worksheets"]

    async def ensure_indexes(self) -> None:
        """One worksheet per (therapist, requestId); a therapist's worksheets newest first."""
        await self._worksheets.create_index([("therapistId", ASCENDING), ("requestId", ASCENDING)], unique=True)
        await self._worksheets.create_index([("therapistId", ASCENDING), ("_id", DESCENDING)])

    async def insert(self, worksheet: Worksheet) -> tuple[Worksheet, bool]:
        """Store a new worksheet; a repeated (therapist, requestId) returns the first one and False."""
        doc: Doc = {"_id": worksheet.id, "therapistId": worksheet.therapist_id, "title": worksheet.title,
                    "description": worksheet.description, "fields": [_field_doc(f) for f in worksheet.fields],
                    "instrument": worksheet.instrument, "requestId": worksheet.request_id,
                    "fingerprint": worksheet.fingerprint, "archivedAt": None, "createdAt": worksheet.created_at}
        stored, created = await insert_or_existing(
            self._worksheets, doc, {"therapistId": worksheet.therapist_id, "requestId": worksheet.request_id})
        return _worksheet(stored), created

    async def get(self, worksheet_id: str) -> Worksheet | None:
        """One worksheet by id."""
        doc = await self._worksheets.find_one({"_id": worksheet_id})
        return _worksheet(doc) if doc else None

    async def archive(self, worksheet_id: str, now: datetime) -> None:
        """Mark archived (the first time only)."""
        await self._worksheets.update_one({"_id": worksheet_id, "archivedAt": None}, {"$set": {"archivedAt": now}})

    async def page(self, therapist_id: str, before_id: str | None, limit: int,
                   include_archived: bool) -> list[Worksheet]:
        """A therapist's worksheets, newest first, before a cursor id (archived ones only when asked)."""
        query: dict[str, Any] = {"therapistId": therapist_id}
        if before_id is not None:
            query["_id"] = {"$lt": before_id}
        cursor = self._worksheets.find(query).sort([("therapistId", ASCENDING), ("_id", DESCENDING)])
        found: list[Worksheet] = []
        async for doc in cursor:
            worksheet = _worksheet(doc)
            if include_archived or worksheet.archived_at is None:
                found.append(worksheet)
                if len(found) == limit:
                    break
        return found
