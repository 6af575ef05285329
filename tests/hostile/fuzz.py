"""Payload strategies for the schema-driven fuzzer: valid payloads from each request's JSON Schema (the one
docs/asyncapi.yaml publishes), boundary and wrong-typed variants of its fields, and hostile shapes (binary
parts, deep nesting, lone surrogates, unknown keys)."""
from __future__ import annotations

import os
from datetime import UTC
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from marshmallow import Schema

from realtime.asyncapi import SCHEMAS, Converter, component_names, resolve

#: examples per event (CI runs 50; FUZZ_EXAMPLES=500 for a longer hunt)
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "50"))
#: fixed by default so a CI failure reproduces; FUZZ_SEED to explore
SEED = int(os.environ.get("FUZZ_SEED", "20261201"))

JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63), st.floats(allow_nan=False),
                      st.text(max_size=40))
JSON = st.recursive(JSON_LEAF, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=12)
SURROGATE = st.sampled_from(["\ud83d", "I am not ok \ud83d", "\udc00x", "a\ud800\ud800b"])
BOUNDARY = st.one_of(st.sampled_from(["", " ", "x" * 65, "x" * 4097, "0", "-1", "2026-02-30T25:61:00Z",
                                      "9999-12-31T23:59:59Z", "../../etc/passwd", "<script>", "\x00", "🙂" * 50]),
                     st.integers(-(2**70), 2**70), st.just(2**53 + 1), st.just(-0.0), st.just(1e308),
                     st.lists(st.just("x"), min_size=101, max_size=101))


def request_json_schema(schema_class: type[Schema]) -> dict[str, Any]:
    """A request schema as one self-contained JSON Schema document (referenced components included)."""
    converter = Converter()
    root = converter.object_schema(schema_class())
    components = converter.components()
    names = component_names(components)
    document = resolve(root, names)
    document["components"] = {"schemas": {names[cls]: resolve(body, names) for cls, body in components.items()}}
    assert SCHEMAS == "#/components/schemas/"
    return document  # type: ignore[no-any-return]


def nest(depth: int) -> Any:
    value: Any = "deep"
    for level in range(depth):
        value = [value] if level % 2 else {"n": value}
    return value


def hostile(field_names: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Payloads that are not what the schema wants."""
    names = st.sampled_from(field_names or ["x"])
    return st.one_of(
        st.dictionaries(st.text(max_size=12), JSON, max_size=5),                       # random object
        st.builds(lambda key, value: {key: value}, names, JSON),                       # a field of a wrong type
        st.builds(lambda key, value: {key: value}, names, BOUNDARY),                   # boundary values
        st.builds(lambda key, value: {key: value}, names, SURROGATE),                  # lone surrogates
        st.builds(lambda key, blob: {key: blob}, names, st.binary(max_size=64)),       # a binary part
        st.builds(lambda key, depth: {key: nest(depth)}, names, st.integers(30, 200)),  # deep nesting
    )


def from_json_schema(node: dict[str, Any], document: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values valid for the subset of JSON Schema careline's converter writes (realtime/asyncapi.py); id fields
    (`...Id`, `...Ids`) also take the ids in `document["x-known-ids"]`, so requests reach past `not_found`."""
    if "$ref" in node:
        return from_json_schema(document["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]], document)
    for combinator in ("anyOf", "oneOf"):
        if combinator in node:
            return st.one_of([from_json_schema(option, document) for option in node[combinator]])
    if "allOf" in node:
        return from_json_schema({**node["allOf"][0], **{k: v for k, v in node.items() if k != "allOf"}}, document)
    if "const" in node:
        return st.just(node["const"])
    if "enum" in node:
        return st.sampled_from(node["enum"])
    kind = node.get("type")
    if isinstance(kind, list):
        return st.one_of([from_json_schema({**node, "type": one}, document) for one in kind])
    builders = {"object": _object, "array": _array, "string": _string, "integer": _integer, "number": _number,
                "boolean": lambda node, document: st.booleans(), "null": lambda node, document: st.none()}
    return builders[kind](node, document) if kind in builders else JSON


def _object(node: dict[str, Any], document: dict[str, Any]) -> st.SearchStrategy[Any]:
    properties = node.get("properties", {})
    required = set(node.get("required", []))
    values = {name: _with_known(name, from_json_schema(schema, document), document)
              for name, schema in properties.items()}
    optional = st.fixed_dictionaries({}, optional={name: value for name, value in values.items()
                                                   if name not in required})
    needed = st.fixed_dictionaries({name: value for name, value in values.items() if name in required})
    return st.builds(lambda a, b: {**a, **b}, needed, optional)


def _with_known(name: str, values: st.SearchStrategy[Any], document: dict[str, Any]) -> st.SearchStrategy[Any]:
    known = document.get("x-known-ids") or []
    if not known:
        return values
    if name.endswith("Id"):
        return st.one_of(st.sampled_from(known), st.sampled_from(known), values)
    if name.endswith("Ids") or name == "ids":
        return st.one_of(st.lists(st.sampled_from(known), min_size=1, max_size=3, unique=True), values)
    return values


def _array(node: dict[str, Any], document: dict[str, Any]) -> st.SearchStrategy[Any]:
    items = node.get("items", {})
    if isinstance(items, list):
        return st.tuples(*(from_json_schema(item, document) for item in items)).map(list)
    low, high = node.get("minItems", 0), min(node.get("maxItems", 5), max(node.get("minItems", 0), 5))
    return st.lists(from_json_schema(items, document), min_size=low, max_size=high)


def _string(node: dict[str, Any], document: dict[str, Any]) -> st.SearchStrategy[Any]:
    if node.get("format") == "date-time":
        return st.datetimes(timezones=st.just(UTC)).map(lambda moment: moment.isoformat())
    if "pattern" in node:
        return st.from_regex(node["pattern"], fullmatch=True)
    if node.get("format") == "uri":
        return st.sampled_from(["https://push.example/abc", "http://127.0.0.1:9/x"])
    return st.text(min_size=node.get("minLength", 0), max_size=min(node.get("maxLength", 40), 60))


def _integer(node: dict[str, Any], document: dict[str, Any]) -> st.SearchStrategy[Any]:
    return st.integers(node.get("minimum", -(2**31)), node.get("maximum", 2**31))


def _number(node: dict[str, Any], document: dict[str, Any]) -> st.SearchStrategy[Any]:
    return st.floats(node.get("minimum"), node.get("maximum"), allow_nan=False, allow_infinity=False)


def payload_strategy(schema_class: type[Schema] | None, known_ids: list[str] | None = None
                     ) -> st.SearchStrategy[Any]:
    """Valid (from the schema, ids among `known_ids` too), boundary, wrong and hostile payloads, non-objects."""
    not_objects = st.one_of(st.none(), st.integers(), st.text(max_size=10), st.lists(JSON, max_size=3))
    if schema_class is None:
        return st.one_of(st.just({}), hostile([]), not_objects)
    document = request_json_schema(schema_class)
    document["x-known-ids"] = sorted(known_ids or [])
    valid = from_json_schema(document, document)
    full = from_json_schema({**document, "required": list(document.get("properties", {}))}, document)
    with_extra = st.builds(lambda payload, key: {**payload, key: 1}, valid, st.text(min_size=1, max_size=8))
    names = list(document.get("properties", {}))
    return st.one_of(valid, full, full, with_extra, hostile(names), not_objects)


def draw(strategy: st.SearchStrategy[Any], count: int = EXAMPLES, salt: int = 0) -> list[Any]:
    """`count` examples of `strategy`, generated up front (the requests are sent from an event loop)."""
    drawn: list[Any] = []

    @seed(SEED + salt)
    @settings(max_examples=count, phases=[Phase.generate], database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(example: Any) -> None:
        drawn.append(example)

    collect()
    return drawn
