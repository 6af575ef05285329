"""Assignments: assign (to a client the therapist knows), list, get, submit (score, safety), feedback, clarify."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from clock import Clock, iso
from errors import Forbidden, InvalidPayload, NotFound, PreconditionFailed, RequestIdReused, Unavailable
from handlers.auth import User
from handlers.documents import DocumentLink, DocumentLinks
from handlers.events import AssignmentChange, AssignmentChanged, EventBus, WorksheetSafetyFlagged
from handlers.page import Page
from handlers.worksheets.announce import Announcer
from handlers.worksheets.export_pdf import assignment_pdf
from handlers.worksheets.instruments import INSTRUMENTS, needs_safety_alert
from handlers.worksheets.live import LOCKED, LiveHandler
from handlers.worksheets.responses import missing, problems, progress
from handlers.worksheets.worksheets import WorksheetHandler, fingerprint
from stores.booking.bookings import BookingStore
from stores.chat.conversations import ConversationStore
from stores.mongo import new_id
from stores.users import UserStore
from stores.worksheets.assignments import Assignment, AssignmentStore, Note
from stores.worksheets.reminders import AssignmentReminderStore
from stores.worksheets.worksheets import Field

DUE_SOON = timedelta(hours=24)


@dataclass(frozen=True)
class Acquaintance:
    """Where a therapist's relationship with a client shows: bookings and conversations."""

    bookings: BookingStore
    conversations: ConversationStore

    async def known(self, therapist_id: str, client_id: str) -> bool:
        """Whether they have a booking (any status) or a conversation together."""
        return (await self.bookings.any_between(therapist_id, client_id)
                or therapist_id in await self.conversations.related(client_id, frozenset({therapist_id})))


@dataclass(frozen=True)
class AssignmentDeps:
    """What the assignment handler works with besides its store."""

    worksheets: WorksheetHandler
    live: LiveHandler
    relations: Acquaintance
    reminders: AssignmentReminderStore
    announcer: Announcer
    bus: EventBus
    clock: Clock
    users: UserStore
    documents: DocumentLinks


class AssignmentHandler:
    """worksheet:assign and assignment:* requests (the document ones are LiveHandler's)."""

    def __init__(self, store: AssignmentStore, deps: AssignmentDeps) -> None:
        self.store = store
        self.deps = deps

    async def assign(self, user: User, worksheet_id: str, client_id: str, due_at: datetime | None,
                     request_id: str) -> Assignment:
        """worksheet:assign: only to a client the therapist has a booking or conversation with."""
        worksheet = await self.deps.worksheets.own(user, worksheet_id)
        print_ = fingerprint({"worksheetId": worksheet_id, "clientId": client_id, "dueAt": iso(due_at)})
        now = self.deps.clock()
        new = Assignment(id=new_id(), worksheet_id=worksheet_id, client_id=client_id, therapist_id=user.id,
                         status="assigned", due_at=due_at, progress=0.0, request_id=request_id,
                         fingerprint=print_, assigned_at=now, updated_at=now)
        if worksheet.archived_at is not None:
            raise PreconditionFailed("This worksheet is archived")
        if client_id == user.id or not await self.deps.relations.known(user.id, client_id):
            raise Forbidden("You can assign worksheets only to your clients")
        if due_at is not None and due_at <= now:
            raise InvalidPayload("The due time has passed", {"dueAt": ["Must be in the future."]})
        stored, created = await self.store.insert(new)
        if not created:
            if stored.fingerprint != print_:
                raise RequestIdReused("This requestId was used for another assignment")
            return stored
        if due_at is not None:
            await self.deps.reminders.schedule(stored.id, {"due_soon": max(now, due_at - DUE_SOON),
                                                           "overdue": due_at})
        return await self._announce("assigned", stored, user)

    async def page(self, user: User, status: str | None, limit: int, cursor: str | None) -> Page[Assignment]:
        """assignment:list: as the client or as the therapist, newest first."""
        party = "therapist" if user.is_therapist else "client"
        items = await self.store.page(party, user.id, status, cursor, limit + 1)
        more = len(items) > limit
        items = items[:limit]
        return Page(items, items[-1].id if more else None)

    async def get(self, user: User, assignment_id: str) -> Assignment:
        """assignment:get."""
        return await self.deps.live.assignment(user, assignment_id, fresh=True)

    async def submit(self, user: User, assignment_id: str) -> Assignment:
        """assignment:submit (the client): required answers present; responses frozen, scored, the document
        locked; a PHQ-9 item 9 above 0 alerts the therapist (critical) without holding the client up.

        The document is frozen on every process before the answers are read (every edit acknowledged `ok` is in
        them, no edit is acknowledged after them); a failed submission unfreezes it. The answers are checked once
        before freezing too, so the usual refusal (an answer missing) never holds anyone's typing up."""
        assignment = await self._as(user, assignment_id, "client")
        if not assignment.editable:
            raise PreconditionFailed(LOCKED)
        worksheet = await self.deps.worksheets.store.get(assignment.worksheet_id)
        if worksheet is None:
            raise NotFound("No such worksheet")
        live = self.deps.live
        _check_answers(worksheet.fields, await live.current_responses(assignment))
        async with live.frozen(assignment):
            responses = await live.current_responses(assignment)
            _check_answers(worksheet.fields, responses)
            instrument = INSTRUMENTS.get(worksheet.instrument or "")
            score = instrument.score(responses) if instrument else None
            if not live.still_frozen(assignment.id):
                raise Unavailable("The submission took too long, try again")
            made = progress(worksheet.fields, responses)
            if not await self.store.submit_if_open(assignment.id, responses, score, made, self.deps.clock()):
                raise PreconditionFailed(LOCKED)
            live.lock(assignment)
        submitted = await self._announce("submitted", assignment, user)
        if needs_safety_alert(worksheet.instrument, responses):
            await self.deps.bus.publish(WorksheetSafetyFlagged(submitted))
        return submitted

    async def feedback(self, user: User, assignment_id: str, text: str, field_id: str | None) -> Assignment:
        """assignment:feedback (the therapist): appended to the thread; a submitted assignment becomes reviewed."""
        assignment = await self._as(user, assignment_id, "therapist")
        await self._note(assignment, "feedback", user, text, field_id)
        await self.store.review_if_submitted(assignment.id, self.deps.clock())
        return await self._announce("feedback", assignment, user)

    async def clarify(self, user: User, assignment_id: str, question: str, field_id: str | None) -> Assignment:
        """assignment:clarify (the client): a question, appended to the clarification thread."""
        assignment = await self._as(user, assignment_id, "client")
        await self._note(assignment, "clarifications", user, question, field_id)
        return await self._announce("clarification", assignment, user)

    async def export(self, user: User, assignment_id: str) -> DocumentLink:
        """assignment:export: a PDF of a submitted assignment for its client or therapist, through a one-time link."""
        assignment = await self.deps.live.assignment(user, assignment_id, fresh=True)
        if not assignment.party(user.id):
            raise NotFound("No such assignment")
        if assignment.editable:
            raise PreconditionFailed("Only a submitted worksheet can be exported")
        worksheet = await self.deps.worksheets.store.get(assignment.worksheet_id)
        if worksheet is None:
            raise NotFound("No such worksheet")
        people = await self.deps.users.get_many([assignment.client_id, assignment.therapist_id])
        name = lambda user_id: (people[user_id].name if user_id in people else None) or user_id  # noqa: E731
        content = assignment_pdf(worksheet, assignment, name(assignment.client_id), name(assignment.therapist_id))
        return await self.deps.documents.issue(user.id, f"careline-worksheet-{assignment.id}.pdf", "application/pdf",
                                               content)

    async def _as(self, user: User, assignment_id: str, side: str) -> Assignment:
        """The assignment when the caller is its client (side "client") or therapist; else `not_found`."""
        assignment = await self.deps.live.assignment(user, assignment_id, fresh=True)
        if (assignment.client_id if side == "client" else assignment.therapist_id) != user.id:
            raise NotFound("No such assignment")
        return assignment

    async def _note(self, assignment: Assignment, thread: str, user: User, text: str, field_id: str | None) -> None:
        if field_id is not None:
            fields = await self.deps.worksheets.fields_of(assignment.worksheet_id)
            if all(field.id != field_id for field in fields):
                raise InvalidPayload("No such field", {"fieldId": ["Unknown field."]})
        now = self.deps.clock()
        await self.store.append_note(assignment.id, thread, Note(new_id(), user.id, field_id, text, now), now)

    async def _announce(self, change: AssignmentChange, assignment: Assignment, user: User) -> Assignment:
        """Push the assignment as stored now to both parties and raise the domain event; returns it."""
        shown = await self.deps.announcer.changed(assignment.id) or assignment
        self.deps.live.remember(shown)
        await self.deps.bus.publish(AssignmentChanged(change, shown, user.id))
        return shown


def _check_answers(fields: tuple[Field, ...], responses: dict[str, Any]) -> None:
    """`precondition_failed` when a required answer is missing or an answer does not fit the worksheet."""
    absent = missing(fields, responses)
    if absent:
        raise PreconditionFailed("Some required answers are missing", {"missing": absent})
    unfit = problems(fields, responses)
    if unfit:  # concurrent edits on two processes, each fine alone
        raise PreconditionFailed("Some answers do not fit the worksheet", {"fields": unfit})
