"""Notes on where a valuation's point is, for the ``notes`` of a response."""

from __future__ import annotations

from imovsp.geo import far_from_district
from imovsp.valuer import Valuation


def location_notes(v: Valuation) -> list[str]:
    """Where the point is, when the coordinates given lie far outside the district named (the
    valuation uses the point); nothing otherwise."""
    if v.location_estimated:
        return []
    p = v.property
    note = far_from_district(p.latitude, p.longitude, p.district)
    return [] if note is None else [note]
