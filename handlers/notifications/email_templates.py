"""What a notification email says: the notifications' own neutral titles and bodies (no message text, note,
answer or score ever reaches a notification), a link to the app, and how to stop these emails."""
from __future__ import annotations

from html import escape

from stores.notifications.email import EmailItem
from stores.notifications.smtp import OutgoingEmail

CATEGORY_WORDS = {"booking": "your sessions", "message": "messages", "worksheet": "worksheets",
                  "billing": "billing", "meeting": "your sessions", "system": "careline"}


def render(to: str, category: str, items: list[EmailItem], app_url: str, unsubscribe_url: str) -> OutgoingEmail:
    """One email for one or more notifications of one category (a digest when several)."""
    about = CATEGORY_WORDS.get(category, "careline")
    subject = items[0].title if len(items) == 1 else f"{len(items)} updates about {about}"
    lines = [f"- {item.title}: {item.body}" if item.body else f"- {item.title}" for item in items]
    text = "\n".join(["Hello,", "", "There is news about " + about + " on careline:", "", *lines, "",
                      f"Open careline: {app_url}", "",
                      f"To stop these emails about {about}: {unsubscribe_url}"])
    listed = "".join(f"<li><strong>{escape(item.title)}</strong>{': ' + escape(item.body) if item.body else ''}</li>"
                     for item in items)
    html = (f"<p>Hello,</p><p>There is news about {escape(about)} on careline:</p><ul>{listed}</ul>"
            f'<p><a href="{escape(app_url)}">Open careline</a></p>'
            f'<p style="font-size:small"><a href="{escape(unsubscribe_url)}">Stop these emails about '
            f"{escape(about)}</a></p>")
    headers = {"List-Unsubscribe": f"<{unsubscribe_url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    return OutgoingEmail(to, subject, text, html, headers)


def confirmation(to: str, link: str, app_url: str) -> OutgoingEmail:
    """The email that asks to confirm a new address (its link switches careline's emails to it)."""
    text = ("Hello,\n\nPlease confirm that careline may send its emails to this address:\n"
            f"{link}\n\nIf you did not ask for this, ignore this email.\n\ncareline: {app_url}\n")
    html = (f'<p>Hello,</p><p><a href="{escape(link)}">Confirm that careline may send its emails to this '
            "address</a>.</p><p>If you did not ask for this, ignore this email.</p>")
    return OutgoingEmail(to, "Confirm your email address for careline", text, html)
