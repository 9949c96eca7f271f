"""Production monitoring: the prediction log in a SQL database, feedback on real prices, and
``imovsp monitor`` (input drift and live error against the model card).

- :mod:`.store`: the tables, the engine, the migrations (Alembic, shipped in ``migrations/``);
- :mod:`.recorder`: records every valuation served, in batches, off the request path;
- :mod:`.monitor` and :mod:`.page`: what ``imovsp monitor`` computes and the page it writes.
"""
