"""docs/asyncapi.yaml: current, valid for the official AsyncAPI parser, complete, and true to the schemas."""
from __future__ import annotations

import difflib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from marshmallow import Schema, fields, validate

from handlers.auth import User
from realtime.asyncapi import build_document, namespace_classes
from realtime.base import BaseNamespace, request
from realtime.schemas.common import OutputSchema, RequestSchema, UtcDateTime
from realtime.unavailable import UnavailableNamespace
from tests.clients import JS_DIR

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "docs" / "asyncapi.yaml"
REGENERATE = "regenerate with: python -m realtime.asyncapi > docs/asyncapi.yaml"
CONTRACT_NAMESPACES = {"/chat", "/booking", "/meetings", "/worksheets", "/notifications", "/billing"}
Document = dict[str, Any]


def _generate(seed: str = "0") -> str:
    """`python -m realtime.asyncapi`'s output, run as the README says."""
    result = subprocess.run([sys.executable, "-m", "realtime.asyncapi"], cwd=ROOT, capture_output=True, text=True,
                            timeout=120, check=False, env={**os.environ, "PYTHONHASHSEED": seed})
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def generated() -> str:
    """The document as generated from the code now."""
    return _generate()


@pytest.fixture(scope="module")
def document(generated: str) -> Document:
    """The generated document, parsed."""
    parsed: Document = yaml.safe_load(generated)
    return parsed


def _deref(document: Document, pointer: str) -> Any:
    """The node a local `#/...` JSON pointer names."""
    node: Any = document
    for part in pointer.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _validate(path: Path) -> tuple[int, dict[str, Any]]:
    """Run tests/js/validate_asyncapi.mjs on a file: (exit code, its JSON report)."""
    assert (JS_DIR / "node_modules" / "@asyncapi" / "parser").exists(), "run: npm ci --prefix tests/js"
    result = subprocess.run(["node", str(JS_DIR / "validate_asyncapi.mjs"), str(path)], cwd=JS_DIR,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.stdout, result.stderr
    return result.returncode, json.loads(result.stdout)


# -- (a) the committed document is what the code generates ------------------------------------------


def test_committed_document_is_current(generated: str) -> None:
    assert COMMITTED.exists(), REGENERATE
    committed = COMMITTED.read_text(encoding="utf-8")
    diff = list(difflib.unified_diff(committed.splitlines(), generated.splitlines(), "committed", "generated",
                                     lineterm="", n=1))[:40]
    assert committed == generated, REGENERATE + "\n" + "\n".join(diff)


def test_generation_is_deterministic(generated: str) -> None:
    assert _generate(seed="12345") == generated


# -- (b) the official parser finds no error -----------------------------------------------------------


@pytest.mark.js
def test_official_parser_finds_no_errors(js_ready: None, generated: str, tmp_path: Path) -> None:
    path = tmp_path / "asyncapi.yaml"
    path.write_text(generated, encoding="utf-8")
    code, report = _validate(path)
    errors = [d for d in report["diagnostics"] if d["severity"] == "error"]
    assert (code, report["errors"]) == (0, 0), json.dumps(errors, indent=2)


@pytest.mark.js
def test_official_parser_reports_a_broken_document(js_ready: None, document: Document, tmp_path: Path) -> None:
    broken = json.loads(json.dumps(document))
    first = next(iter(broken["operations"].values()))
    first["messages"] = [{"$ref": "#/channels/nowhere/messages/nothing"}]
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(broken, sort_keys=False), encoding="utf-8")
    code, report = _validate(path)
    assert code == 1 and report["errors"] > 0


# -- (c) every request, event and contract event is in it --------------------------------------------


def _operations(document: Document) -> dict[tuple[str, str, str], Document]:
    """(namespace path, action, event name) -> operation."""
    found: dict[tuple[str, str, str], Document] = {}
    for operation in document["operations"].values():
        channel = _deref(document, operation["channel"]["$ref"])
        for ref in operation["messages"]:
            found[(channel["address"], operation["action"], _deref(document, ref["$ref"])["name"])] = operation
    return found


def _name(document: Document, cls: type[Schema]) -> str:
    """The component name of a schema class: its class name, or module-qualified where names collide."""
    schemas = document["components"]["schemas"]
    return cls.__name__ if cls.__name__ in schemas else f"{cls.__module__}.{cls.__qualname__}"


def _reply_payload(document: Document, operation: Document) -> Document:
    """The payload of an operation's one reply message."""
    [ref] = operation["reply"]["messages"]
    payload: Document = _deref(document, ref["$ref"])["payload"]
    return payload


def test_every_contract_namespace_is_a_channel(document: Document) -> None:
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert addresses == {cls.path for cls in namespace_classes()}
    assert addresses >= CONTRACT_NAMESPACES


def test_every_request_is_a_send_operation_answered_by_its_ack(document: Document) -> None:
    operations = _operations(document)
    for cls in namespace_classes():
        for event, spec in cls.requests.items():
            operation = operations[(cls.path, "send", event)]
            success, failure = _reply_payload(document, operation)["oneOf"]
            assert failure == {"$ref": "#/components/schemas/ErrorEnvelope"}
            data = success["properties"]["data"]
            if spec.ack is None:
                assert data["maxProperties"] == 0
            else:
                ref = {"$ref": "#/components/schemas/" + _name(document, spec.ack)}
                assert data == ({"oneOf": [ref, {"type": "null"}]} if spec.nullable else ref)
            assert operation.get("x-roles") == (list(spec.roles) if spec.roles is not None else None)
            assert "x-rate-limit" in operation


def test_every_server_event_is_a_receive_operation(document: Document) -> None:
    operations = _operations(document)
    for cls in namespace_classes():
        for event in [*cls.all_emits, "connect_error"]:
            assert (cls.path, "receive", event) in operations, (cls.path, event)


def test_every_contract_event_of_an_unavailable_feature_is_answered_unavailable(document: Document) -> None:
    operations = _operations(document)
    unavailable = [cls for cls in namespace_classes() if issubclass(cls, UnavailableNamespace)]
    assert unavailable == []  # every contract feature is built; a staged one would be checked below
    for cls in unavailable:
        assert "not available" in _deref(document, f"#/channels/{cls.path.strip('/')}")["description"]
        for event in cls.contract_events:
            operation = operations[(cls.path, "send", event)]
            assert _reply_payload(document, operation) == {"$ref": "#/components/schemas/UnavailableEnvelope"}


def test_error_envelope_has_the_closed_code_list(document: Document) -> None:
    from errors import ERROR_CODES

    schemas = document["components"]["schemas"]
    assert schemas["ErrorEnvelope"]["properties"]["error"]["properties"]["code"]["enum"] == list(ERROR_CODES)
    assert schemas["UnavailableEnvelope"]["properties"]["error"]["properties"]["code"] == {"const": "unavailable"}
    assert schemas["ConnectError"]["properties"]["code"]["enum"] == ["unauthorized", "token_expired"]


# -- (d) the JSON Schema conversion ---------------------------------------------------------------


def test_the_shared_schemas_in_the_document(document: Document) -> None:
    schemas = document["components"]["schemas"]
    spec = BaseNamespace.requests["session:refresh"]
    assert spec.schema is not None and spec.ack is not None
    refresh, refreshed = schemas[_name(document, spec.schema)], schemas[_name(document, spec.ack)]
    assert refresh["required"] == ["token"] and refresh["properties"]["token"]["maxLength"] == 8192
    assert refresh["additionalProperties"] is False
    assert refreshed["required"] == ["expiresAt"] and refreshed["properties"]["expiresAt"]["format"] == "date-time"


class Hooked(fields.Field):
    """A field with its own JSON Schema."""

    json_schema: ClassVar[dict[str, Any]] = {"type": ["boolean", "string"], "enum": [True, False, "always"]}


class Shout(fields.String):
    """An upper-case word."""


class Inner(OutputSchema):
    """What the server writes."""

    created_at = UtcDateTime(required=True)


class Sample(RequestSchema):
    """A sample request; `a` and `b` exclude each other."""

    display_name = fields.String(required=True, validate=validate.Length(max=20))
    tags = fields.List(fields.String(), load_default=list, validate=validate.Length(max=3))
    inner = fields.Nested(Inner, allow_none=True)
    inners = fields.List(fields.Nested(Inner))
    kind = fields.String(validate=validate.OneOf(["a", "b"]))
    code = fields.String(validate=validate.Regexp(r"^[A-Z]+$"))
    count = fields.Integer(load_default=5, validate=validate.Range(1, 10))
    starts_at = UtcDateTime()
    push = Hooked()
    word = Shout()
    link = fields.Function(lambda obj: "/x", metadata={"json_schema": {"type": "string", "format": "uri-reference"}})


class SampleNamespace(BaseNamespace):
    """A namespace only this test sees."""

    path = "/sample"
    emits: ClassVar[dict[str, type[Schema]]] = {"sample:changed": Inner}

    @request("sample:do", Sample, ack=Inner, roles=("admin",), rate=(3, 0.5))
    async def do(self, sid: str, user: User, payload: dict[str, Any]) -> Any:
        """Do the sample thing."""
        return payload


@pytest.fixture(scope="module")
def sample() -> Document:
    """The document of the sample namespace alone."""
    return build_document([SampleNamespace])


def test_a_request_schema_becomes_json_schema(sample: Document) -> None:
    schema = sample["components"]["schemas"]["Sample"]
    properties = schema["properties"]
    assert schema["required"] == ["displayName"] and schema["additionalProperties"] is False
    assert "exclude each other" in schema["description"]
    assert properties["displayName"] == {"type": "string", "maxLength": 20}
    assert properties["tags"] == {"type": "array", "items": {"type": "string"}, "maxItems": 3, "default": []}
    assert properties["inner"] == {"oneOf": [{"$ref": "#/components/schemas/Inner"}, {"type": "null"}]}
    assert properties["inners"]["items"] == {"$ref": "#/components/schemas/Inner"}
    assert properties["kind"]["enum"] == ["a", "b"] and properties["code"]["pattern"] == "^[A-Z]+$"
    assert properties["count"] == {"type": "integer", "minimum": 1, "maximum": 10, "default": 5}
    assert properties["startsAt"]["format"] == "date-time" and "pattern" not in properties["startsAt"]
    assert properties["push"]["enum"] == [True, False, "always"]
    assert properties["word"] == {"type": "string", "description": "An upper-case word."}
    assert properties["link"] == {"type": "string", "format": "uri-reference", "readOnly": True}


def test_an_output_schema_writes_utc_times(sample: Document) -> None:
    created = sample["components"]["schemas"]["Inner"]["properties"]["createdAt"]
    assert created["format"] == "date-time" and created["pattern"].endswith(r"\.\d{3}Z$")
    assert "additionalProperties" not in sample["components"]["schemas"]["Inner"]


def test_a_request_operation_carries_roles_and_rate(sample: Document) -> None:
    operation = sample["operations"]["sample.sample.do"]
    assert operation["action"] == "send" and operation["summary"] == "Do the sample thing."
    assert operation["x-roles"] == ["admin"] and operation["x-rate-limit"]["burst"] == 3
    assert sample["operations"]["sample.sample.changed"]["action"] == "receive"
