"""`booking:receipt`: a PDF receipt of a paid session for its client and therapist, through a one-time link."""
from __future__ import annotations

from errors import NotFound, PreconditionFailed
from handlers.auth import User
from handlers.billing.receipt_pdf import ReceiptFacts, receipt_pdf
from handlers.documents import DocumentLink, DocumentLinks
from stores.billing.payments import BookingPaymentStore
from stores.booking.bookings import BookingStore
from stores.users import UserStore

PAID = ("paid", "partially_refunded", "refunded")


class Receipts:
    """Receipts of session payments."""

    def __init__(self, payments: BookingPaymentStore, bookings: BookingStore, users: UserStore,
                 documents: DocumentLinks) -> None:
        self.payments, self.bookings, self.users, self.documents = payments, bookings, users, documents

    async def receipt(self, user: User, booking_id: str) -> DocumentLink:
        """The receipt of a paid booking, for its client or therapist only (`not_found` for anyone else)."""
        booking = await self.bookings.get(booking_id)
        if booking is None or user.id not in (booking.client_id, booking.therapist_id):
            raise NotFound("No such booking")
        payment = await self.payments.get(booking_id)
        if payment is None or payment.status not in PAID:
            raise PreconditionFailed("The booking has not been paid")
        people = await self.users.get_many([booking.client_id, booking.therapist_id])
        name = lambda user_id: (people[user_id].name if user_id in people else None) or user_id  # noqa: E731
        facts = ReceiptFacts(booking.id, name(booking.client_id), name(booking.therapist_id), booking.start,
                             payment.currency, payment.amount, payment.tip, payment.refunded + payment.refunded_tip,
                             payment.updated_at)
        return await self.documents.issue(user.id, f"careline-receipt-{booking.id}.pdf", "application/pdf",
                                          receipt_pdf(facts))
