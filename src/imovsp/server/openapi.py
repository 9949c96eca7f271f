"""Write the OpenAPI document that the API serves: ``python -m imovsp.server.openapi [OUT]``.

``docs/openapi.json`` is this output (``make openapi``); a test checks that it is still what
the app serves. It imports into Insomnia, Postman or Swagger UI with a request per endpoint.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from imovsp.server.app import create_app
from imovsp.settings import Settings

DEFAULT = Path("docs/openapi.json")


def document() -> dict[str, Any]:
    # Building the schema needs no model: the app is not started.
    schema: dict[str, Any] = create_app(Settings()).openapi()
    return schema


def render() -> str:
    return json.dumps(document(), indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    out.write_text(render(), encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
