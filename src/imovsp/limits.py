"""What a property to value, and a valuation's options, may be: declared once, for the API's
schemas, the CLI's options and batch scoring's validation, so that the three take and refuse
the same values.

Plain numbers that import nothing: the CLI reads them before it loads the scientific stack.
"""

from __future__ import annotations

NEGOTIATIONS = ("sale", "rent")
# Private area, m²: the training listings run from 30 to 880.
SIZE_M2_MIN, SIZE_M2_MAX = 10, 2000
# Whole numbers from 0 to these.
COUNTS_MAX = {"rooms": 20, "toilets": 20, "suites": 20, "parking": 30}
# What can be a price (BRL): a month's rent from R$ 100 (the cheapest listed is R$ 480), a sale
# up to R$ 1 billion (the dearest listed, R$ 10 million). A condo fee from R$ 1 a month
# (listings give 1), 0 meaning unknown.
PRICE_MIN, PRICE_MAX = 100.0, 1e9
CONDO_FEE_MIN, CONDO_FEE_MAX = 1.0, 100_000.0
LATITUDE_MIN, LATITUDE_MAX = -90, 90
LONGITUDE_MIN, LONGITUDE_MAX = -180, 180

# A valuation's options: the range's coverage and how many comparable listings.
DEFAULT_LEVEL, MIN_LEVEL, MAX_LEVEL = 0.8, 0.5, 0.95
MAX_COMPARABLES = 20
