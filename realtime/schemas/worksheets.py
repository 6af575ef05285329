"""Request payloads and wire shapes of /worksheets."""
from __future__ import annotations

from typing import Any

import orjson
from marshmallow import post_dump, validates_schema

from handlers.worksheets.instruments import INSTRUMENTS
from realtime.schemas.common import (
    ID_LENGTH,
    Id,
    OutputSchema,
    Pagination,
    RequestId,
    RequestSchema,
    UtcDateTime,
    ValidationError,
    fields,
    page_of,
    validate,
)

FIELD_TYPES = ("text", "choice", "multi", "scale", "checkbox")
STATUSES = ("assigned", "in_progress", "submitted", "reviewed")
FIELD_ID = validate.Regexp(r"^[A-Za-z0-9_-]{1,64}$", error="1-64 letters, digits, _ or -.")
MAX_UPDATE_BYTES = 48 * 1024  # one Yjs update, decoded
MAX_AWARENESS_BYTES = 4 * 1024  # one awareness state, as JSON
MAX_DRAFT_FIELDS = 200


def _b64_length(decoded: int) -> int:
    return (decoded + 2) // 3 * 4


_UPDATE_TEXT = _b64_length(MAX_UPDATE_BYTES)  # the longest `update` text


class FieldIn(RequestSchema):
    """`{id, type, label, required?, options?, min?, max?}`."""

    id = fields.String(required=True, validate=FIELD_ID)
    type = fields.String(required=True, validate=validate.OneOf(FIELD_TYPES))
    label = fields.String(required=True, validate=validate.Length(1, 500))
    required = fields.Boolean(load_default=False)
    options = fields.List(fields.String(validate=validate.Length(1, 200)), load_default=None,
                          validate=validate.Length(1, 50))
    min = fields.Integer(load_default=None, strict=True, validate=validate.Range(-1000, 1000))
    max = fields.Integer(load_default=None, strict=True, validate=validate.Range(-1000, 1000))

    @validates_schema
    def _shape(self, data: dict[str, Any], **kwargs: Any) -> None:
        kind, options = data.get("type"), data.get("options")
        if kind in ("choice", "multi"):
            if not options:
                raise ValidationError("Choice and multi fields need options.", "options")
            if len(set(options)) != len(options):
                raise ValidationError("Options must be distinct.", "options")
        if kind == "scale":
            low, high = data.get("min"), data.get("max")
            if low is None or high is None or low >= high:
                raise ValidationError("A scale needs min < max.", "max")
            if options is not None and len(options) != high - low + 1:
                raise ValidationError("A scale's options label each point from min to max.", "options")
        elif data.get("min") is not None or data.get("max") is not None:
            raise ValidationError("Only a scale has min and max.", "min")
        if kind in ("text", "checkbox") and options is not None:
            raise ValidationError("This field type has no options.", "options")


class CreateWorksheet(RequestSchema):
    """`worksheet:create {title, description?, fields, instrument?, requestId}` (an instrument brings its fields)."""

    title = fields.String(load_default=None, validate=validate.Length(1, 200))
    description = fields.String(load_default=None, validate=validate.Length(max=2000))
    fields_ = fields.List(fields.Nested(FieldIn), data_key="fields", load_default=list,
                          validate=validate.Length(max=100))
    instrument = fields.String(load_default=None, validate=validate.OneOf(sorted(INSTRUMENTS)))
    request_id = RequestId(required=True)

    @validates_schema
    def _whole(self, data: dict[str, Any], **kwargs: Any) -> None:
        ids = [each["id"] for each in data.get("fields_", [])]
        if len(set(ids)) != len(ids):
            raise ValidationError("Field ids must be unique.", "fields")
        if data.get("instrument"):
            if ids:
                raise ValidationError("An instrument brings its own fields.", "fields")
        else:
            if not ids:
                raise ValidationError("A worksheet needs at least one field.", "fields")
            if not data.get("title"):
                raise ValidationError("Missing data for required field.", "title")


class ListWorksheets(Pagination):
    """`worksheet:list {includeArchived?, limit?, cursor?}`."""

    include_archived = fields.Boolean(load_default=False)


class WorksheetRef(RequestSchema):
    """`{worksheetId}`."""

    worksheet_id = Id(required=True)


class Assign(WorksheetRef):
    """`worksheet:assign {worksheetId, clientId, dueAt?, requestId}`."""

    client_id = Id(required=True)
    due_at = UtcDateTime(load_default=None)
    request_id = RequestId(required=True)


class ListAssignments(Pagination):
    """`assignment:list {status?, limit?, cursor?}`."""

    status = fields.String(load_default=None, validate=validate.OneOf(STATUSES))


class AssignmentRef(RequestSchema):
    """`{assignmentId}`."""

    assignment_id = Id(required=True)


class DocUpdate(AssignmentRef):
    """`doc:update {assignmentId, update}`: a Yjs update (v1), base64."""

    update = fields.String(required=True, validate=validate.Length(4, _UPDATE_TEXT))

    def quick_load(self, raw: dict[str, Any]) -> dict[str, Any] | None:
        """A well-formed update, checked by hand (editors send thousands a second); anything else, valid or not,
        goes through `load`."""
        if len(raw) != 2:
            return None
        assignment_id, update = raw.get("assignmentId"), raw.get("update")
        if (type(assignment_id) is str and 0 < len(assignment_id) <= ID_LENGTH and type(update) is str
                and 4 <= len(update) <= _UPDATE_TEXT):
            return {"assignment_id": assignment_id, "update": update}
        return None


class DocSync(AssignmentRef):
    """`doc:sync {assignmentId, stateVector}`: the caller's Yjs state vector, base64."""

    state_vector = fields.String(required=True, validate=validate.Length(max=16_384))


def _small_json(value: Any) -> None:
    if len(orjson.dumps(value)) > MAX_AWARENESS_BYTES:
        raise ValidationError(f"At most {MAX_AWARENESS_BYTES} bytes as JSON.")


class AwarenessUpdate(AssignmentRef):
    """`awareness:update {assignmentId, state}`: the caller's presence (cursor, selection, name)."""

    state = fields.Dict(keys=fields.String(validate=validate.Length(1, 64)), required=True, validate=_small_json)


def _bounded_draft(value: dict[str, Any]) -> None:
    if len(value) > MAX_DRAFT_FIELDS:
        raise ValidationError(f"At most {MAX_DRAFT_FIELDS} fields.")


class DraftSave(AssignmentRef):
    """`draft:save {assignmentId, responses: {fieldId: value}}` (null clears an answer)."""

    responses = fields.Dict(keys=fields.String(validate=validate.Length(1, 64)),
                            values=fields.Raw(allow_none=True), required=True, validate=_bounded_draft)


class Feedback(AssignmentRef):
    """`assignment:feedback {assignmentId, text, fieldId?}`."""

    text = fields.String(required=True, validate=validate.Length(1, 5000))
    field_id = fields.String(load_default=None, validate=FIELD_ID)


class Clarify(AssignmentRef):
    """`assignment:clarify {assignmentId, question, fieldId?}`."""

    question = fields.String(required=True, validate=validate.Length(1, 5000))
    field_id = fields.String(load_default=None, validate=FIELD_ID)


# -- what the server sends ---------------------------------------------------------------------------

class FieldOut(OutputSchema):
    """`{id, type, label, required, options?, min?, max?}`."""

    id = fields.String(required=True)
    type = fields.String(required=True, validate=validate.OneOf(FIELD_TYPES))
    label = fields.String(required=True)
    required = fields.Boolean(required=True)
    options = fields.List(fields.String())
    min = fields.Integer()
    max = fields.Integer()

    @post_dump
    def _drop_unset(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {key: value for key, value in data.items() if value is not None}


class WorksheetOut(OutputSchema):
    """`Worksheet`: a template (its fields fixed; an instrument's are the standard items)."""

    id = fields.String(required=True)
    therapist_id = fields.String(required=True)
    title = fields.String(required=True)
    description = fields.String(allow_none=True, required=True)
    fields_ = fields.List(fields.Nested(FieldOut), attribute="fields", data_key="fields", required=True)
    instrument = fields.String(allow_none=True, required=True)
    archived_at = UtcDateTime(allow_none=True, required=True)
    created_at = UtcDateTime(required=True)


WorksheetPageOut = page_of(WorksheetOut, "WorksheetPageOut")


class NoteOut(OutputSchema):
    """One feedback or clarification entry: `{id, authorId, fieldId, text, createdAt}`."""

    id = fields.String(required=True)
    author_id = fields.String(required=True)
    field_id = fields.String(allow_none=True, required=True)
    text = fields.String(required=True)
    created_at = UtcDateTime(required=True)


class ScoreOut(OutputSchema):
    """`{instrument, total, max, severity}`."""

    instrument = fields.String(required=True)
    total = fields.Integer(required=True)
    max = fields.Integer(required=True)
    severity = fields.String(required=True)


class AssignmentOut(OutputSchema):
    """`Assignment` (CONTRACT §5); `responses` are the answers frozen at submission."""

    id = fields.String(required=True)
    worksheet_id = fields.String(required=True)
    client_id = fields.String(required=True)
    therapist_id = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    due_at = UtcDateTime(allow_none=True, required=True)
    progress = fields.Float(required=True)
    responses = fields.Dict(allow_none=True, required=True)
    score = fields.Nested(ScoreOut, allow_none=True, required=True)
    feedback = fields.List(fields.Nested(NoteOut), required=True)
    clarifications = fields.List(fields.Nested(NoteOut), required=True)
    assigned_at = UtcDateTime(required=True)
    submitted_at = UtcDateTime(allow_none=True, required=True)
    updated_at = UtcDateTime(required=True)


AssignmentPageOut = page_of(AssignmentOut, "AssignmentPageOut")


class OpenedOut(OutputSchema):
    """The ack of `assignment:open`: `{assignment, update, stateVector}` (the Yjs document, base64)."""

    assignment = fields.Nested(AssignmentOut, required=True)
    update = fields.String(required=True)
    state_vector = fields.String(required=True)


class MissingOut(OutputSchema):
    """The ack of `doc:sync`: `{update}` (what the caller lacks, base64)."""

    update = fields.String(required=True)


class DocUpdatedOut(OutputSchema):
    """`doc:updated {assignmentId, update}`: another editor's accepted Yjs update (base64)."""

    assignment_id = fields.String(required=True)
    update = fields.String(required=True)


class AwarenessOut(OutputSchema):
    """`awareness:updated {assignmentId, userId, state}`: presence in a document (state null: they left)."""

    assignment_id = fields.String(required=True)
    user_id = fields.String(required=True)
    state = fields.Dict(allow_none=True, required=True)


class DraftSavedOut(OutputSchema):
    """The ack of `draft:save`: `{savedAt, progress}`."""

    saved_at = UtcDateTime(required=True)
    progress = fields.Float(required=True)


class ScorePointOut(OutputSchema):
    """`{assignmentId, submittedAt, total, severity}`."""

    assignment_id = fields.String(required=True)
    submitted_at = UtcDateTime(required=True)
    total = fields.Integer(required=True)
    severity = fields.String(required=True)


class ClientScoresOut(OutputSchema):
    """`{clientId, points}`: one client's scores, oldest first."""

    client_id = fields.String(required=True)
    points = fields.List(fields.Nested(ScorePointOut), required=True)


class AnalyticsOut(OutputSchema):
    """The ack of `worksheet:analytics`: counts by current status, on-time rate, median time to submit, scores."""

    worksheet_id = fields.String(required=True)
    assigned = fields.Integer(required=True)
    in_progress = fields.Integer(required=True)
    submitted = fields.Integer(required=True)
    reviewed = fields.Integer(required=True)
    on_time_rate = fields.Float(allow_none=True, required=True)
    median_seconds_to_submit = fields.Float(allow_none=True, required=True)
    scores = fields.List(fields.Nested(ClientScoresOut), required=True)
