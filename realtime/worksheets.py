"""The /worksheets namespace (CONTRACT §5): worksheets, assignments, and their live Yjs documents."""
from __future__ import annotations

from typing import Any

from handlers.auth import User
from handlers.feature import Shared
from handlers.metrics import Metrics
from handlers.worksheets.feature import WorksheetsFeature
from handlers.worksheets.live import doc_room
from realtime.base import BaseNamespace, request
from realtime.schemas.common import DocumentLinkOut
from realtime.schemas.worksheets import (
    AnalyticsOut,
    Assign,
    AssignmentOut,
    AssignmentPageOut,
    AssignmentRef,
    AwarenessOut,
    AwarenessUpdate,
    Clarify,
    CreateWorksheet,
    DocSync,
    DocUpdate,
    DocUpdatedOut,
    DraftSave,
    DraftSavedOut,
    Feedback,
    ListAssignments,
    ListWorksheets,
    MissingOut,
    OpenedOut,
    WorksheetOut,
    WorksheetPageOut,
    WorksheetRef,
)

THERAPIST = ("therapist",)
CLIENT = ("client",)
Payload = dict[str, Any]
DOC_PREFIX = doc_room("")


class WorksheetsNamespace(BaseNamespace[WorksheetsFeature]):
    """Thin transport over the worksheets feature's handlers."""

    path = "/worksheets"
    emits = {"assignment:updated": AssignmentOut, "doc:updated": DocUpdatedOut, "awareness:updated": AwarenessOut}

    def __init__(self, handler: WorksheetsFeature, shared: Shared, metrics: Metrics) -> None:
        super().__init__(handler, shared, metrics)
        handler.live.deliver = self.deliver_update

    async def deliver_update(self, assignment_id: str, update: str, skip_sid: str) -> None:
        """`doc:updated` to this process's sockets in the document's room but `skip_sid` (the sender).

        Only here: another process's sockets get the update from that process, which received it through the
        document relay (one message for its held copy and its sockets). Built as the wire object directly
        (DocUpdatedOut's shape): this runs once per accepted update and process."""
        room = doc_room(assignment_id)
        if room not in self.server.manager.rooms.get(self.namespace, {}):
            return
        await self.emit("doc:updated", {"assignmentId": assignment_id, "update": update}, room=room,
                        skip_sid=skip_sid or None, ignore_queue=True)

    async def on_user_disconnected(self, sid: str, user: User) -> None:
        """Clear the user's awareness in the documents this socket had open (if it was their last socket there)."""
        opened = [room[len(DOC_PREFIX):] for room in self.rooms(sid) if room.startswith(DOC_PREFIX)]
        await self.handler.live.left(user, opened)

    @request("worksheet:create", CreateWorksheet, ack=WorksheetOut, rate=(30, 2.0), roles=THERAPIST,
             idempotency="handler")
    async def create_worksheet(self, sid: str, user: User, payload: Payload) -> Any:
        """Create a worksheet (fields, or a built-in instrument)."""
        return await self.handler.worksheets.create(user, payload["title"], payload["description"],
                                                    payload["fields_"], payload["instrument"],
                                                    payload["request_id"])

    @request("worksheet:list", ListWorksheets, ack=WorksheetPageOut, roles=THERAPIST)
    async def list_worksheets(self, sid: str, user: User, payload: Payload) -> Any:
        """The caller's own worksheets."""
        return await self.handler.worksheets.page(user, **payload)

    @request("worksheet:get", WorksheetRef, ack=WorksheetOut)
    async def get_worksheet(self, sid: str, user: User, payload: Payload) -> Any:
        """One of the caller's worksheets, or the worksheet of an assignment of theirs."""
        return await self.handler.worksheets.visible(user, **payload)

    @request("worksheet:archive", WorksheetRef, ack=WorksheetOut, roles=THERAPIST)
    async def archive_worksheet(self, sid: str, user: User, payload: Payload) -> Any:
        """Archive one of the caller's worksheets (no new assignments)."""
        return await self.handler.worksheets.archive(user, **payload)

    @request("worksheet:analytics", WorksheetRef, ack=AnalyticsOut, rate=(10, 1.0), roles=THERAPIST)
    async def analytics(self, sid: str, user: User, payload: Payload) -> Any:
        """Completion and scores of one of the caller's worksheets."""
        return await self.handler.worksheets.analytics(user, **payload)

    @request("worksheet:assign", Assign, ack=AssignmentOut, rate=(20, 2.0), roles=THERAPIST, idempotency="handler")
    async def assign(self, sid: str, user: User, payload: Payload) -> Any:
        """Assign a worksheet to one of the caller's clients."""
        return await self.handler.assignments.assign(user, **payload)

    @request("assignment:list", ListAssignments, ack=AssignmentPageOut)
    async def list_assignments(self, sid: str, user: User, payload: Payload) -> Any:
        """The caller's assignments (as client or as therapist)."""
        return await self.handler.assignments.page(user, **payload)

    @request("assignment:get", AssignmentRef, ack=AssignmentOut)
    async def get_assignment(self, sid: str, user: User, payload: Payload) -> Any:
        """One of the caller's assignments."""
        return await self.handler.assignments.get(user, **payload)

    @request("assignment:open", AssignmentRef, ack=OpenedOut, rate=(20, 2.0))
    async def open_assignment(self, sid: str, user: User, payload: Payload) -> Any:
        """The whole document; the socket joins its room."""
        return await self.handler.live.open(user, sid, **payload)

    @request("doc:update", DocUpdate, rate=(100, 40.0))
    async def update_doc(self, sid: str, user: User, payload: Payload) -> Any:
        """Apply, store and relay a Yjs update."""
        return await self.handler.live.update(user, sid, **payload)

    @request("doc:sync", DocSync, ack=MissingOut, rate=(20, 5.0))
    async def sync_doc(self, sid: str, user: User, payload: Payload) -> Any:
        """What the caller's state vector is missing."""
        return await self.handler.live.sync(user, **payload)

    @request("awareness:update", AwarenessUpdate, rate=(100, 40.0))
    async def update_awareness(self, sid: str, user: User, payload: Payload) -> Any:
        """Relay the caller's presence in a document."""
        return await self.handler.live.awareness(user, sid, **payload)

    @request("draft:save", DraftSave, ack=DraftSavedOut, rate=(20, 5.0))
    async def save_draft(self, sid: str, user: User, payload: Payload) -> Any:
        """Write plain answers into the document."""
        return await self.handler.live.draft(user, sid, **payload)

    @request("assignment:export", AssignmentRef, ack=DocumentLinkOut, rate=(10, 1.0))
    async def export_assignment(self, sid: str, user: User, payload: Payload) -> Any:
        """A PDF of a submitted worksheet (its client or therapist), downloadable once within 5 minutes."""
        return await self.handler.assignments.export(user, payload["assignment_id"])

    @request("assignment:submit", AssignmentRef, ack=AssignmentOut, rate=(10, 1.0), roles=CLIENT)
    async def submit(self, sid: str, user: User, payload: Payload) -> Any:
        """Submit: answers locked and scored."""
        return await self.handler.assignments.submit(user, **payload)

    @request("assignment:feedback", Feedback, ack=AssignmentOut, rate=(20, 2.0), roles=THERAPIST)
    async def feedback(self, sid: str, user: User, payload: Payload) -> Any:
        """Give feedback (optionally on one field)."""
        return await self.handler.assignments.feedback(user, **payload)

    @request("assignment:clarify", Clarify, ack=AssignmentOut, rate=(20, 2.0), roles=CLIENT)
    async def clarify(self, sid: str, user: User, payload: Payload) -> Any:
        """Ask the therapist a question (optionally about one field)."""
        return await self.handler.assignments.clarify(user, **payload)
