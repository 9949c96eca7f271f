"""The HTTP API over the Valuer: its routes, request and response schemas, dependencies and
error handlers. :mod:`imovsp.server` assembles them, with the web page, into the app it serves.
"""
