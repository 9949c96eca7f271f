"""Numbers as Brazilians read them: ``R$ 1.234.567``, ``35,40``. ``static/app.js`` formats
the same way in the browser."""

from __future__ import annotations

_SWAP = str.maketrans(",.", ".,")


def number(value: float, decimals: int = 0) -> str:
    """``1234567.8`` → ``1.234.568``; with ``decimals=2`` → ``1.234.567,80``."""
    return f"{value:,.{decimals}f}".translate(_SWAP)


NBSP = "\u00a0"  # "R$" never ends a line on its own


def brl(value: float, decimals: int = 0) -> str:
    """``R$ 1.234.567``, with a no-break space."""
    return f"R${NBSP}{number(value, decimals)}"


def price_m2(value: float, negotiation: str) -> str:
    """Price per m²: whole reais for sales (thousands per m²), centavos for rents (tens)."""
    return brl(value, 0 if negotiation == "sale" else 2)
