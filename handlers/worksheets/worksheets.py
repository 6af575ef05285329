"""Worksheet templates: create (fields, or a built-in instrument), list, get, archive, and their analytics."""
from __future__ import annotations

import asyncio
import hashlib
import statistics
from typing import Any

import orjson

from clock import Clock
from errors import InvalidPayload, NotFound, RequestIdReused
from handlers.auth import User
from handlers.page import Page
from handlers.worksheets.deltas import Analytics, ClientScores, ScorePoint
from handlers.worksheets.instruments import INSTRUMENTS
from stores.mongo import new_id
from stores.worksheets.assignments import AssignmentStore, Outcome
from stores.worksheets.worksheets import Field, Worksheet, WorksheetStore

ID_CACHE = 10_000  # worksheets one process remembers (they never change, except archiving)


def fingerprint(payload: dict[str, Any]) -> str:
    """What a creating request asked for, to tell a true repeat of its requestId from a different request."""
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS, default=str)).hexdigest()


class WorksheetHandler:
    """worksheet:* requests of the owning therapist."""

    def __init__(self, store: WorksheetStore, assignments: AssignmentStore, clock: Clock) -> None:
        self.store = store
        self.assignments = assignments
        self.clock = clock
        self._fields: dict[str, asyncio.Future[tuple[Field, ...]]] = {}

    async def create(self, user: User, title: str | None, description: str | None, fields: list[dict[str, Any]],
                     instrument: str | None, request_id: str) -> Worksheet:
        """worksheet:create: a repeat of the requestId returns the first worksheet (a different payload: conflict)."""
        print_ = fingerprint({"title": title, "description": description, "fields": fields,
                              "instrument": instrument})
        if instrument is not None:
            built = INSTRUMENTS[instrument]
            shaped, title = built.fields, title or built.title
        else:
            shaped = tuple(Field(**{**each, "options": tuple(each["options"]) if each.get("options") else None})
                           for each in fields)
        if not title:
            raise InvalidPayload("A worksheet needs a title", {"title": ["Missing data for required field."]})
        worksheet = Worksheet(id=new_id(), therapist_id=user.id, title=title, description=description,
                              fields=shaped, instrument=instrument, request_id=request_id, fingerprint=print_,
                              archived_at=None, created_at=self.clock())
        stored, created = await self.store.insert(worksheet)
        if not created and stored.fingerprint != print_:
            raise RequestIdReused("This requestId was used for another worksheet")
        return stored

    async def own(self, user: User, worksheet_id: str) -> Worksheet:
        """A worksheet of the calling therapist; `not_found` for anyone else's."""
        worksheet = await self.store.get(worksheet_id)
        if worksheet is None or worksheet.therapist_id != user.id:
            raise NotFound("No such worksheet")
        return worksheet

    async def visible(self, user: User, worksheet_id: str) -> Worksheet:
        """worksheet:get: the owner's worksheet, or one assigned to the calling client; `not_found` otherwise."""
        worksheet = await self.store.get(worksheet_id)
        if worksheet is None or not (worksheet.therapist_id == user.id
                                     or await self.assignments.assigned_to(worksheet_id, user.id)):
            raise NotFound("No such worksheet")
        return worksheet

    async def fields_of(self, worksheet_id: str) -> tuple[Field, ...]:
        """The fields of a worksheet (cached: they never change). Concurrent first reads share one query, so
        a burst of edits does not send one each."""
        found = self._fields.get(worksheet_id)
        if found is None:
            if len(self._fields) >= ID_CACHE:
                self._fields.pop(next(iter(self._fields)))
            found = self._fields[worksheet_id] = asyncio.ensure_future(self._read_fields(worksheet_id))
        try:
            return await asyncio.shield(found)
        except BaseException:
            if found.done() and self._fields.get(worksheet_id) is found:
                del self._fields[worksheet_id]  # a failed read is tried again next time
            raise

    async def _read_fields(self, worksheet_id: str) -> tuple[Field, ...]:
        worksheet = await self.store.get(worksheet_id)
        if worksheet is None:
            raise NotFound("No such worksheet")
        return worksheet.fields

    async def page(self, user: User, limit: int, cursor: str | None, include_archived: bool) -> Page[Worksheet]:
        """worksheet:list: the caller's own worksheets, newest first."""
        items = await self.store.page(user.id, cursor, limit + 1, include_archived)
        more = len(items) > limit
        items = items[:limit]
        return Page(items, items[-1].id if more else None)

    async def archive(self, user: User, worksheet_id: str) -> Worksheet:
        """worksheet:archive: no new assignments; existing ones go on."""
        await self.own(user, worksheet_id)
        await self.store.archive(worksheet_id, self.clock())
        return await self.own(user, worksheet_id)

    async def analytics(self, user: User, worksheet_id: str) -> Analytics:
        """worksheet:analytics (the owner): one query over the worksheet's assignments, summarised here."""
        await self.own(user, worksheet_id)
        return summarise(worksheet_id, await self.assignments.outcomes(worksheet_id))


def summarise(worksheet_id: str, outcomes: list[Outcome]) -> Analytics:
    """Counts by status, on-time rate (submitted by the due time, of those due and submitted), median time
    from assignment to submission, and each client's scores over time."""
    count = {status: sum(o.status == status for o in outcomes)
             for status in ("assigned", "in_progress", "submitted", "reviewed")}
    done = [o for o in outcomes if o.submitted_at is not None]
    due = [o for o in done if o.due_at is not None]
    on_time = sum(o.submitted_at <= o.due_at for o in due if o.submitted_at and o.due_at)
    waits = [(o.submitted_at - o.assigned_at).total_seconds() for o in done if o.submitted_at]
    series: dict[str, list[ScorePoint]] = {}
    for o in sorted(done, key=lambda each: each.submitted_at or each.assigned_at):
        if o.score is not None and o.submitted_at is not None:
            series.setdefault(o.client_id, []).append(ScorePoint(o.assignment_id, o.submitted_at, o.score.total,
                                                                 o.score.severity))
    return Analytics(worksheet_id=worksheet_id, assigned=count["assigned"], in_progress=count["in_progress"],
                     submitted=count["submitted"], reviewed=count["reviewed"],
                     on_time_rate=round(on_time / len(due), 4) if due else None,
                     median_seconds_to_submit=statistics.median(waits) if waits else None,
                     scores=[ClientScores(client, points) for client, points in series.items()])
