"""The HTTP floor: a Starlette endpoint that reads the body and returns a constant.

Served as ``uvicorn bare:app`` with the settings ``loopml serve`` uses (uvloop, httptools,
no access log), so the gap to it is what loopml adds, not the server stack.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

BODY = b'{"predictions":[0],"probabilities":[[0.5,0.5]]}'


async def predict(request: Request) -> Response:
    """Return the same small JSON answer whatever the request (the body is read, not parsed)."""
    await request.body()
    return Response(BODY, media_type="application/json")


app = Starlette(routes=[Route("/predict", predict, methods=["POST"])])
