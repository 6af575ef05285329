"""What a joined participant is handed: ICE servers with short-lived TURN credentials, and a Jitsi room token."""
from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt

from config import Config
from handlers.auth import User
from stores.meetings.meetings import MeetingRecord


@dataclass(frozen=True)
class IceServer:
    """One RTCIceServer entry: STUN URLs alone, TURN URLs with a username and credential."""

    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = None


@dataclass(frozen=True)
class JitsiRoom:
    """`{domain, room, jwt}`: what a Jitsi client needs to enter the meeting's room."""

    domain: str
    room: str
    jwt: str


def turn_credential(secret: str, username: str) -> str:
    """The coturn REST-scheme password of `username`: base64(HMAC-SHA1(secret, username))."""
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class MeetingAccess:
    """Builds the ICE servers and the Jitsi block for one admitted user of one meeting."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.grace = timedelta(minutes=config.meeting_grace_minutes)

    def closes_at(self, meeting: MeetingRecord) -> datetime:
        """When the join window closes (end + grace)."""
        return meeting.end + self.grace

    def ice_servers(self, meeting: MeetingRecord, user_id: str, now: datetime) -> list[IceServer]:
        """ICE_SERVERS; TURN URLs carry credentials valid TURN_TTL_SECONDS, never beyond end + grace."""
        urls = self.config.ice_servers
        stun = tuple(url for url in urls if not url.startswith(("turn:", "turns:")))
        turn = tuple(url for url in urls if url.startswith(("turn:", "turns:")))
        servers = [IceServer(stun)] if stun else []
        secret = self.config.turn_secret
        if turn and secret:
            expiry = min(now + timedelta(seconds=self.config.turn_ttl_seconds), self.closes_at(meeting))
            username = f"{int(expiry.timestamp())}:{user_id}"
            servers.append(IceServer(turn, username, turn_credential(secret, username)))
        return servers

    @property
    def jitsi_enabled(self) -> bool:
        """True when JITSI_DOMAIN, JITSI_APP_ID and JITSI_SECRET are all set."""
        return bool(self.config.jitsi_domain and self.config.jitsi_app_id and self.config.jitsi_secret)

    def jitsi(self, meeting: MeetingRecord, user: User, now: datetime) -> JitsiRoom | None:
        """A Jitsi token (HS256, Jitsi's token authentication claims) when JITSI_* are configured."""
        domain, app_id, secret = self.config.jitsi_domain, self.config.jitsi_app_id, self.config.jitsi_secret
        if not (domain and app_id and secret):
            return None
        host = user.id == meeting.host_id
        claims = {
            "aud": "jitsi", "iss": app_id, "sub": domain, "room": meeting.room,
            "nbf": int(now.timestamp()) - 5, "exp": int(self.closes_at(meeting).timestamp()),
            "context": {"user": {"id": user.id, "name": user.name or user.id, "moderator": host},
                        "features": {"recording": host, "livestreaming": False, "screen-sharing": True}},
        }
        return JitsiRoom(domain, meeting.room, jwt.encode(claims, secret, algorithm="HS256"))
