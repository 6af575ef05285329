"""Real WebRTC peers for meeting tests: aiortc connections that signal only through careline's `signal`.

aiortc puts its candidates into the SDP it creates; these peers take them out and trickle them as separate
`candidate` signals (and an end-of-candidates one), as browsers do, so the relay carries all three kinds.
aiortc has no `restartIce()`: a `restart` signal makes the offerer replace its connection and offer again with
fresh ICE credentials, which is what an ICE restart negotiates.
"""
from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, MediaStreamTrack
from aiortc.rtcicetransport import RTCIceTransportPolicy
from aiortc.sdp import candidate_from_sdp

from tests.clients import SioClient
from tests.meetings.helpers import until


def rtc_config(ice_servers: list[dict[str, Any]], relay_only: bool = False) -> RTCConfiguration:
    """An RTCConfiguration from the `iceServers` careline handed out."""
    servers = [RTCIceServer(urls=list(s["urls"]), username=s.get("username"), credential=s.get("credential"))
               for s in ice_servers]
    policy = RTCIceTransportPolicy.RELAY if relay_only else RTCIceTransportPolicy.ALL
    return RTCConfiguration(iceServers=servers, iceTransportPolicy=policy)


def split_sdp(sdp: str) -> tuple[str, list[dict[str, Any]]]:
    """The SDP without candidate lines, and the candidates as trickle payloads."""
    kept, candidates, mid, index = [], [], None, -1
    for line in sdp.splitlines():
        if line.startswith("m="):
            index += 1
        if line.startswith("a=mid:"):
            mid = line[len("a=mid:"):]
        if line.startswith("a=candidate:"):
            candidates.append({"candidate": line[2:], "sdpMid": mid, "sdpMLineIndex": index})
        elif not line.startswith("a=end-of-candidates"):
            kept.append(line)
    return "\r\n".join(kept) + "\r\n", candidates


class Peer:
    """One side of a call: an aiortc connection plus the socket its signals travel on."""

    def __init__(self, client: SioClient, meeting_id: str, other: str, config: RTCConfiguration) -> None:
        self.client, self.meeting_id, self.other, self.config = client, meeting_id, other, config
        self.messages: asyncio.Queue[str] = asyncio.Queue()
        self.tracks: asyncio.Queue[MediaStreamTrack] = asyncio.Queue()
        self.pc = self._connection()
        self.channel: Any = None
        self._pump: asyncio.Task[None] | None = None

    def _connection(self) -> RTCPeerConnection:
        pc = RTCPeerConnection(self.config)

        @pc.on("datachannel")
        def _on_channel(channel: Any) -> None:
            self._watch(channel)

        @pc.on("track")
        def _on_track(track: MediaStreamTrack) -> None:
            self.tracks.put_nowait(track)

        return pc

    def _watch(self, channel: Any) -> None:
        self.channel = channel

        @channel.on("message")
        def _on_message(message: str) -> None:
            self.messages.put_nowait(message)

    async def send(self, kind: str, payload: Any) -> None:
        """A signal to the other peer, through careline."""
        await self.client.ok("signal", {"meetingId": self.meeting_id, "to": self.other, "type": kind,
                                        "payload": payload})

    async def _describe(self, kind: str) -> None:
        sdp, candidates = split_sdp(self.pc.localDescription.sdp)
        await self.send(kind, {"type": kind, "sdp": sdp})
        for candidate in candidates:
            await self.send("candidate", candidate)
        await self.send("candidate", {"candidate": ""})

    async def offer(self, fresh: bool = False) -> None:
        """Offer a data channel and aiortc's synthetic audio (with `fresh`, on a new connection)."""
        if fresh:
            await self.pc.close()
            self.pc = self._connection()
        self._watch(self.pc.createDataChannel("chat"))
        self.pc.addTrack(AudioStreamTrack())
        await self.pc.setLocalDescription(await self.pc.createOffer())
        await self._describe("offer")

    def follow(self, restart_offers: bool = False) -> None:
        """Answer the other peer's signals in the background (the offerer re-offers on `restart`)."""
        self._pump = asyncio.create_task(self._follow(restart_offers))

    async def _follow(self, restart_offers: bool) -> None:
        while True:
            signal = await self.client.expect("signal", timeout=3600)
            payload = signal["payload"]
            if signal["type"] == "offer":
                await self.pc.setRemoteDescription(RTCSessionDescription(payload["sdp"], "offer"))
                await self.pc.setLocalDescription(await self.pc.createAnswer())
                await self._describe("answer")
            elif signal["type"] == "answer":
                await self.pc.setRemoteDescription(RTCSessionDescription(payload["sdp"], "answer"))
            elif signal["type"] == "candidate":
                await self.pc.addIceCandidate(_candidate(payload))
            elif signal["type"] == "restart" and restart_offers:
                await self.offer(fresh=True)

    async def replace_socket(self, client: SioClient, fresh: bool = True) -> None:
        """Carry on over another socket (after a reconnect), with a new connection waiting for an offer."""
        await self.stop_following()
        self.client = client
        if fresh:
            await self.pc.close()
            self.pc = self._connection()

    async def stop_following(self) -> None:
        """Stop answering signals."""
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump

    async def connected(self, timeout: float = 20) -> None:
        """Wait until the connection state is `connected`."""
        await until(lambda: self.pc.connectionState == "connected", timeout)

    async def channel_open(self, timeout: float = 20) -> None:
        """Wait until the data channel is open."""
        await until(lambda: self.channel is not None and self.channel.readyState == "open", timeout)

    async def close(self) -> None:
        """Stop and close."""
        await self.stop_following()
        await self.pc.close()


def _candidate(payload: dict[str, Any]) -> Any:
    text = payload.get("candidate") or ""
    if not text:
        return None
    candidate = candidate_from_sdp(text.split(":", 1)[1])
    candidate.sdpMid, candidate.sdpMLineIndex = payload.get("sdpMid"), payload.get("sdpMLineIndex")
    return candidate
