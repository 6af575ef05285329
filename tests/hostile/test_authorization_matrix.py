"""The authorization matrix (issue 17): every request that takes an id, called by each relation to the
resource it names (its owner, the other party, a stranger client, a stranger therapist, an admin), against
fresh resources, with the expected answer in one table. A request taking an id without a row here fails.

Each cell runs in a world of its own (fresh users and resources), so a cell that changes something (a
delete, a cancel) cannot change the answer of another.
"""
from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from clock import iso
from realtime.base import BaseNamespace
from server import FEATURES
from tests.booking.helpers import availability, later
from tests.clients import SioClient
from tests.conftest import RunningServer
from tests.uploads.test_uploads import PNG

RELATIONS = ("owner", "party", "client", "therapist", "admin")
ROLE_OF = {"owner": "client", "party": "therapist", "client": "client", "therapist": "therapist", "admin": "admin"}
OK, NF, FB = "ok", "not_found", "forbidden"
_worlds = itertools.count(1)


@dataclass
class World:
    """Fresh users (one per relation) and resources: the owner (a client) talks to and books the party."""

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


async def build_world(server: RunningServer, needs: frozenset[str]) -> World:
    """A world with the resources a row needs (and what they depend on)."""
    world = World(server, next(_worlds))
    for relation in RELATIONS:  # every user has connected once (users are known by their first connect)
        await world.client(relation, "/chat")
    if needs & {"conversation", "message", "report", "upload"}:
        await _chat(world, needs)
    if needs & {"availability", "booking"}:
        party = await world.client("party", "/booking")
        await party.ok("availability:set", availability())
    if "booking" in needs:
        booking = await (await world.client("owner", "/booking")).ok(
            "booking:create", {"therapistId": world.user("party"), "start": iso(later(72)), "requestId": "b"})
        world.ids["booking"] = booking["id"]
    if "notification" in needs:
        notification = await server.notifications.notifications.notify(world.user("owner"), category="system",
                                                                        title="t", body="b")
        assert notification is not None
        world.ids["notification"] = notification.id
    return world


async def _chat(world: World, needs: frozenset[str]) -> None:
    owner = await world.client("owner", "/chat")
    conversation = await owner.ok("conversation:open", {"memberIds": [world.user("party")]})
    world.ids["conversation"] = conversation["id"]
    if not needs & {"message", "report", "upload"}:
        return
    async with aiohttp.ClientSession() as http:
        form = aiohttp.FormData(quote_fields=False)
        form.add_field("file", PNG, filename="scan.png", content_type="image/png")
        async with http.post(world.server.url + "/api/uploads", data=form,
                             headers={"Authorization": f"Bearer {world.server.token(world.user('owner'))}"}) as reply:
            world.ids["upload"] = (await reply.json())["id"]
    message = await owner.ok("message:send", {"conversationId": conversation["id"], "text": "hello",
                                              "attachmentIds": [world.ids["upload"]], "requestId": "m"})
    world.ids["message"] = message["id"]
    if "report" in needs:
        report = await owner.ok("message:report", {"messageId": message["id"], "reason": "t"})
        world.ids["report"] = report["reportId"]


Payload = Callable[[World], dict[str, Any]]
Check = Callable[[World, str, dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Row:
    """One request: its payload in a world, and the expected answer per relation."""

    needs: frozenset[str]
    payload: Payload
    expected: dict[str, str]
    check: Check | None = None  # for requests that answer `ok` to anyone but must not act for strangers


def row(needs: str, payload: Payload, expected: dict[str, str], check: Check | None = None) -> Row:
    """A row whose world has the resources named in `needs` (space-separated)."""
    return Row(frozenset(needs.split()), payload, expected, check)


def codes(owner: str, party: str, client: str, therapist: str, admin: str) -> dict[str, str]:
    return dict(zip(RELATIONS, (owner, party, client, therapist, admin), strict=True))


MEMBERS = codes(OK, OK, NF, NF, NF)            # members of the owner's direct conversation
PARTIES = codes(OK, OK, NF, NF, OK)            # a booking's parties, and admins
SENDER = codes(OK, FB, NF, NF, NF)             # the sender of the message (the party is a member, not its author)
ADMINS = codes(FB, FB, FB, FB, OK)
THERAPIST_OF_BOOKING = codes(FB, OK, FB, NF, OK)


def conversation(w: World) -> dict[str, Any]:
    return {"conversationId": w.ids["conversation"]}


def message(w: World) -> dict[str, Any]:
    return {"messageId": w.ids["message"]}


def booking(w: World) -> dict[str, Any]:
    return {"bookingId": w.ids["booking"]}


def therapist(w: World) -> dict[str, Any]:
    return {"therapistId": w.user("party")}


async def owner_notification_unread(w: World, relation: str, answer: dict[str, Any]) -> None:
    unread = await (await w.client("owner", "/notifications")).ok("notification:unread-count")
    assert unread["unreadCount"] == (0 if relation == "owner" else 1), relation


async def lookup_names_only_related(w: World, relation: str, answer: dict[str, Any]) -> None:
    seen = {item["id"] for item in answer["items"]}
    related = relation in ("owner", "party", "admin")
    assert (w.user("owner") in seen) == related, (relation, seen)


MATRIX: dict[tuple[str, str], Row] = {
    ("/chat", "conversation:join"): row("conversation", conversation, MEMBERS),
    ("/chat", "conversation:leave"): row("conversation", conversation, MEMBERS),
    ("/chat", "message:send"): row("conversation", lambda w: {**conversation(w), "text": "x", "requestId": "r"},
                                   codes(OK, OK, NF, NF, NF)),
    ("/chat", "message:history"): row("conversation", conversation, MEMBERS),
    ("/chat", "message:search"): row("conversation", lambda w: {**conversation(w), "query": "hello"}, MEMBERS),
    ("/chat", "message:read"): row("conversation", lambda w: {**conversation(w), "seq": 1}, MEMBERS),
    ("/chat", "message:delivered"): row("conversation", lambda w: {**conversation(w), "seq": 1}, MEMBERS),
    ("/chat", "typing:start"): row("conversation", conversation, MEMBERS),
    ("/chat", "typing:stop"): row("conversation", conversation, MEMBERS),
    ("/chat", "message:edit"): row("message", lambda w: {**message(w), "text": "changed"}, SENDER),
    ("/chat", "message:delete"): row("message", message, codes(OK, FB, NF, NF, OK)),
    ("/chat", "message:react"): row("message", lambda w: {**message(w), "emoji": "👍"}, MEMBERS),
    ("/chat", "message:report"): row("message", lambda w: {**message(w), "reason": "x"}, MEMBERS),
    ("/chat", "report:resolve"): row("report", lambda w: {"reportId": w.ids["report"]}, ADMINS),
    ("/chat", "upload:link"): row("upload", lambda w: {"uploadId": w.ids["upload"]}, MEMBERS),
    ("/chat", "conversation:open"): row("", lambda w: {"memberIds": [w.user("owner")]}, codes(
        "invalid_payload", OK, OK, OK, OK)),  # opening a direct conversation with someone is allowed
    ("/chat", "user:block"): row("", lambda w: {"userId": w.user("owner")}, codes("invalid_payload", OK, OK, OK, OK)),
    ("/chat", "user:unblock"): row("", lambda w: {"userId": w.user("owner")}, codes(OK, OK, OK, OK, OK)),
    ("/booking", "booking:get"): row("booking", booking, PARTIES),
    ("/booking", "booking:cancel"): row("booking", booking, PARTIES),
    ("/booking", "booking:reschedule"): row("booking", lambda w: {**booking(w), "start": iso(later(96))}, PARTIES),
    ("/booking", "booking:confirm"): row("booking", booking, THERAPIST_OF_BOOKING),
    ("/booking", "booking:decline"): row("booking", booking, THERAPIST_OF_BOOKING),
    ("/booking", "booking:create"): row("availability", lambda w: {**therapist(w), "start": iso(later(120)),
                                                                   "requestId": "x"},
                                        codes(OK, FB, OK, FB, FB)),  # any client may book an open slot
    ("/booking", "availability:get"): row("", lambda w: {**therapist(w), "from": iso(later(24)), "to": iso(later(48))},
                                          codes(OK, OK, OK, OK, OK)),  # open slots are public to signed-in users
    ("/booking", "availability:subscribe"): row("", therapist, codes(OK, OK, OK, OK, OK)),
    ("/booking", "availability:unsubscribe"): row("", therapist, codes(OK, OK, OK, OK, OK)),
    ("/notifications", "notification:read"): row("notification", lambda w: {"ids": [w.ids["notification"]]},
                                                 codes(OK, OK, OK, OK, OK), owner_notification_unread),
}
#: `user:lookup` on every namespace: answers anyone, names only the related
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
    assert not missing, f"add these to MATRIX: {missing}"
    stale = [key for key in MATRIX if key not in ID_EVENTS]
    assert not stale, f"no such requests: {stale}"


@pytest.mark.parametrize(("path", "event", "relation"), CELLS, ids=lambda value: str(value))
async def test_authorization(server: RunningServer, path: str, event: str, relation: str) -> None:
    row = row_of(path, event)
    world = await build_world(server, row.needs)
    reply = await (await world.client(relation, path)).call(event, row.payload(world))
    expected = row.expected[relation]
    got = "ok" if reply["ok"] else reply["error"]["code"]
    assert got == expected, f"{relation} {event}: {reply}"
    if row.check is not None and reply["ok"]:
        await row.check(world, relation, reply["data"])
