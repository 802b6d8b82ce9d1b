"""Committing an answered prediction's count to its metering window, exactly once.

**Exactly once.** The count is committed to the current metering window
(``saas.metering.windows``) by :class:`CommitWriter`, which writes the commit command to
Redis synchronously, between the two writes of the answer: all of it but its last byte, the
count, the last byte (``serve.responses.CommittedResponse``). A client holds a 200 only once the
last byte arrives, after the count left; a ``serve`` killed before the count leaves delivered
an incomplete response, which no client takes for an answer. So the one instant at which a
kill can make client and ledger disagree is the few microseconds between two system calls
(there, a count for a response whose last byte never left). Committing before answering,
across a Redis round trip and a group commit's wait, had left milliseconds of such exposure. A commit Redis refuses (an error reply, or no connection)
is retried through redis-py and, failing that, written to the ledger directly
(``saas.inference.services.prediction_usage_record``), so an answered request is not lost.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import deque
from dataclasses import dataclass

from redis.asyncio import Redis

from saas.metering.windows import INDEX_KEY, SEP, WINDOW_SECONDS

log = logging.getLogger(__name__)

# Commits a group of answered requests to the current window. KEYS: 1 the window index.
# ARGV: 1 window seconds, then 4 per request: group prefix (org|principal|model|), n, micros,
# cold (0/1). Returns the window number.
COMMIT_SCRIPT = """
local t = redis.call('TIME')
local w = math.floor(tonumber(t[1]) / tonumber(ARGV[1]))
local k = 'dp:mw:' .. w
for i = 2, #ARGV, 4 do
  redis.call('HINCRBY', k, ARGV[i] .. 'n', ARGV[i + 1])
  redis.call('HINCRBY', k, ARGV[i] .. 'r', 1)
  redis.call('HINCRBY', k, ARGV[i] .. 'us', ARGV[i + 2])
  if tonumber(ARGV[i + 3]) > 0 then redis.call('HINCRBY', k, ARGV[i] .. 'cold', 1) end
end
redis.call('EXPIRE', k, 604800)
redis.call('ZADD', KEYS[1], w, w)
return w
"""


@dataclass(frozen=True)
class CommitItem:
    """An answered request's count, as the commit script takes it."""

    organization_id: str
    principal: str
    model_id: str
    inputs: int
    micros: int
    cold_start: bool
    prediction_id: str

    def args(self) -> list[str | int]:
        prefix = SEP.join((self.organization_id, self.principal, self.model_id)) + SEP
        return [prefix, self.inputs, max(0, int(self.micros)), int(self.cold_start)]


def _resp(*parts: str | int | bytes) -> bytes:
    """A Redis command in RESP (https://redis.io/docs/latest/develop/reference/protocol-spec/)."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        raw = part if isinstance(part, bytes) else str(part).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(out)


class CommitWriter:
    """A Redis connection of its own whose commits are written synchronously.

    :meth:`write` puts an ``EVALSHA`` of the commit script on the socket at once (asyncio's
    ``transport.write`` hands the bytes to the kernel when the socket can take them, which
    for a few hundred bytes is always) and returns; a reader task matches Redis's replies
    to the commits in order. An error reply, or a connection lost before the reply, sends the
    commit to ``fallback`` — except that a reply lost with the connection is ambiguous (Redis
    may have applied it), and is then counted as applied and logged, never sent twice.
    """

    def __init__(self, url: str, fallback) -> None:
        from redis.asyncio.connection import parse_url

        self._options = parse_url(url)
        self._fallback = fallback
        self._sha = hashlib.sha1(COMMIT_SCRIPT.encode(), usedforsecurity=False).hexdigest()
        self._writer: asyncio.StreamWriter | None = None
        self._pending: deque[CommitItem | None] = deque()
        self._task: asyncio.Task | None = None
        self.ambiguous = 0

    async def start(self, client: Redis) -> None:
        """Load the script and connect, then keep reading replies (and reconnecting)."""
        await client.script_load(COMMIT_SCRIPT)
        self._task = asyncio.create_task(self._run(), name="commit-writer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._writer is not None:
            self._writer.close()

    def write(self, item: CommitItem) -> None:
        """Commit ``item`` now (synchronously), or hand it to the fallback."""
        writer = self._writer
        if writer is None or writer.is_closing():
            asyncio.ensure_future(self._fallback(item))
            return
        writer.write(_resp("EVALSHA", self._sha, 1, INDEX_KEY, WINDOW_SECONDS, *item.args()))
        self._pending.append(item)

    async def _connect(self) -> asyncio.StreamReader:
        o = self._options
        if "path" in o:
            reader, writer = await asyncio.open_unix_connection(o["path"])
        else:
            reader, writer = await asyncio.open_connection(
                o.get("host", "localhost"), o.get("port", 6379)
            )
        if o.get("password"):
            auth = [o["username"], o["password"]] if o.get("username") else [o["password"]]
            writer.write(_resp("AUTH", *auth))
            self._pending.append(None)
        if o.get("db"):
            writer.write(_resp("SELECT", o["db"]))
            self._pending.append(None)
        self._writer = writer
        return reader

    async def _run(self) -> None:
        while True:
            try:
                reader = await self._connect()
                while True:
                    line = await reader.readline()
                    if not line:
                        raise ConnectionError("Redis closed the connection")
                    item = self._pending.popleft() if self._pending else None
                    if line.startswith(b"-"):
                        log.warning("metering commit refused by Redis: %s", line.strip()[:200])
                        if item is not None:
                            await self._fallback(item)
                        elif b"NOAUTH" in line or b"WRONGPASS" in line or b"DB index" in line:
                            raise ConnectionError(line.decode(errors="replace"))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                writer, self._writer = self._writer, None
                if writer is not None:
                    writer.close()
                lost = [i for i in self._pending if i is not None]
                self._pending.clear()
                if lost:
                    self.ambiguous += len(lost)
                    log.error(
                        "Redis connection lost with %d metering commits unacknowledged "
                        "(counted as applied): %s",
                        len(lost),
                        exc,
                    )
                await asyncio.sleep(0.5)
