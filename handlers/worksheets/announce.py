"""Telling both parties that an assignment changed (`assignment:updated`)."""
from __future__ import annotations

from handlers.publisher import Publisher
from stores.worksheets.assignments import Assignment, AssignmentStore

NAMESPACE = "/worksheets"


class Announcer:
    """Pushes the current assignment to its client and therapist."""

    def __init__(self, store: AssignmentStore, publisher: Publisher) -> None:
        self.store = store
        self.publisher = publisher

    async def changed(self, assignment_id: str) -> Assignment | None:
        """Read the assignment as stored now and push it to both parties."""
        assignment = await self.store.get(assignment_id)
        if assignment is not None:
            await self.push(assignment)
        return assignment

    async def push(self, assignment: Assignment) -> None:
        """Push `assignment:updated` to both parties."""
        for user_id in (assignment.client_id, assignment.therapist_id):
            await self.publisher.to_user(NAMESPACE, user_id, "assignment:updated", assignment)
