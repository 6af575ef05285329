"""careline's Engine.IO / Socket.IO layer: subclasses of python-engineio and python-socketio.

Protocol fixes (drop each once upstream has it): `server` (Socket.IO server), `engine` (Engine.IO
server), `session` (Engine.IO session), `websocket` (aiohttp WebSocket driver).
Speed path (performance overrides): `session_output` (task-free output), `manager` (broadcast
encoded once), `packet` (JSON encoded once). Every override is listed in docs/protocol.md.
"""
from __future__ import annotations

from realtime.engine.engine import CarelineEngine
from realtime.engine.manager import FastEmitManager, FastEmitRedisManager
from realtime.engine.packet import JsonPacket
from realtime.engine.server import CarelineServer
from realtime.engine.session import CarelineSocket

__all__ = ["CarelineEngine", "CarelineServer", "CarelineSocket", "FastEmitManager", "FastEmitRedisManager",
           "JsonPacket"]
