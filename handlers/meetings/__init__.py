"""Meetings: session video rooms (CONTRACT §4)."""
