"""A session payment receipt as a PDF (fpdf2): the parties, the session's date, what was paid and refunded."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fpdf import FPDF

from handlers.billing.money import format_amount
from handlers.documents import pdf_text


@dataclass(frozen=True)
class ReceiptFacts:
    """What a receipt says (amounts in minor units)."""

    booking_id: str
    client_name: str
    therapist_name: str
    session_start: datetime
    currency: str
    price: int
    tip: int
    refunded: int
    paid_at: datetime


def receipt_pdf(facts: ReceiptFacts) -> bytes:
    """The receipt's bytes (a one-page PDF)."""
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, "careline - payment receipt", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=11)
    money = lambda amount: format_amount(amount, facts.currency)  # noqa: E731
    rows = [("Receipt for booking", facts.booking_id), ("Client", facts.client_name),
            ("Therapist", facts.therapist_name),
            ("Session", facts.session_start.strftime("%a %d %b %Y, %H:%M UTC")),
            ("Paid on", facts.paid_at.strftime("%d %b %Y")), ("Session price", money(facts.price)),
            ("Tip", money(facts.tip)), ("Total paid", money(facts.price + facts.tip))]
    if facts.refunded:
        rows += [("Refunded", money(facts.refunded)), ("Net paid", money(facts.price + facts.tip - facts.refunded))]
    for label, value in rows:
        pdf.cell(55, 8, pdf_text(label))
        pdf.cell(0, 8, pdf_text(value), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())

