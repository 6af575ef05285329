"""Every background queue seen as jobs, for monitoring: how many are due, how late the oldest is, which failed.

A queue is a collection whose documents are its jobs (`QueueSpec`): a filter of the jobs due now, the field
saying when each was due, and, for queues that give jobs up, the filter of the failed ones and how a failed one
is queued again. Every filter here rides an index its owning store creates (named beside each spec), so
counting the due jobs and finding the earliest (one aggregation) costs the due (or failed) jobs, never the
whole collection (docs/storage.md); counts stop at COUNT_CAP.

The owning stores keep their own queries; this module only reads their documents, plus the one write of
`retry`, which the email outbox defines (a failed email queued again, tries reset, due now).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from stores.mongo import Database, Doc, due_by

COUNT_CAP = 100_000  # a depth beyond this is shown as this (counting costs one index entry per job)
DUE, FAILED = "due", "failed"
STATES = (DUE, FAILED)


@dataclass(frozen=True)
class QueueSpec:
    """How one queue's jobs are stored (`due(now)` must match an index; `due_field` is in the documents)."""

    name: str
    collection: str
    due: Callable[[datetime], Doc]
    due_field: str
    tries_field: str | None = None
    failed: Doc | None = None  # None: the queue never gives a job up (it retries with backoff)
    retry: Callable[[datetime], Doc] | None = None  # the update that queues a failed job again
    created_field: str | None = None


@dataclass(frozen=True)
class QueueDepth:
    """One queue now: jobs due, when the earliest of them was due, jobs given up (None: never gives up)."""

    due: int
    oldest_due_at: datetime | None
    failed: int | None


@dataclass(frozen=True)
class Job:
    """One job as an admin may see it: ids, state, tries, the short reason of the last failure, times."""

    id: str
    queue: str
    state: str
    tries: int
    last_error: str | None
    due_at: datetime | None
    created_at: datetime | None
    ended_at: datetime | None


def _email_retry(now: datetime) -> Doc:
    return {"$set": {"state": "queued", "dueAt": now, "tries": 0}, "$unset": {"endedAt": "", "lastError": ""}}


#: every queue of careline, by name; `lag` (QueueProbe) turns "now" into the cut-off of queues whose jobs
#: become due some time after their `due_field` (orphaned uploads, abandoned refund claims)
SPECS: dict[str, QueueSpec] = {spec.name: spec for spec in (
    # stores/notifications/email.py: (state, dueAt)
    QueueSpec("emails", "email_outbox", lambda now: {"state": "queued", "dueAt": due_by(now)}, "dueAt",
              tries_field="tries", failed={"state": "failed"}, retry=_email_retry, created_field="createdAt"),
    # stores/notifications/store.py: (pushAfter); pushes themselves are sent at once, in the process
    QueueSpec("web-pushes", "notification_held_pushes", lambda now: {"pushAfter": due_by(now)}, "pushAfter"),
    # stores/booking/reminders.py: (sent, claimableAt)
    QueueSpec("booking-reminders", "booking_reminders", lambda now: {"sent": False, "claimableAt": due_by(now)},
              "claimableAt", tries_field="attempts"),
    # stores/booking/bookings.py: (status, expiresAt)
    QueueSpec("booking-expiries", "bookings", lambda now: {"status": "pending", "expiresAt": due_by(now)},
              "expiresAt"),
    # stores/meetings/meetings.py: (dueAt) - no-shows, host absent, auto-end
    QueueSpec("meeting-outcomes", "meetings", lambda now: {"dueAt": due_by(now)}, "dueAt"),
    # stores/worksheets/reminders.py: (sent, claimableAt)
    QueueSpec("worksheet-reminders", "worksheet_reminders",
              lambda now: {"sent": False, "claimableAt": due_by(now)}, "claimableAt", tries_field="attempts"),
    # stores/chat/uploads.py: (conversationIds, createdAt) - uploads never sent, swept after UPLOAD_ORPHAN_HOURS
    QueueSpec("upload-orphans", "uploads", lambda cutoff: {"conversationIds": [], "createdAt": {"$lt": cutoff}},
              "createdAt"),
    # stores/billing/inbox.py: (applied, nextAt) - Stripe events not applied yet
    QueueSpec("stripe-webhooks", "billing_webhook_events", lambda now: {"applied": False, "nextAt": due_by(now)},
              "nextAt", tries_field="attempts", created_field="receivedAt"),
    # stores/billing/ledger.py: (refundId, at) - refunds a dead process claimed but never confirmed
    QueueSpec("billing-refunds", "billing_refund_claims", lambda cutoff: {"refundId": None, "at": {"$lt": cutoff}},
              "at"),
)}


class QueueProbe:
    """Depth, oldest due job, failed jobs of one queue; the failed jobs' list and their retry."""

    def __init__(self, db: Database, spec: QueueSpec, lag: timedelta = timedelta(0)) -> None:
        self.spec, self.lag = spec, lag
        self._jobs = db[spec.collection]

    async def depth(self, now: datetime) -> QueueDepth:
        """How many jobs are due, since when the earliest is due, how many were given up."""
        due, oldest = await self._count(self.spec.due(now - self.lag), self.spec.due_field)
        failed = None
        if self.spec.failed is not None:
            failed, _ = await self._count(self.spec.failed, None)
        return QueueDepth(due, oldest + self.lag if oldest else None, failed)

    async def _count(self, query: Doc, earliest: str | None) -> tuple[int, datetime | None]:
        """Jobs matching `query` (at most COUNT_CAP) and the earliest `earliest` among them: one pass over the
        query's index range (the leading `$match` rides the index on both MongoDB and SecantusDB)."""
        group: Doc = {"_id": None, "n": {"$sum": 1}}
        if earliest:
            group["earliest"] = {"$min": f"${earliest}"}
        cursor = await self._jobs.aggregate([{"$match": query}, {"$limit": COUNT_CAP}, {"$group": group}])
        found = await cursor.to_list()
        return (int(found[0]["n"]), found[0].get("earliest")) if found else (0, None)

    async def page(self, state: str, now: datetime, after: str | None, limit: int) -> list[Job]:
        """Jobs in `state` (due now, or failed: given up), by id after `after`."""
        query = self.spec.failed if state == FAILED else self.spec.due(now - self.lag)
        if query is None:
            return []
        docs = [doc async for doc in self._jobs.find(query, self._fields())]  # the state's index range
        docs.sort(key=lambda doc: str(doc["_id"]))  # sorted here: SecantusDB would too (docs/storage.md rule 5)
        return [self._job(doc, state) for doc in docs if after is None or str(doc["_id"]) > after][:limit]

    async def exists(self, job_id: str) -> bool:
        """Whether this queue has (or had, if it keeps done jobs) a job of this id."""
        return await self._jobs.find_one({"_id": job_id}, {"_id": 1}) is not None

    async def retry(self, job_id: str, now: datetime) -> bool:
        """Queue a failed job again, tries reset, due now; False when it is not (or no longer) failed."""
        if self.spec.failed is None or self.spec.retry is None:
            return False
        result = await self._jobs.update_one({"_id": job_id, **self.spec.failed}, self.spec.retry(now))
        return result.modified_count == 1

    def _fields(self) -> Doc:
        names = [self.spec.due_field, self.spec.tries_field, self.spec.created_field, "lastError", "endedAt"]
        return {name: 1 for name in names if name}

    def _job(self, doc: Doc, state: str) -> Job:
        spec = self.spec
        error = doc.get("lastError")
        return Job(id=str(doc["_id"]), queue=spec.name, state=state,
                   tries=int(doc.get(spec.tries_field, 0) or 0) if spec.tries_field else 0,
                   last_error=str(error)[:80] if error else None, due_at=doc.get(spec.due_field),
                   created_at=doc.get(spec.created_field) if spec.created_field else None,
                   ended_at=doc.get("endedAt"))
