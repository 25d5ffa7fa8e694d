"""The floor under the relay's start-up time: a bare Starlette app with one ``/readyz`` route, on
uvicorn with the relay's server options, importing nothing of the service.

    python -m bench.startup_floor PORT
"""

from __future__ import annotations

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def readyz(_: Request) -> JSONResponse:
    return JSONResponse({"status": "ready"})


app = Starlette(routes=[Route("/readyz", readyz, methods=["GET"])])


def main() -> None:
    uvicorn.run(
        app, host="127.0.0.1", port=int(sys.argv[1]), log_config=None, access_log=False,
        server_header=False, ws="none", lifespan="on",
    )  # fmt: skip


if __name__ == "__main__":
    main()
