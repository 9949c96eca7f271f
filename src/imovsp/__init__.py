"""imovsp: apartment valuation for São Paulo."""
