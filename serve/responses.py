"""The response that counts a prediction as it delivers it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
from starlette.responses import Response

#: Answers slower than this check first that their client is still there.
SLOW_ANSWER_SECONDS = 0.25


class CommittedResponse(Response):
    """A prediction's answer, counted as it is delivered.

    The body goes out in two writes: all of it but the last byte, then — after the count has
    been written to Redis (``Answer.commit``, synchronous) — the last byte. The client holds a
    complete 200 (its ``Content-Length`` satisfied) only once that byte arrives, which is after
    the count left for Redis; a ``serve`` killed before the count leaves has delivered an
    incomplete response, which no client takes for an answer. So the only instant at which a
    kill can make the ledger and the client disagree is the few microseconds between the two
    writes, instead of the whole of a Redis round trip (``serve.admission``).

    With ``check_disconnect`` (the routes set it for requests that took long enough for a
    client to give up: queued, loading, or a flood), a client already gone is neither
    answered nor counted, and the reservation is released.
    """

    def __init__(
        self,
        content: bytes,
        *,
        commit: Callable[[], None],
        release: Callable[[], Awaitable[None]],
        headers: dict[str, str],
        check_disconnect: bool = True,
    ) -> None:
        super().__init__(content, media_type="application/json", headers=headers)
        self._commit = commit
        self._release = release
        self._check = check_disconnect

    async def __call__(self, scope, receive, send) -> None:
        if self._check and await _disconnected(receive):
            # Nobody to answer (the client gave up, e.g. a timeout): not counted, and its
            # reservation goes back. A send now would be dropped by the server silently.
            await self._release()
            return
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        body = bytes(self.body)
        await send({"type": "http.response.body", "body": body[:-1], "more_body": True})
        self._commit()
        await send({"type": "http.response.body", "body": body[-1:], "more_body": False})


async def _disconnected(receive) -> bool:
    """Whether the client has gone, without waiting: a ``receive`` that would block is
    cancelled at once (what Starlette's ``Request.is_disconnected`` does)."""
    message: dict = {}
    with anyio.CancelScope() as scope:
        scope.cancel()
        message = await receive()
    return message.get("type") == "http.disconnect"


async def until_disconnected(receive) -> None:
    """Return when the client disconnects (the body having been read already)."""
    while True:
        message = await receive()
        if message.get("type") == "http.disconnect":
            return
