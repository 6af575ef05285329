"""What answers must look like: per field type, the values a worksheet accepts, and how complete they are."""
from __future__ import annotations

from typing import Any

from stores.worksheets.worksheets import Field

MAX_TEXT = 10_000  # characters of one text answer


class SharedText(str):
    """A text answer held in a collaborative Y.Text (only text fields may hold one)."""


class FittingText(SharedText):
    """A shared text whose length alone shows it fits (for checking only: its content was not read, so it must
    not be counted as an answer or stored)."""


class Unsupported:
    """A value of a kind no field accepts (a nested map, say)."""

    def __repr__(self) -> str:
        return "<unsupported>"


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _text_problem(field: Field, value: Any) -> str | None:
    if not isinstance(value, str):
        return "Must be text."
    return f"At most {MAX_TEXT} characters." if len(value) > MAX_TEXT else None


def _choice_problem(field: Field, value: Any) -> str | None:
    if not isinstance(value, str) or isinstance(value, SharedText) or value not in (field.options or ()):
        return "Must be one of the options."
    return None


def _multi_problem(field: Field, value: Any) -> str | None:
    if not isinstance(value, list) or any(isinstance(each, SharedText) or not isinstance(each, str) for each in value):
        return "Must be a list of options."
    if not set(value) <= set(field.options or ()) or len(set(value)) != len(value):
        return "Must be distinct options."
    return None


def _scale_problem(field: Field, value: Any) -> str | None:
    low, high = field.min if field.min is not None else 0, field.max if field.max is not None else 10
    if not _number(value) or value != int(value):
        return "Must be a whole number."
    return None if low <= value <= high else f"Must be between {low} and {high}."


def _checkbox_problem(field: Field, value: Any) -> str | None:
    return None if isinstance(value, bool) else "Must be true or false."


CHECKS = {"text": _text_problem, "choice": _choice_problem, "multi": _multi_problem, "scale": _scale_problem,
          "checkbox": _checkbox_problem}


def problems(fields: tuple[Field, ...], responses: dict[str, Any]) -> dict[str, list[str]]:
    """Why `responses` do not fit the worksheet, per field id (empty when they do; None clears an answer)."""
    by_id = {field.id: field for field in fields}
    found: dict[str, list[str]] = {}
    for field_id, value in responses.items():
        field = by_id.get(field_id)
        if field is None:
            found[field_id[:64]] = ["Unknown field."]
            continue
        if value is None:
            continue
        problem = "Not a supported value." if isinstance(value, Unsupported) else CHECKS[field.type](field, value)
        if problem:
            found[field_id] = [problem]
    return found


def answered(field: Field, value: Any) -> bool:
    """Whether a field counts as answered (a checkbox: checked; text: not blank; multi: something picked)."""
    if value is None or isinstance(value, Unsupported):
        return False
    if field.type == "text":
        return isinstance(value, str) and bool(value.strip())
    if field.type == "checkbox":
        return value is True
    if field.type == "multi":
        return bool(value)
    return True


def counted(fields: tuple[Field, ...]) -> tuple[Field, ...]:
    """The fields progress counts: the required ones, or all when none is required."""
    required = tuple(field for field in fields if field.required)
    return required or fields


def progress(fields: tuple[Field, ...], responses: dict[str, Any]) -> float:
    """Answered counted fields / counted fields, rounded to 4 places (0 for a worksheet without fields)."""
    basis = counted(fields)
    if not basis:
        return 0.0
    return round(sum(answered(field, responses.get(field.id)) for field in basis) / len(basis), 4)


def missing(fields: tuple[Field, ...], responses: dict[str, Any]) -> list[str]:
    """Required fields without an answer."""
    return [field.id for field in fields if field.required and not answered(field, responses.get(field.id))]


def plain(responses: dict[str, Any]) -> dict[str, Any]:
    """Responses as plain JSON values (shared texts as strings), for freezing at submission."""
    return {key: (str(value) if isinstance(value, SharedText) else value) for key, value in responses.items()
            if value is not None and not isinstance(value, Unsupported)}
