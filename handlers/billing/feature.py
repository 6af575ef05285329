"""Billing: customers, plans, cards, subscriptions, invoices, session payments, usage and Stripe webhooks.

Without STRIPE_API_KEY the feature is built disabled: every /billing request answers `unavailable` and
the webhook route 503; nothing else of careline changes.
"""
from __future__ import annotations

from errors import Unavailable
from handlers.billing.catalog import PlanCatalog
from handlers.billing.customers import Customers
from handlers.billing.invoices import Invoices
from handlers.billing.methods import PaymentMethods
from handlers.billing.payments import RECONCILE_SECONDS, SessionPayments
from handlers.billing.receipts import Receipts
from handlers.billing.subscriptions import Subscriptions
from handlers.billing.usage import Usage
from handlers.billing.webhooks import StripeWebhooks
from handlers.events import BookingChanged
from handlers.feature import Built, Shared
from handlers.jobs import Periodic
from stores.billing.customers import CustomerStore
from stores.billing.inbox import WebhookInbox
from stores.billing.ledger import LedgerStore, RefundClaimStore
from stores.billing.payments import BookingPaymentStore
from stores.billing.requests import RequestStore
from stores.billing.stripe_api import StripeGateway
from stores.billing.subscriptions import InvoiceStore, SubscriptionStore
from stores.billing.usage import UsageStore
from stores.booking.bookings import BookingStore


class Parts:
    """The billing handlers of an enabled feature."""

    def __init__(self, plans: PlanCatalog, methods: PaymentMethods, subscriptions: Subscriptions, invoices: Invoices,
                 payments: SessionPayments, usage: Usage, webhooks: StripeWebhooks, receipts: Receipts) -> None:
        self.plans = plans
        self.methods = methods
        self.subscriptions = subscriptions
        self.invoices = invoices
        self.payments = payments
        self.usage = usage
        self.webhooks = webhooks
        self.receipts = receipts


class BillingFeature:
    """What /billing and the webhook route call; `parts` is None while Stripe is not configured."""

    def __init__(self, parts: Parts | None) -> None:
        self._parts = parts

    @property
    def enabled(self) -> bool:
        """True when Stripe is configured."""
        return self._parts is not None

    @property
    def parts(self) -> Parts:
        """The handlers, or `unavailable` without Stripe."""
        if self._parts is None:
            raise Unavailable("Billing is not available on this server")
        return self._parts


async def build(shared: Shared) -> Built[BillingFeature]:
    """Create the billing stores (ensuring their indexes) and handlers, when Stripe is configured."""
    config = shared.config
    if not config.stripe_api_key:
        return Built(BillingFeature(None))
    stores = (CustomerStore(shared.db), RequestStore(shared.db), SubscriptionStore(shared.db), InvoiceStore(shared.db),
              BookingPaymentStore(shared.db), LedgerStore(shared.db), RefundClaimStore(shared.db),
              UsageStore(shared.db), WebhookInbox(shared.db))
    for store in stores:
        await store.ensure_indexes()
    customer_store, requests, subscription_store, invoice_store, payment_store, ledger, claims, usage_store, inbox = \
        stores
    gateway = StripeGateway(config.stripe_api_key, config.stripe_api_base)
    customers = Customers(customer_store, gateway)
    plans = PlanCatalog(gateway, config.stripe_product, config.stripe_plan_cache_seconds)
    invoices = Invoices(invoice_store, customers, gateway, shared.publisher, shared.bus)
    subscriptions = Subscriptions(subscription_store, requests, customers, plans, invoices, gateway, shared.publisher,
                                  shared.clock)
    rate = config.platform_commission_rate
    payments = SessionPayments(payment_store, ledger, claims, BookingStore(shared.db), customers, gateway,
                               shared.publisher, shared.bus, shared.users, shared.clock, rate)
    usage = Usage(usage_store, shared.clock)
    webhooks = StripeWebhooks(inbox, config.stripe_webhook_secret, gateway, customers, payments, subscriptions,
                              invoices)
    webhooks.counters = shared.jobs.queue("stripe-webhooks")
    shared.bus.subscribe(BookingChanged, payments.booking_changed)
    shared.bus.subscribe(BookingChanged, usage.booking_changed)

    async def sweep() -> None:
        await webhooks.retry_due()
        await payments.retry_refunds()

    async def close() -> None:
        await webhooks.close()
        await gateway.close()

    job = Periodic("billing-sweep", config.billing_webhook_retry_seconds, sweep)
    reconciler = Periodic("billing-refund-reconciler", RECONCILE_SECONDS, payments.reconcile_refunds)
    receipts = Receipts(payment_store, BookingStore(shared.db), shared.users, shared.documents)
    parts = Parts(plans, PaymentMethods(customers, gateway), subscriptions, invoices, payments, usage, webhooks,
                  receipts)
    return Built(BillingFeature(parts), jobs=(job, reconciler), close=close)
