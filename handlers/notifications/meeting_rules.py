"""Meeting notices as notifications: neutral words only (no names, notes or reasons)."""
from __future__ import annotations

from handlers.events import EventBus, MeetingNotice
from handlers.notifications.handler import NotificationHandler

WORDS = {
    "starting": ("Your session is starting", "The host is in the meeting room.", True),
    "admitted": ("You were let in", "The host admitted you to the session.", False),
    "denied": ("Not admitted", "The host did not admit you to the session.", False),
    "recording_started": ("Recording started", "This session is being recorded.", False),
    "no_show": ("Session missed", "The session was marked as missed.", True),
}


class MeetingRules:
    """Turns `MeetingNotice` events into notifications (category `meeting`)."""

    def __init__(self, notifications: NotificationHandler) -> None:
        self._notifications = notifications

    async def meeting_notice(self, event: MeetingNotice) -> None:
        """Each listed user hears of it; notices that happen once per meeting are deduplicated."""
        title, body, once = WORDS[event.kind]
        for user_id in event.user_ids:
            dedupe = f"meeting.{event.kind}:{event.meeting_id}:{user_id}" if once else None
            await self._notifications.notify(user_id, category="meeting", title=title, body=body,
                                             data={"meetingId": event.meeting_id}, dedupe_key=dedupe)


def subscribe(bus: EventBus, notifications: NotificationHandler) -> MeetingRules:
    """Wire the meeting rules to the bus."""
    rules = MeetingRules(notifications)
    bus.subscribe(MeetingNotice, rules.meeting_notice)
    return rules
