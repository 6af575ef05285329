"""careline's Socket.IO / Engine.IO server classes (protocol fixes and fast paths live here)."""
from __future__ import annotations

import socketio


class CarelineServer(socketio.AsyncServer):
    """The Socket.IO server careline runs; a drop-in subclass of python-socketio's AsyncServer."""
