"""The webhook inbox under load: deliveries stored together in one insert, each answered once it is durable;
events left unapplied by a stopping process are taken over at once by another."""
from __future__ import annotations

import asyncio
from typing import Any

from handlers.billing.appliers import BackgroundAppliers
from rest.app_keys import MONGO_DB
from stores.billing.inbox import InboxEvent
from tests.billing.helpers import StripePeer, billing_server, event_of, eventually, post_event, signed
from tests.conftest import StartServer


def _unknown_event() -> tuple[bytes, str]:
    """A signed delivery of a type careline keeps but does nothing with (applying it only marks it applied)."""
    return signed(event_of("customer.tax_id.created", {"id": "txi_1", "object": "tax_id"}))


async def test_deliveries_arriving_together_share_one_insert_and_each_duplicate_is_told_apart(
        start_server: StartServer, peer: StripePeer) -> None:
    server = await billing_server(start_server, peer, deliveries=False)
    inserts = server.billing.parts.webhooks.inbox._inserts  # type: ignore[attr-defined]
    write, gate, batches = inserts._write, asyncio.Event(), []

    async def held(batch: list[Any]) -> None:  # the first batch is held until the others have queued behind it
        batches.append(sorted(doc["_id"] for doc, _ in batch))
        if len(batches) == 1:
            await gate.wait()
        await write(batch)

    stored_before = _unknown_event()
    assert (await post_event(server, *stored_before))[1] == {"received": True, "duplicate": False}
    inserts._write = held
    first, twice, once = _unknown_event(), _unknown_event(), _unknown_event()
    holding = asyncio.create_task(post_event(server, *first))
    await eventually(lambda: asyncio.sleep(0, len(batches) == 1))
    queued = [asyncio.create_task(post_event(server, *delivery))
              for delivery in (stored_before, twice, twice, once)]
    await eventually(lambda: asyncio.sleep(0, len(inserts._queue) == 4))
    await asyncio.sleep(0.2)
    assert not holding.done() and not any(task.done() for task in queued)  # nothing answered before it is stored
    gate.set()
    answers = [answer for _status, answer in await asyncio.gather(holding, *queued)]
    assert len(batches) == 2 and len(batches[1]) == 4  # the four that queued up went in one insert
    assert answers[0]["duplicate"] is False and answers[1]["duplicate"] is True  # already stored before
    assert sorted(answer["duplicate"] for answer in answers[2:4]) == [False, True]  # twice in the same batch
    assert answers[4]["duplicate"] is False
    inbox = server.app[MONGO_DB]["billing_webhook_events"]
    await eventually(lambda: _count(inbox, {"applied": True}, 4))
    assert await inbox.count_documents({}) == 4


async def _count(collection: Any, query: dict[str, Any], expected: int) -> bool:
    return await collection.count_documents(query) == expected  # type: ignore[no-any-return]


async def test_a_stopping_process_gives_up_the_events_it_has_not_applied(start_server: StartServer,
                                                                         peer: StripePeer) -> None:
    first = await billing_server(start_server, peer, redis=True, deliveries=False)
    second = await billing_server(start_server, peer, hook="careline-2", redis=True, deliveries=False)
    appliers = first.billing.parts.webhooks.appliers_queue
    attempt, gate, attempted = appliers._attempt, asyncio.Event(), []

    async def stuck(event: Any) -> bool:  # the first process is slow to apply
        attempted.append(event.id)
        await gate.wait()
        return await attempt(event)

    appliers._attempt = stuck
    for _ in range(12):
        assert (await post_event(first, *_unknown_event()))[1]["duplicate"] is False
    inbox = second.app[MONGO_DB]["billing_webhook_events"]  # the same database; it stays open
    assert await inbox.count_documents({"applied": False}) == 12
    stopping = asyncio.create_task(first.stop())
    await eventually(lambda: asyncio.sleep(0, appliers._closing))
    gate.set()  # the events being applied finish; the ones still queued are released
    await stopping
    assert len(attempted) == 4  # one per applier of the process: the others had not started
    assert await inbox.count_documents({"_id": {"$in": attempted}, "applied": True}) == 4
    # The other eight were released: the second process's sweep may take them from here on (its own tick or:)
    await second.billing.parts.webhooks.retry_due()  # the leases are free now, not in 60 s
    assert await inbox.count_documents({"applied": True}) == 12


async def test_applying_waits_for_the_deliveries_being_stored(start_server: StartServer, peer: StripePeer) -> None:
    server = await billing_server(start_server, peer, deliveries=False)
    webhooks = server.billing.parts.webhooks
    inserts, gate = webhooks.inbox._inserts, asyncio.Event()  # type: ignore[attr-defined]
    write = inserts._write

    async def held(batch: list[Any]) -> None:
        await gate.wait()
        await write(batch)

    started: list[str] = []

    async def attempt(event: Any) -> bool:
        started.append(event.id)
        return True

    appliers = BackgroundAppliers(webhooks.inbox, attempt, workers=1, patience=30.0)
    event = InboxEvent("evt_waiting", "customer.tax_id.created", "txi_1", 0, {}, 0)
    inserts._write = held
    delivery = asyncio.create_task(post_event(server, *_unknown_event()))
    await eventually(lambda: asyncio.sleep(0, inserts._writer is not None))
    appliers.submit(event)
    await asyncio.sleep(0.3)
    assert started == [] and not delivery.done()  # a delivery waits for the database: applying waits too
    gate.set()
    assert (await delivery)[1]["duplicate"] is False
    await eventually(lambda: asyncio.sleep(0, started == [event.id]))
    await appliers.close()
