"""``GET /docs``: Swagger UI on the app's OpenAPI document, with every file served from here.

FastAPI's own page loads Swagger UI's script and stylesheet from a CDN, so it was blank
offline. Here they come from the ``swagger-ui-bundle-v2`` package (Swagger UI's release files,
Apache-2.0), the page's own settings from ``/docs/init.js`` rather than an inline script, and a
Content-Security-Policy lets the page load nothing from elsewhere, as the web page's does.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

ASSETS = "/docs/assets"
CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",  # the OpenAPI document, and the requests sent with "Try it out"
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
PAGE = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>imovsp API</title>
<link rel="stylesheet" href="{ASSETS}/swagger-ui.css">
<link rel="icon" type="image/png" href="{ASSETS}/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{ASSETS}/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
"""
# FastAPI's settings for its own page; no validator badge, which an image from elsewhere draws.
INIT = """window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
"""

router = APIRouter(include_in_schema=False)


@router.get("/docs")
async def docs_page() -> HTMLResponse:
    """Swagger UI on ``/openapi.json``."""
    return HTMLResponse(PAGE, headers={"Content-Security-Policy": CSP})


@router.get("/docs/init.js")
async def docs_init() -> Response:
    """The page's settings for Swagger UI."""
    return Response(INIT, media_type="text/javascript")


def install(app: FastAPI) -> None:
    """Serve the docs page and Swagger UI's files (create the app with ``docs_url=None``)."""
    app.include_router(router)
    app.mount(ASSETS, StaticFiles(directory=swagger_ui_path), name="docs-assets")
