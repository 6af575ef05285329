"""The authorization matrix (issue 17): every request that takes an id, called by each relation to the
resource it names (its owner, the other party, a stranger client, a stranger therapist, an admin), against
fresh resources, with the expected answers in one table per feature (tests/hostile/matrix/). A request
taking an id without a row fails.

Each cell runs in a world of its own (fresh users and resources), so a cell that changes something (a
delete, a cancel) cannot change the answer of another.
"""
from __future__ import annotations

from typing import Any

import pytest

from realtime.base import BaseNamespace
from server import FEATURES
from tests.conftest import StartServer
from tests.hostile.matrix import (
    OK,
    RELATIONS,
    Maker,
    Row,
    World,
    billing,
    booking,
    build_world,
    chat,
    codes,
    meetings,
    notifications,
    row,
    worksheets,
)

FEATURE_TABLES = (chat, booking, notifications, meetings, worksheets, billing)
MATRIX: dict[tuple[str, str], Row] = {key: value for table in FEATURE_TABLES for key, value in table.ROWS.items()}
MAKERS: dict[str, Maker] = {kind: make for table in FEATURE_TABLES for kind, make in table.MAKERS.items()}
#: a table's optional `SERVER()`: the settings its namespace's cells start the server with (e.g. a Stripe peer)
SERVER_SETTINGS: dict[str, Any] = {path: table.SERVER for table in FEATURE_TABLES if hasattr(table, "SERVER")
                                   for path, _event in table.ROWS}


async def lookup_names_only_related(w: World, relation: str, answer: dict[str, Any]) -> None:
    seen = {item["id"] for item in answer["items"]}
    assert (w.user("owner") in seen) == (relation in ("owner", "party", "admin")), (relation, seen)


#: `user:lookup` on every namespace: answers anyone, names only the related (a conversation relates them)
LOOKUP = row("conversation", lambda w: {"ids": [w.user("owner")]}, codes(OK, OK, OK, OK, OK),
             lookup_names_only_related)


def takes_an_id(namespace: type[BaseNamespace[Any]], event: str) -> bool:
    schema = namespace.requests[event].schema
    names = [f.data_key or name for name, f in schema().fields.items()] if schema else []
    return any((name.endswith(("Id", "Ids")) or name == "ids") and name != "requestId" for name in names)


ID_EVENTS = sorted((feature.path, event) for feature in FEATURES for event in feature.namespace.requests
                   if takes_an_id(feature.namespace, event))
CELLS = [(path, event, relation) for path, event in ID_EVENTS for relation in RELATIONS]


def row_of(path: str, event: str) -> Row:
    return LOOKUP if event == "user:lookup" else MATRIX[(path, event)]


def test_every_request_that_takes_an_id_has_a_row() -> None:
    missing = [f"{path} {event}" for path, event in ID_EVENTS if event != "user:lookup" and (path, event) not in MATRIX]
    assert not missing, f"add these to tests/hostile/matrix/: {missing}"
    stale = [key for key in MATRIX if key not in ID_EVENTS]
    assert not stale, f"no such requests: {stale}"
    unknown = {kind for table_row in MATRIX.values() for kind in table_row.needs} - set(MAKERS)
    assert not unknown, f"no maker for {unknown}"


@pytest.mark.parametrize(("path", "event", "relation"), CELLS, ids=lambda value: str(value))
async def test_authorization(start_server: StartServer, path: str, event: str, relation: str) -> None:
    server = await start_server(**(SERVER_SETTINGS[path]() if path in SERVER_SETTINGS else {}))
    cell = row_of(path, event)
    world = await build_world(server, cell.needs, MAKERS)
    reply = await (await world.client(relation, path)).call(event, cell.payload(world))
    got = "ok" if reply["ok"] else reply["error"]["code"]
    assert got == cell.expected[relation], f"{relation} {event}: {reply}"
    if cell.check is not None and reply["ok"]:
        await cell.check(world, relation, reply["data"])
