"""Request payloads and acks of the job requests on /notifications (admin): `job:list`, `job:retry`."""
from __future__ import annotations

from handlers.queues import DEFAULT_STATE, JOB_STATES, QUEUES
from realtime.schemas.common import Id, OutputSchema, Pagination, RequestSchema, UtcDateTime, fields, page_of, validate

QUEUE_NAMES = list(QUEUES)


def Queue() -> fields.String:  # noqa: N802 - reads like a field type
    """A queue's name (one of QUEUE_NAMES; another is `not_found`, like an unknown job)."""
    return fields.String(required=True, validate=validate.Length(1, 64))


class ListJobs(Pagination):
    """`job:list {queue, state?: "failed" | "due", limit?, cursor?}` (admin): a queue's jobs by id."""

    queue = Queue()
    state = fields.String(load_default=DEFAULT_STATE, validate=validate.OneOf(JOB_STATES))


class RetryJob(RequestSchema):
    """`job:retry {queue, jobId}` (admin): queue a failed job again, tries reset, due now."""

    queue = Queue()
    job_id = Id(required=True)


class JobOut(OutputSchema):
    """A background job: ids, state, tries, the short reason of its last failure, and times; never content."""

    id = fields.String(required=True)
    queue = fields.String(required=True, validate=validate.OneOf(QUEUE_NAMES))
    state = fields.String(required=True, validate=validate.OneOf(JOB_STATES))
    tries = fields.Integer(required=True)
    last_error = fields.String(allow_none=True, required=True)
    due_at = UtcDateTime(allow_none=True, required=True)
    created_at = UtcDateTime(allow_none=True, required=True)
    ended_at = UtcDateTime(allow_none=True, required=True)


JobPageOut = page_of(JobOut, "JobPageOut")
