"""Money arithmetic in minor units: commission and pro-rata shares, rounded half-up to the minor unit."""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal


def half_up(value: Decimal) -> int:
    """A non-negative amount rounded half-up to a whole minor unit."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def commission(amount: int, rate: float) -> int:
    """The platform's commission of a service amount (tips are never commissioned)."""
    return half_up(Decimal(amount) * Decimal(str(rate)))


def percent_of(amount: int, percent: int) -> int:
    """`percent` % of an amount."""
    return half_up(Decimal(amount) * percent / 100)


def pro_rata(part: int, whole: int, value: int) -> int:
    """`value` scaled by part/whole (the commission given back with a partial refund)."""
    return half_up(Decimal(value) * part / whole) if whole else 0


ZERO_DECIMAL = frozenset({"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd",
                          "vuv", "xaf", "xof", "xpf"})


def format_amount(amount: int, currency: str) -> str:
    """`90.00 EUR` from 9000 and "eur" (zero-decimal currencies as they are: `500 JPY`)."""
    if currency in ZERO_DECIMAL:
        return f"{amount} {currency.upper()}"
    return f"{amount // 100}.{amount % 100:02d} {currency.upper()}"
