"""Matrix rows of /booking: the party's availability, the owner's pending booking with the party."""
from __future__ import annotations

from typing import Any

from clock import iso
from tests.booking.helpers import availability, later
from tests.hostile.matrix import FB, NF, OK, Maker, Row, World, codes, row

PARTIES = codes(OK, OK, NF, NF, OK)            # a booking's parties, and admins
THERAPIST_OF_BOOKING = codes(FB, OK, FB, NF, OK)


async def make_availability(world: World) -> None:
    await (await world.client("party", "/booking")).ok("availability:set", availability())
    world.ids["availability"] = world.user("party")


async def make_booking(world: World) -> None:
    if "availability" not in world.ids:
        await make_availability(world)
    owner = await world.client("owner", "/booking")
    booking = await owner.ok("booking:create", {"therapistId": world.user("party"), "start": iso(later(72)),
                                                "requestId": "b"})
    world.ids["booking"] = booking["id"]


MAKERS: dict[str, Maker] = {"availability": make_availability, "booking": make_booking}


def booking(w: World) -> dict[str, Any]:
    return {"bookingId": w.ids["booking"]}


def therapist(w: World) -> dict[str, Any]:
    return {"therapistId": w.user("party")}


ROWS: dict[tuple[str, str], Row] = {
    ("/booking", "booking:get"): row("booking", booking, PARTIES),
    ("/booking", "booking:cancel"): row("booking", booking, PARTIES),
    ("/booking", "booking:reschedule"): row("booking", lambda w: {**booking(w), "start": iso(later(96))}, PARTIES),
    ("/booking", "booking:confirm"): row("booking", booking, THERAPIST_OF_BOOKING),
    ("/booking", "booking:decline"): row("booking", booking, THERAPIST_OF_BOOKING),
    ("/booking", "booking:create"): row("availability", lambda w: {**therapist(w), "start": iso(later(120)),
                                                                   "requestId": "x"},
                                        codes(OK, FB, OK, FB, FB)),  # any client may book an open slot
    ("/booking", "availability:get"): row("", lambda w: {**therapist(w), "from": iso(later(24)),
                                                         "to": iso(later(48))},
                                          codes(OK, OK, OK, OK, OK)),  # open slots are public to signed-in users
    ("/booking", "availability:subscribe"): row("", therapist, codes(OK, OK, OK, OK, OK)),
    ("/booking", "availability:unsubscribe"): row("", therapist, codes(OK, OK, OK, OK, OK)),
}
