"""Meetings: rooms, seats, recordings and the audit log."""
