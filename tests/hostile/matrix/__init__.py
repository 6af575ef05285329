"""The authorization matrix's building blocks: relations, worlds of fresh resources, rows of expected answers.

Each feature has a module here (`chat.py`, `booking.py`, ...) with `ROWS` (request -> row) and `MAKERS`
(resource kind -> how to create it in a world); `tests/hostile/test_authorization_matrix.py` joins them.
"""
from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from tests.clients import SioClient
from tests.conftest import RunningServer

RELATIONS = ("owner", "party", "client", "therapist", "admin")
ROLE_OF = {"owner": "client", "party": "therapist", "client": "client", "therapist": "therapist", "admin": "admin"}
OK, NF, FB = "ok", "not_found", "forbidden"
_worlds = itertools.count(1)


@dataclass
class World:
    """Fresh users (one per relation) and resources: the owner (a client) and the party (a therapist) share
    them; the strangers and the admin share nothing."""

    server: RunningServer
    n: int
    ids: dict[str, str] = field(default_factory=dict)
    _clients: dict[tuple[str, str], SioClient] = field(default_factory=dict)

    def user(self, relation: str) -> str:
        return f"{relation}{self.n}"

    async def client(self, relation: str, namespace: str) -> SioClient:
        key = (relation, namespace)
        if key not in self._clients:
            self._clients[key] = await self.server.client(self.user(relation), ROLE_OF[relation], namespace)
        return self._clients[key]


Maker = Callable[[World], Awaitable[None]]  # creates one kind of resource (its ids into world.ids)
Payload = Callable[[World], dict[str, Any]]
Check = Callable[[World, str, dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Row:
    """One request: the resource kinds its world needs, its payload there, and the answer per relation."""

    needs: tuple[str, ...]
    payload: Payload
    expected: dict[str, str]
    check: Check | None = None  # for requests that answer `ok` to anyone but must not act for strangers


def row(needs: str, payload: Payload, expected: dict[str, str], check: Check | None = None) -> Row:
    """A row whose world has the resources named in `needs` (space-separated, created in that order)."""
    return Row(tuple(needs.split()), payload, expected, check)


def codes(owner: str, party: str, client: str, therapist: str, admin: str) -> dict[str, str]:
    return dict(zip(RELATIONS, (owner, party, client, therapist, admin), strict=True))


async def build_world(server: RunningServer, needs: tuple[str, ...], makers: dict[str, Maker]) -> World:
    """A world with the resources a row needs, made in order (a maker may rely on earlier ones)."""
    world = World(server, next(_worlds))
    for relation in RELATIONS:  # every user has connected once (users are known by their first connect)
        await world.client(relation, "/chat")
    for kind in needs:
        if kind not in world.ids:
            await makers[kind](world)
    return world
