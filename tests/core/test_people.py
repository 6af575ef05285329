"""`user:lookup` (CONTRACT §1 "People") on every namespace: names only of people one shares something with."""
from __future__ import annotations

import pytest

from server import FEATURES
from tests.booking.helpers import NS as BOOKING
from tests.booking.helpers import book, later, therapist
from tests.chat.helpers import direct
from tests.conftest import RunningServer

NAMESPACES = [feature.path for feature in FEATURES]


@pytest.mark.parametrize("namespace", NAMESPACES)
async def test_lookup_answers_only_for_related_users(server: RunningServer, namespace: str) -> None:
    await direct(server, "alice", "client", "bob", "therapist")  # alice and bob share a conversation
    await server.client("eve", "client", name="Eve Stranger")
    alice = await server.client("alice", "client", namespace, name="Alice A")
    found = await alice.ok("user:lookup", {"ids": ["bob", "eve", "nobody", "alice"]})
    assert found == {"items": [{"id": "bob", "name": "Bob", "role": "therapist"},
                               {"id": "alice", "name": "Alice A", "role": "client"}]}
    admin = await server.client("root", "admin", namespace)
    everyone = await admin.ok("user:lookup", {"ids": ["eve", "bob"]})
    assert [item["id"] for item in everyone["items"]] == ["eve", "bob"]
    await alice.error("user:lookup", {"ids": []}, code="invalid_payload")
    await alice.error("user:lookup", {"ids": ["x"] * 101}, code="invalid_payload")


async def test_a_booking_relates_its_parties(server: RunningServer) -> None:
    await therapist(server, "t1")
    client = await server.client("c1", "client", BOOKING)
    stranger = await server.client("c2", "client", BOOKING)
    await book(client, "t1", later(48))
    assert [item["id"] for item in (await client.ok("user:lookup", {"ids": ["t1"]}))["items"]] == ["t1"]
    assert (await stranger.ok("user:lookup", {"ids": ["t1", "c1"]}))["items"] == []
