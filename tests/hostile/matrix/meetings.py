"""Matrix rows of /meetings: an ad hoc meeting hosted by the party with the owner (and a third guest) invited.

The clock is fixed five minutes before the meeting's start (its join window is open). A world grows in steps:
`meeting` (nobody in), `lobby` (the host in, the owner waiting), `room` (the owner and the guest admitted),
`consented` (everyone in consents to recording), `recording` (the host started it). Strangers never learn
that a meeting exists (`not_found`); those who may see it but not do a host's action get `forbidden`
(invited participants, and admins, who may read a meeting but are never in it).
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from clock import iso
from tests.booking.helpers import at, later
from tests.clients import SioClient
from tests.hostile.matrix import FB, NF, OK, Maker, Row, World, codes, row

NS = "/meetings"
START = at("2030-03-04T10:00")
END = START + timedelta(minutes=50)

READERS = codes(OK, OK, NF, NF, OK)            # the meeting's members, and admins (who see every meeting)
MEMBERS = codes(OK, OK, NF, NF, FB)            # in the room: the host and the invited (admins read, never join)
HOST = codes(FB, OK, NF, NF, FB)               # the host's controls
AUDIT = codes(FB, OK, NF, NF, OK)              # the host and admins

_guests: dict[int, SioClient] = {}  # world number -> the third participant's client (the `to` of signals)


def guest(w: World) -> str:
    """A second invited client: the recipient of signals, so the owner and the party can both send one."""
    return f"guest{w.n}"


async def make_meeting(world: World) -> None:
    world.server.clock.source = lambda: START - timedelta(minutes=5)
    party = await world.client("party", NS)
    meeting = await party.ok("meeting:create", {"participantIds": [world.user("owner"), guest(world)],
                                                "start": iso(START), "end": iso(END), "requestId": "m"})
    world.ids["meeting"] = meeting["id"]


async def make_lobby(world: World) -> None:
    """The host is in; the owner waits in the lobby."""
    if "meeting" not in world.ids:
        await make_meeting(world)
    ref = {"meetingId": world.ids["meeting"]}
    assert (await (await world.client("party", NS)).ok("meeting:join", ref))["status"] == "admitted"
    assert (await (await world.client("owner", NS)).ok("meeting:join", ref))["status"] == "waiting"
    world.ids["lobby"] = world.ids["meeting"]


async def make_room(world: World) -> None:
    """The owner and the guest admitted by the host."""
    if "lobby" not in world.ids:
        await make_lobby(world)
    ref = {"meetingId": world.ids["meeting"]}
    party = await world.client("party", NS)
    await party.ok("lobby:admit", {**ref, "userId": world.user("owner")})
    other = await world.server.client(guest(world), "client", NS)
    _guests[world.n] = other
    assert (await other.ok("meeting:join", ref))["status"] == "waiting"
    await party.ok("lobby:admit", {**ref, "userId": guest(world)})
    world.ids["room"] = world.ids["meeting"]


async def make_consented(world: World) -> None:
    """Everyone in the room consents to recording."""
    if "room" not in world.ids:
        await make_room(world)
    consent = {"meetingId": world.ids["meeting"], "consent": True}
    for each in (await world.client("owner", NS), await world.client("party", NS), _guests[world.n]):
        await each.ok("recording:consent", consent)
    world.ids["consented"] = world.ids["meeting"]


async def make_recording(world: World) -> None:
    if "consented" not in world.ids:
        await make_consented(world)
    started = await (await world.client("party", NS)).ok("recording:start", {"meetingId": world.ids["meeting"]})
    world.ids["recording"] = started["id"]


MAKERS: dict[str, Maker] = {"meeting": make_meeting, "lobby": make_lobby, "room": make_room,
                            "consented": make_consented, "recording": make_recording}


def meeting(w: World) -> dict[str, Any]:
    return {"meetingId": w.ids["meeting"]}


def the_owner(w: World) -> dict[str, Any]:
    return {**meeting(w), "userId": w.user("owner")}


async def only_the_host_goes_straight_in(w: World, relation: str, answer: dict[str, Any]) -> None:
    """A joining client waits in the lobby with nothing to connect with; the host is in at once."""
    if relation == "owner":
        assert answer["status"] == "waiting" and answer["iceServers"] == [] and answer["jitsi"] is None, answer
    else:
        assert relation == "party" and answer["status"] == "admitted", (relation, answer)


async def delivered_to_the_guest_only(w: World, relation: str, answer: dict[str, Any]) -> None:
    """The signal reached its recipient, from the sender, and nobody else."""
    got = await _guests[w.n].expect("signal")
    assert got["from"] == w.user(relation) and got["meetingId"] == w.ids["meeting"], got
    others = [await w.client(each, NS) for each in ("owner", "party") if each != relation]
    for other in others:
        assert not other.events["signal"], other.events["signal"]


ROWS: dict[tuple[str, str], Row] = {
    # any therapist may create a meeting and invite anyone (it relates them, like opening a conversation)
    ("/meetings", "meeting:create"): row("", lambda w: {"participantIds": [w.user("owner")],
                                                        "start": iso(later(72)), "end": iso(later(73)),
                                                        "requestId": "x"},
                                         codes(FB, OK, FB, OK, FB)),
    ("/meetings", "meeting:get"): row("meeting", meeting, READERS),
    ("/meetings", "recording:list"): row("meeting", meeting, READERS),
    ("/meetings", "meeting:audit"): row("meeting", meeting, AUDIT),
    ("/meetings", "meeting:join"): row("meeting", meeting, MEMBERS, only_the_host_goes_straight_in),
    ("/meetings", "meeting:leave"): row("room", meeting, MEMBERS),
    ("/meetings", "signal"): row("room", lambda w: {**meeting(w), "to": guest(w), "type": "offer", "payload": "v=0"},
                                 MEMBERS, delivered_to_the_guest_only),
    ("/meetings", "participant:screen"): row("room", lambda w: {**meeting(w), "sharing": True}, MEMBERS),
    ("/meetings", "meeting:stats"): row("room", lambda w: {**meeting(w), "stats": {"rttMs": 40}}, MEMBERS),
    ("/meetings", "recording:consent"): row("room", lambda w: {**meeting(w), "consent": True}, MEMBERS),
    ("/meetings", "lobby:admit"): row("lobby", the_owner, HOST),
    ("/meetings", "lobby:deny"): row("lobby", the_owner, HOST),
    ("/meetings", "participant:kick"): row("room", the_owner, HOST),
    ("/meetings", "participant:mute"): row("room", lambda w: {**the_owner(w), "kind": "audio"}, HOST),
    ("/meetings", "meeting:end"): row("room", meeting, HOST),
    ("/meetings", "recording:start"): row("consented", meeting, HOST),
    ("/meetings", "recording:stop"): row("recording", meeting, HOST),
}
