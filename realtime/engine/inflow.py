"""What one connection may send before anything costly happens: packets per second, packet size, attachments.

Every Engine.IO message a client sends passes `Inflow.admit` first (a token bucket per Engine.IO
session, in memory: no decode, no Redis, no log line). A connection over its rate has its packets
refused; one that keeps sending after being refused (`kick_after` refusals within `window` seconds) is
disconnected. Binary packets are bounded before they are buffered: at most `max_attachments`
attachments of at most `max_bytes` in total, and none for a namespace the socket has not connected.
All state of a session is dropped when it closes.

Thresholds (defaults, docs/security.md): 100 packets/s with a burst of 200 per connection, disconnect
after 1,000 refusals within 10 s, 8 attachments per packet, `MAX_PAYLOAD_BYTES` per packet.
"""
from __future__ import annotations

import dataclasses
import enum
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


class Verdict(enum.Enum):
    """What to do with one incoming message."""

    ADMIT = "admit"
    REFUSE = "refuse"   # over the rate: answer `rate_limited` when the packet asks for an ack
    KICK = "kick"       # kept flooding after being refused: close the connection


@dataclass(slots=True)
class _Flow:
    """One connection's bucket (slots, and no refusal log until its first refusal: one per idle connection)."""

    tokens: float
    stamp: float
    refusals: deque[float] | None = None  # times of refusals within the window, oldest first
    binary_budget: int = 0       # bytes the binary packet being assembled may still take
    skip_attachments: int = 0    # attachments of a refused binary packet still to arrive (discarded)


@dataclass(frozen=True)
class InflowLimits:
    """The per-connection thresholds."""

    per_second: float = 100.0
    burst: int = 200
    kick_after: int = 1000
    window: float = 10.0
    max_attachments: int = 8
    max_bytes: int = 64 * 1024


class Inflow:
    """Per-connection admission of incoming messages."""

    def __init__(self, limits: InflowLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._flows: dict[str, _Flow] = {}

    def allow_extra_bytes(self, extra: int) -> None:
        """Let packets be `extra` bytes larger than MAX_PAYLOAD_BYTES (the largest `extra_bytes` of any request)."""
        self.limits = dataclasses.replace(self.limits, max_bytes=self.limits.max_bytes + extra)

    def _flow(self, eio_sid: str) -> _Flow:
        flow = self._flows.get(eio_sid)
        if flow is None:
            flow = self._flows[eio_sid] = _Flow(float(self.limits.burst), self._clock())
        return flow

    def admit(self, eio_sid: str) -> Verdict:
        """Take one token for a message of `eio_sid`."""
        flow, now, limits = self._flow(eio_sid), self._clock(), self.limits
        flow.tokens = min(float(limits.burst), flow.tokens + (now - flow.stamp) * limits.per_second)
        flow.stamp = now
        if flow.tokens >= 1.0:
            flow.tokens -= 1.0
            return Verdict.ADMIT
        refusals = flow.refusals
        if refusals is None:
            refusals = flow.refusals = deque()
        while refusals and now - refusals[0] >= limits.window:
            refusals.popleft()
        refusals.append(now)
        return Verdict.KICK if len(refusals) >= limits.kick_after else Verdict.REFUSE

    def retry_after_ms(self, eio_sid: str) -> int:
        """How long until the connection has a token again."""
        flow = self._flow(eio_sid)
        return max(1, int((1.0 - flow.tokens) / self.limits.per_second * 1000) + 1)

    # -- binary packets --------------------------------------------------------------------------

    def attachments_allowed(self, count: int) -> bool:
        """True when a packet announcing `count` attachments may be assembled."""
        return 0 < count <= self.limits.max_attachments

    def start_binary(self, eio_sid: str) -> None:
        """A binary packet is being assembled: its attachments share `max_bytes`."""
        self._flow(eio_sid).binary_budget = self.limits.max_bytes

    def take_bytes(self, eio_sid: str, size: int) -> bool:
        """Spend `size` bytes of the packet being assembled; False when it is over budget."""
        flow = self._flow(eio_sid)
        flow.binary_budget -= size
        return flow.binary_budget >= 0

    def skip(self, eio_sid: str, attachments: int) -> None:
        """Discard the next `attachments` binary messages of `eio_sid` without buffering them."""
        self._flow(eio_sid).skip_attachments = attachments

    def skipping(self, eio_sid: str) -> bool:
        """True (and one fewer to go) when the next binary message is to be discarded."""
        flow = self._flows.get(eio_sid)
        if flow is None or flow.skip_attachments <= 0:
            return False
        flow.skip_attachments -= 1
        return True

    def forget(self, eio_sid: str) -> None:
        """The session closed: drop its state."""
        self._flows.pop(eio_sid, None)

    def __len__(self) -> int:
        return len(self._flows)
