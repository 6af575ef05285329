"""One wire format: every time the server writes is ISO 8601 UTC with milliseconds and `Z`."""
from __future__ import annotations

import importlib
import pkgutil
import re
from datetime import datetime, timedelta, timezone

from marshmallow import Schema, fields

import realtime.schemas
from clock import iso
from realtime.schemas.common import OutputSchema, UtcDateTime

WIRE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def output_schemas() -> list[type[Schema]]:
    """Every output schema of every namespace."""
    for module in pkgutil.iter_modules(realtime.schemas.__path__, "realtime.schemas."):
        importlib.import_module(module.name)
    found, queue = [], list(OutputSchema.__subclasses__())
    while queue:
        cls = queue.pop()
        found.append(cls)
        queue.extend(cls.__subclasses__())
    return found


def test_times_have_one_shape_whatever_their_offset_or_precision() -> None:
    samples = [datetime(2026, 3, 2, 14, 0, tzinfo=timezone.utc),
               datetime(2026, 3, 2, 9, 0, 0, 123456, tzinfo=timezone(timedelta(hours=-5))),
               datetime(2026, 3, 2, 14, 0)]  # naive: taken as UTC
    written = [iso(sample) for sample in samples]
    assert written == ["2026-03-02T14:00:00.000Z", "2026-03-02T14:00:00.123Z", "2026-03-02T14:00:00.000Z"]
    assert all(WIRE_TIME.match(text) for text in written)


def test_no_output_schema_writes_a_time_any_other_way() -> None:
    schemas = output_schemas()
    assert len(schemas) > 30
    other_time_fields = (fields.DateTime, fields.Date, fields.Time, fields.TimeDelta, fields.AwareDateTime,
                         fields.NaiveDateTime)
    offenders = [f"{schema.__name__}.{name}" for schema in schemas for name, field in schema().fields.items()
                 if isinstance(field, other_time_fields)]
    assert offenders == []
    times = [f"{schema.__name__}.{name}" for schema in schemas for name, field in schema().fields.items()
             if isinstance(field, UtcDateTime)]
    assert "MessageOut.created_at" in times and "BookingOut.start" in times and "NotificationOut.created_at" in times
