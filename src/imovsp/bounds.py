"""The values a property's fields and a price may take, declared once.

The API's schemas (``imovsp.api.schemas``), the CLI's options (``imovsp predict``) and batch
scoring (:func:`imovsp.data.validate` of rows to value) check a property against these; the
validation of training listings checks prices with them and is otherwise looser, since
training keeps what the portal published. Plain numbers: the CLI imports this module before
any command runs.
"""

from __future__ import annotations

SIZE_M2 = (10, 2000)  # private area, m² (the training data runs from 30 to 880)
COUNTS = {"rooms": (0, 20), "toilets": (0, 20), "suites": (0, 20), "parking": (0, 30)}
LATITUDE = (-90, 90)
LONGITUDE = (-180, 180)
# What can be a price (BRL): a month's rent from R$ 100 (the cheapest listed is R$ 480), a sale up
# to R$ 1 billion (the dearest listed, R$ 10 million). A condo fee from R$ 1 a month (listings
# give 1), 0 meaning unknown.
PRICE_MIN, PRICE_MAX = 100.0, 1e9
CONDO_FEE_MIN, CONDO_FEE_MAX = 1.0, 100_000.0
NEGOTIATIONS = ("sale", "rent")
# A valuation's options: the range's nominal coverage, and how many comparable listings.
DEFAULT_LEVEL, MIN_LEVEL, MAX_LEVEL = 0.8, 0.5, 0.95
MAX_COMPARABLES = 20
