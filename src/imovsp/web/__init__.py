"""The web page: a form in Brazilian Portuguese that values an apartment through the JSON API,
and a chart of the price per m² by district. Everything it needs is served from this package.

:func:`install` adds the pages and the static files to the API's app.
"""

from __future__ import annotations

from imovsp.web.pages import install, router

__all__ = ["install", "router"]
