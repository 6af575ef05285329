"""Live documents: open, update, sync, awareness and draft saves on an assignment's Yjs document.

Every write is tried on a copy of the document first (the shadow copy, see documents.LiveDocument): the
answers must still fit the worksheet. Then it is appended to the update log (acknowledged only once durable),
applied, relayed to the document room on every process and to the other processes' copies of the document.
Compaction folds the log into a snapshot in the background. A submission freezes the document on every process
before it reads the answers (see `frozen`).
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from pycrdt import Doc

from clock import Clock
from errors import InvalidPayload, NotFound, PreconditionFailed, Unavailable
from handlers.auth import User
from handlers.loop_lag import LoopLag
from handlers.publisher import Publisher, room_group
from handlers.worksheets.announce import NAMESPACE, Announcer
from handlers.worksheets.compaction import Compactor
from handlers.worksheets.deltas import AwarenessUpdated, DraftSaved, MissingUpdate, OpenedDocument
from handlers.worksheets.documents import (
    BadUpdate,
    DocumentCache,
    LiveDocument,
    apply,
    new_document,
    responses_of,
    set_answers,
)
from handlers.worksheets.freeze import Freezes
from handlers.worksheets.responses import plain, problems, progress
from handlers.worksheets.worksheets import WorksheetHandler
from stores.group_commit import Backlogged
from stores.sockets import SocketRegistry
from stores.worksheets.assignments import Assignment, AssignmentStore
from stores.worksheets.documents import DocumentStore
from stores.worksheets.relay import Change, DocRelay
from stores.worksheets.worksheets import Field

log = logging.getLogger("careline.worksheets")

LOCKED = "This assignment was submitted: its answers can no longer change"
FROZEN = "This assignment is being submitted: its answers cannot change now"
BUSY = "The document store is busy, try again"
OVERLOADED = "The server is too busy for edits right now, try again"
RECORDERS = 8  # status and progress writes of Yjs edits one process runs at once
FREEZE_CONFIRM_SECONDS = 2.0  # how long a submission waits for every process to confirm its freeze
FREEZE_SECONDS = 5.0  # how long a freeze holds when neither the unfreeze nor the lock that ends it is heard
LOCKED_HELD = 10_000  # submitted documents a process remembers as locked (older ones: the stored status says)
PROGRESS_DELAY = 1.0  # seconds a Yjs edit's progress check waits, taking in the document's other edits meanwhile

#: hands an accepted update (assignment id, base64 update, socket to skip) to this process's sockets in the
#: document's room; installed by the /worksheets namespace (a process without sockets has nobody to tell)
RoomDelivery = Callable[[str, str, str], Awaitable[None]]


async def _nobody(assignment_id: str, update: str, skip_sid: str) -> None:
    """No sockets in this process."""


def doc_room(assignment_id: str) -> str:
    """The room of an assignment's document (sockets that opened it)."""
    return f"doc:{assignment_id}"


def _checked(fields: tuple[Field, ...], trial: Doc, name: str, to_check: bool = False) -> dict[str, Any]:
    """The responses of a tried document; `invalid_payload` (details under `name`) when they do not fit.
    `to_check`: only checked (texts that fit by their length are not read: see responses_of)."""
    try:
        responses = responses_of(trial, to_check)
    except BadUpdate as error:
        raise InvalidPayload(str(error), {name: [str(error)]}) from None
    found = problems(fields, responses)
    if found:
        raise InvalidPayload("The responses do not fit the worksheet", {name: found})
    return responses


def b64(data: bytes) -> str:
    """Bytes as the wire carries them."""
    return base64.b64encode(data).decode()


def unb64(text: str, field: str) -> bytes:
    """Base64 from the wire; `invalid_payload` naming `field` when it is not."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidPayload("Not valid base64", {field: ["Not valid base64."]}) from None


@dataclass(frozen=True)
class LiveSettings:
    """How often documents are compacted, how many one process holds, and the event-loop lag (seconds; 0: never)
    above which edits are refused instead of answered late."""

    compact_every: int
    compact_idle: timedelta
    documents_held: int
    shed_lag: float = 0.0


@dataclass(frozen=True)
class LiveDeps:
    """What the live handler works with."""

    documents: DocumentStore
    assignments: AssignmentStore
    worksheets: WorksheetHandler
    announcer: Announcer
    relay: DocRelay
    publisher: Publisher
    sockets: SocketRegistry
    clock: Clock


class LiveHandler:
    """assignment:open, doc:update, doc:sync, awareness:update, draft:save; relayed changes; compaction."""

    def __init__(self, deps: LiveDeps, settings: LiveSettings) -> None:
        self.deps = deps
        self.settings = settings
        self.cache = DocumentCache(settings.documents_held)
        self._known: dict[str, Assignment] = {}  # assignments of held documents (parties never change)
        self._background: set[asyncio.Task[None]] = set()
        self.compactor = Compactor(deps.documents, deps.clock, settings.compact_every)
        self._recorders = asyncio.Semaphore(RECORDERS)
        self._locked: OrderedDict[str, None] = OrderedDict()  # submitted, as this process heard
        self._progress_due: set[str] = set()  # documents whose progress is checked soon
        self.freezes = Freezes()  # documents a submission under way froze; writes under way
        self._confirmations: dict[str, _Confirmations] = {}  # freeze nonce -> confirmations received
        self.deliver: RoomDelivery = _nobody
        self.lag = LoopLag()  # started by the feature (sampling needs the running loop)

    # -- access ----------------------------------------------------------------------------------

    async def assignment(self, user: User, assignment_id: str, fresh: bool = False) -> Assignment:
        """The assignment if the caller is its client or therapist; `not_found` for everyone else."""
        known = None if fresh else self._known.get(assignment_id)
        if known is None:
            known = await self.deps.assignments.get(assignment_id)
            if known is None:
                raise NotFound("No such assignment")
            self.remember(known)
        if not known.party(user.id):
            raise NotFound("No such assignment")
        return known

    def remember(self, assignment: Assignment) -> None:
        """Keep what this process knows of an assignment up to date."""
        if len(self._known) >= self.settings.documents_held * 2:
            self._known.clear()
        self._known[assignment.id] = assignment

    async def _writable(self, user: User, assignment_id: str) -> Assignment:
        """The assignment if the caller may change it (not submitted, as this process knows: a freeze that ran
        out unended means a submission may have been stored, so the status is read again).

        First of all, a process whose event loop is further behind than `shed_lag` refuses the write at once
        (`unavailable`, nothing tried, stored or relayed): it cannot answer it in time, and taking it on would make
        every other write late too (see handlers/loop_lag.py)."""
        if self.lag.over(self.settings.shed_lag):
            raise Unavailable(OVERLOADED)
        assignment = await self.assignment(user, assignment_id)
        if self.freezes.expired(assignment_id, self.deps.clock()):
            assignment = await self.assignment(user, assignment_id, fresh=True)
        if self.is_locked(assignment):
            raise PreconditionFailed(LOCKED)
        return assignment

    @contextmanager
    def _writing(self, assignment: Assignment) -> Iterator[None]:
        """A write of the document, from its checks to its durable append; refused (`precondition_failed`) before
        it starts when a submission froze the document. Enter it right after `_writable` returns (no await in
        between), so a freeze either refuses the write or waits for it."""
        if self.freezes.frozen(assignment.id, self.deps.clock()):
            raise PreconditionFailed(FROZEN)
        with self.freezes.writing(assignment.id):
            yield

    def is_locked(self, assignment: Assignment) -> bool:
        """Submitted, as this process knows now (its own submissions and the locks other processes sent)."""
        known = self._known.get(assignment.id, assignment)
        return assignment.id in self._locked or not known.editable or not assignment.editable

    def _lock(self, assignment_id: str) -> None:
        self._locked[assignment_id] = None
        while len(self._locked) > LOCKED_HELD:
            self._locked.popitem(last=False)

    # -- loading ---------------------------------------------------------------------------------

    async def _live(self, assignment: Assignment) -> LiveDocument:
        """The held document, loaded from the store the first time."""
        live = self.cache.get(assignment.id)
        if live is None:
            live = self.cache.add(assignment.id)
            try:
                await self._load(live, assignment)
                live.loaded = True
            finally:
                if not live.loaded:
                    self.cache.drop(assignment.id)
                live.ready.set()
        else:
            await live.ready.wait()
            if not live.loaded:  # the load this request waited for failed
                raise Unavailable("The document could not be loaded, try again")
        return live

    async def _load(self, live: LiveDocument, assignment: Assignment) -> None:
        stored = await self.deps.documents.load(assignment.id)
        if stored.snapshot is None and not stored.updates:
            fields = await self.deps.worksheets.fields_of(assignment.worksheet_id)
            initial = new_document(fields).get_update()
            await self.deps.documents.replace_snapshot(assignment.id, initial, 0, self.deps.clock())
            stored = await self.deps.documents.load(assignment.id)  # whoever stored the first snapshot won
        live.apply_stored(([stored.snapshot] if stored.snapshot else []) + list(stored.updates))

    async def _merged(self, assignment: Assignment) -> LiveDocument:
        """The held document with everything stored merged in (what other processes wrote meanwhile)."""
        live = self.cache.get(assignment.id)
        if live is None or not live.ready.is_set():
            return await self._live(assignment)  # a load (this one, or one under way) reads everything stored
        stored = await self.deps.documents.load(assignment.id)
        live.apply_stored(([stored.snapshot] if stored.snapshot else []) + list(stored.updates))
        return live

    async def current_responses(self, assignment: Assignment) -> dict[str, Any]:
        """Everything stored of the document, as plain answers (submission freezes these)."""
        live = await self._merged(assignment)
        try:
            return plain(responses_of(live.doc))
        except BadUpdate:
            return {}

    # -- requests --------------------------------------------------------------------------------

    async def open(self, user: User, sid: str, assignment_id: str) -> OpenedDocument:
        """assignment:open: the whole document and its state vector; the socket joins the document room."""
        assignment = await self.assignment(user, assignment_id, fresh=True)
        live = await self._merged(assignment)
        await self.deps.worksheets.fields_of(assignment.worksheet_id)  # known before the first edit arrives
        await self.deps.publisher.join(NAMESPACE, sid, doc_room(assignment_id), user.id)
        return OpenedDocument(assignment, b64(live.doc.get_update()), b64(live.doc.get_state()))

    async def sync(self, user: User, assignment_id: str, state_vector: str) -> MissingUpdate:
        """doc:sync: what a client with `state_vector` is missing."""
        vector = unb64(state_vector, "stateVector")
        live = await self._merged(await self.assignment(user, assignment_id))
        try:
            return MissingUpdate(b64(live.doc.get_update(vector)))
        except Exception:
            raise InvalidPayload("Not a Yjs state vector", {"stateVector": ["Not a Yjs state vector."]}) from None

    async def update(self, user: User, sid: str, assignment_id: str, update: str) -> None:
        """doc:update: tried on the shadow copy, durably appended, applied and relayed."""
        raw = unb64(update, "update")
        assignment = await self._writable(user, assignment_id)
        with self._writing(assignment):
            live = await self._live(assignment)
            fields = await self.deps.worksheets.fields_of(assignment.worksheet_id)
            self._check_room_to_store()
            try:
                apply(live.shadow, raw)
                _checked(fields, live.shadow, "update", to_check=True)
            except (BadUpdate, InvalidPayload) as error:
                live.reject()
                if isinstance(error, InvalidPayload):
                    raise
                raise InvalidPayload(str(error), {"update": [str(error)]}) from None
            await self._commit(live, assignment, raw, sid, update)
        self._check_progress_soon(assignment, fields)

    async def draft(self, user: User, sid: str, assignment_id: str, responses: dict[str, Any]) -> DraftSaved:
        """draft:save: plain values written into the same document (Yjs editors receive them as an update)."""
        assignment = await self._writable(user, assignment_id)
        with self._writing(assignment):
            live = await self._live(assignment)
            fields = await self.deps.worksheets.fields_of(assignment.worksheet_id)
            self._check_room_to_store()
            before = live.shadow.get_state()
            try:
                set_answers(live.shadow, {field.id: field for field in fields}, responses)
                answers = _checked(fields, live.shadow, "responses")
            except Exception as error:
                live.reject()
                if isinstance(error, InvalidPayload):
                    raise
                raise InvalidPayload("The responses do not fit the worksheet",
                                     {"responses": ["Not a supported value."]}) from None
            change = live.shadow.get_update(before)
            await self._commit(live, assignment, change, sid, b64(change))
        now = self.deps.clock()
        return DraftSaved(now, await self._after_edit(assignment, fields, answers, saved=True))

    async def awareness(self, user: User, sid: str, assignment_id: str, state: dict[str, Any]) -> None:
        """awareness:update: relayed to the document room, never stored."""
        await self._writable(user, assignment_id)
        await self.deps.publisher.to_room(NAMESPACE, doc_room(assignment_id), "awareness:updated",
                                          AwarenessUpdated(assignment_id, user.id, state), skip_sid=sid)

    async def left(self, user: User, assignment_ids: list[str]) -> None:
        """A socket left: for each document whose room the user no longer has a socket in, clear their awareness."""
        for assignment_id in assignment_ids:
            room = doc_room(assignment_id)
            if user.id not in await self.deps.sockets.users(room_group(NAMESPACE, room)):
                await self.deps.publisher.to_room(NAMESPACE, room, "awareness:updated",
                                                  AwarenessUpdated(assignment_id, user.id, None))

    # -- writing ---------------------------------------------------------------------------------

    def _check_room_to_store(self) -> None:
        """`unavailable` before trying a write the update log would refuse anyway (a refusal after the try costs
        a rebuild of the shadow copy, exactly when the process is busiest)."""
        if self.deps.documents.busy:
            raise Unavailable(BUSY)

    async def _commit(self, live: LiveDocument, assignment: Assignment, raw: bytes, sid: str, text: str) -> None:
        """Append durably, apply, relay (to the room's sockets here, and through one relay message to the other
        processes' documents and sockets). `text` is `raw` as base64 (what the room receives).

        Writes of one document are stored concurrently (group-committed with every document's); Yjs merges
        them in any order. A submission waits for the writes under way before it reads the answers (see
        `frozen`), so a write is normally settled before any process hears of the stored submission. Safety net
        for the one case where it is not (a process that did not confirm the freeze in time): a write whose
        append returns after its process heard the submission was stored is refused and its entry deleted, so no
        edit is acknowledged after the submission is."""
        ticket = live.storing(raw)
        try:
            entry = await self.deps.documents.append(assignment.id, raw, self.deps.clock())
        except BaseException as error:
            live.reject(ticket)
            if isinstance(error, Backlogged):
                raise Unavailable(BUSY) from None
            raise
        if self.is_locked(assignment):
            live.reject(ticket)
            await self.deps.documents.discard(assignment.id, entry)
            raise PreconditionFailed(LOCKED)
        live.stored(ticket)
        await self.deps.relay.publish(Change(assignment.id, "update", text, sid))
        await self.deliver(assignment.id, text, sid)
        if self.compactor.appended(entry.entry_id):
            self._spawn(self.compactor.own_round())

    def _check_progress_soon(self, assignment: Assignment, fields: tuple[Field, ...]) -> None:
        """A Yjs edit was stored: its progress is checked in the background, once for every edit of the document
        within PROGRESS_DELAY (reading the answers means reading the texts whole); the first edit of an
        assignment is checked at once (it also moves the status to in_progress)."""
        if assignment.id not in self._progress_due:
            self._progress_due.add(assignment.id)
            self._spawn(self._check_progress(assignment, fields))

    async def _check_progress(self, assignment: Assignment, fields: tuple[Field, ...]) -> None:
        try:
            if self._known.get(assignment.id, assignment).status != "assigned":
                await asyncio.sleep(PROGRESS_DELAY)
        finally:
            self._progress_due.discard(assignment.id)
        live = self.cache.get(assignment.id)
        if live is not None:
            await self._after_edit(assignment, fields, responses_of(live.doc))

    async def _after_edit(self, assignment: Assignment, fields: tuple[Field, ...], responses: dict[str, Any],
                          saved: bool = False) -> float:
        """First edit: assigned -> in_progress; a change of progress is stored and pushed to both parties.

        What this process knows is updated at once, so the edits in flight alongside this one do not repeat
        the writes. A draft save (`saved`) waits for them and always announces its progress; a Yjs update's
        check leaves them to the background too, a few at a time."""
        made = progress(fields, responses)
        known = self._known.get(assignment.id, assignment)
        start, moved = known.status == "assigned", made != known.progress
        if not (start or moved or saved):
            return made
        self.remember(replace(known, status="in_progress" if start else known.status, progress=made))
        record = self._record_edit(assignment.id, start, made if moved else None, saved)
        if saved:
            await record
        else:
            self._spawn(record)
        return made

    async def _record_edit(self, assignment_id: str, start: bool, made: float | None, announce: bool) -> None:
        async with self._recorders:
            now = self.deps.clock()
            changed = start and await self.deps.assignments.start_if_assigned(assignment_id, now)
            if made is not None:
                changed = await self.deps.assignments.set_progress(assignment_id, made, now) or changed
            if changed or announce:
                fresh = await self.deps.announcer.changed(assignment_id)
                if fresh is not None:
                    self.remember(fresh)

    # -- other processes -------------------------------------------------------------------------

    @asynccontextmanager
    async def frozen(self, assignment: Assignment) -> AsyncIterator[None]:
        """Freeze the document for a submission: no write of it starts on any process, and this returns once the
        writes under way settled here and every other process listening confirmed the same of its own (or after
        FREEZE_CONFIRM_SECONDS: a process that does not answer, say cut off from Redis, stops writes once it hears
        the freeze or the lock, or reads the stored status). The stored answers then hold every acknowledged edit.

        Leaving ends the freeze: with `lock` called inside (the submission was stored) every process is told the
        document is locked for good; otherwise it is unfrozen. A process that misses that message stops refusing
        after FREEZE_SECONDS and reads the stored status before its next write."""
        now, nonce = self.deps.clock(), uuid.uuid4().hex
        self.freezes.freeze(assignment.id, nonce, now, now + timedelta(seconds=FREEZE_SECONDS))
        try:
            await self._confirmed_freeze(assignment.id, nonce)
            yield
        finally:
            stored = assignment.id in self._locked
            self.freezes.thaw(assignment.id, None if stored else nonce)
            ending = Change(assignment.id, "lock") if stored else Change(assignment.id, "unfreeze", note=nonce)
            await self.deps.relay.publish_now(ending)

    def still_frozen(self, assignment_id: str) -> bool:
        """Whether this process's freeze of the document still holds (the other processes' end about when it
        does: a submission stored after that might miss an edit they accepted meanwhile)."""
        return self.freezes.frozen(assignment_id, self.deps.clock())

    def lock(self, assignment: Assignment) -> None:
        """The submission of the frozen document was stored: refuse its writes here from now on (the other
        processes hear it when `frozen` ends)."""
        self.remember(assignment)
        self._lock(assignment.id)

    async def _confirmed_freeze(self, assignment_id: str, nonce: str) -> None:
        others = 0
        waiting = self._confirmations[nonce] = _Confirmations()
        try:
            others = await self.deps.relay.publish_now(Change(assignment_id, "freeze", note=nonce))
            await asyncio.wait_for(asyncio.gather(self.freezes.settled(assignment_id), waiting.reach(others)),
                                   FREEZE_CONFIRM_SECONDS)
        except TimeoutError:
            log.warning("%d of the other processes did not confirm the freeze of a document in time",
                        others - waiting.count)
        finally:
            del self._confirmations[nonce]

    async def _confirm_freeze(self, change: Change) -> None:
        await self.freezes.settled(change.assignment_id)
        await self.deps.relay.publish(Change(change.assignment_id, "frozen", note=change.note))

    async def relayed(self, change: Change) -> None:
        """Another process accepted an update (apply it to the held copy, relay it to the room's sockets here),
        froze a document for a submission (start no write of it; confirm once the ones under way settled),
        confirmed a freeze of ours, unfroze a document (its submission failed) or locked it (stored)."""
        if change.kind == "update":
            live = self.cache.get(change.assignment_id)
            if live is not None:
                live.apply_stored([base64.b64decode(change.update)])
            await self.deliver(change.assignment_id, change.update, change.sender)
        elif change.kind == "freeze":
            now = self.deps.clock()
            self.freezes.freeze(change.assignment_id, change.note, now, now + timedelta(seconds=FREEZE_SECONDS))
            self._spawn(self._confirm_freeze(change))  # the listener goes on meanwhile
        elif change.kind == "frozen":
            waiting = self._confirmations.get(change.note)
            if waiting is not None:
                waiting.confirmed()
        elif change.kind == "unfreeze":
            self.freezes.thaw(change.assignment_id, change.note)
        elif change.kind == "lock":
            self._known.pop(change.assignment_id, None)
            self._lock(change.assignment_id)
            self.freezes.thaw(change.assignment_id)

    # -- compaction ------------------------------------------------------------------------------

    async def compact_idle(self) -> int:
        """Fold log entries older than the idle time into their snapshots (handlers/worksheets/compaction.py);
        returns how many entries were folded."""
        return await self.compactor.idle_rounds(self.deps.clock() - self.settings.compact_idle)

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("background work failed: %s", type(task.exception()).__name__)

    async def drain(self) -> None:
        """Wait for background relays and compactions (shutdown, tests)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)


class _Confirmations:
    """Counts the other processes' confirmations of one lock."""

    def __init__(self) -> None:
        self.count = 0
        self._changed = asyncio.Event()

    def confirmed(self) -> None:
        self.count += 1
        self._changed.set()

    async def reach(self, wanted: int) -> None:
        """Until `wanted` confirmations arrived."""
        while self.count < wanted:
            self._changed.clear()
            await self._changed.wait()
