"""The limit of the server stack: an ASGI app that reads the request and answers a fixed JSON.

    python benchmarks/bare_asgi.py --port P --workers N

Served by ``benchmarks/api.py`` exactly as ``imovsp serve`` serves imovsp (uvicorn, asyncio
loop, httptools, imovsp's supervisor with a socket per worker, the same number of workers), so
the gap between the two is imovsp's own work.
"""

from __future__ import annotations

import argparse
from typing import Any

BODY = b'{"price":988000.0}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    while more:  # drain the body, as a real app must
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


def main() -> None:
    import uvicorn

    from imovsp.server.supervisor import Balanced

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    config = uvicorn.Config(
        "bare_asgi:app",
        host="127.0.0.1",
        port=args.port,
        workers=args.workers,
        loop="asyncio",
        http="httptools",
        access_log=False,
        server_header=False,
        log_level="warning",
    )
    Balanced(config).run()


if __name__ == "__main__":
    main()
