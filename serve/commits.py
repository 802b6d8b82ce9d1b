"""Committing an answered prediction's count to its metering window, exactly once.

**When.** The count is committed to the current metering window (``saas.metering.windows``)
by :class:`CommitWriter`, which writes the commit command to Redis synchronously, between the
two writes of the answer: all of it but its last byte, the count, the last byte
(``serve.responses.CommittedResponse``). A client holds a 200 only once the last byte arrives,
after the count left; a ``serve`` killed before the count leaves delivered an incomplete
response, which no client takes for an answer. So the one instant at which a kill can make
client and ledger disagree is the few microseconds between two system calls (there, a count
for a response whose last byte never left).

**Exactly once, across lost replies.** A commit whose reply dies with its connection may or
may not have been applied (Redis killed after running it but before its AOF reached the disk,
a proxy or the network cutting the reply, ``CLIENT KILL``). So every commit is idempotent and
re-sendable: each writer has a random id, gives each commit the next sequence number, and the
commit script keeps the highest sequence it applied per writer (``dp:cw:<writer>``, a day's
TTL) in the same script call as the counts, so the mark is persisted or lost atomically with
them, and skips a commit whose sequence is not above it. Commands on one connection are applied
in order, so the applied commits of a lost connection are always a prefix of the unacknowledged
ones. On the next connection the writer first reads the mark (the applied prefix is then
acknowledged), re-sends the rest with their own sequence numbers, and only then takes new
commits; were a late command of the dead connection to land after all, the mark makes one of
the two copies a no-op. At most :attr:`CommitWriter.max_unacked` commits are kept waiting for
a reply: past it a new commit is not written to the connection but handed to the fallback,
like every commit made while the writer has no connection — those were never sent, so they
are not ambiguous.

**Fallback.** A commit Redis refuses (an error reply: it was not applied; or no connection, or
too many unacknowledged) goes through redis-py (``serve.admission.Admission.commit``: a group
of them is one script call with a fresh writer id of its own, so redis-py's retries of it are
skipped if an earlier attempt was applied; when the last attempt's reply is lost, setting the
group's mark tells whether it was applied, and fences it off if not) and, failing that,
straight to the ledger (``saas.inference.services.prediction_usage_record``), so an answered
request is not lost. Left open: a redis-py attempt that Redis applied just before becoming
unreachable to the retries and the fence as well is written to the ledger too (counted
twice); commits still unacknowledged when ``serve`` stops with Redis unreachable are logged,
not counted; and a commit Redis refused (``-OOM`` under ``noeviction``) whose error reply is
lost with the connection, behind a later commit that Redis applied, is taken as applied.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections import deque
from dataclasses import dataclass

from redis.asyncio import Redis

from saas.metering.windows import INDEX_KEY, SEP, WINDOW_SECONDS

log = logging.getLogger(__name__)

# How long a writer's applied-sequence mark lives: far longer than any reconnect.
MARK_TTL_SECONDS = 86400
MARK_PREFIX = "dp:cw:"

# Commits a group of answered requests to the current window, once per (writer, seq).
# KEYS: 1 the window index. ARGV: 1 window seconds, 2 writer id ('' = not idempotent),
# 3 sequence number (an integer, increasing per writer), then 4 per request: group prefix
# (org|principal|model|), n, micros, cold (0/1). Returns the window number, or 0 when the
# writer's mark shows this sequence already applied (then nothing is changed).
COMMIT_SCRIPT = """
if ARGV[2] ~= '' then
  local mark = 'dp:cw:' .. ARGV[2]
  if tonumber(ARGV[3]) <= tonumber(redis.call('GET', mark) or '0') then return 0 end
  redis.call('SET', mark, ARGV[3], 'EX', 86400)
end
local t = redis.call('TIME')
local w = math.floor(tonumber(t[1]) / tonumber(ARGV[1]))
local k = 'dp:mw:' .. w
for i = 4, #ARGV, 4 do
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


async def _reply(reader: asyncio.StreamReader) -> bytes | None:
    """One RESP2 reply that is a status, integer, error or bulk string: its payload (bulk:
    ``None`` for nil). Raises ``ConnectionError`` on an error reply or a closed connection."""
    line = await reader.readline()
    if not line:
        raise ConnectionError("Redis closed the connection")
    if line.startswith(b"-"):
        raise ConnectionError(line.strip().decode(errors="replace")[:200])
    if line.startswith(b"$"):
        size = int(line[1:])
        if size < 0:
            return None
        return (await reader.readexactly(size + 2))[:-2]
    return line[1:].strip()


class CommitWriter:
    """A Redis connection of its own whose commits are written synchronously, exactly once.

    :meth:`write` puts an ``EVALSHA`` of the commit script, with this writer's id
    (:attr:`writer_id`, 16 hex digits) and the next sequence number, on the socket at once
    (asyncio's ``transport.write`` hands the bytes to the kernel when the socket can take
    them, which for a few hundred bytes is always) and returns; a reader task matches Redis's
    replies to the commits in order. An error reply sends the commit to ``fallback`` (an
    ``async (CommitItem) -> None``). The commits whose reply dies with the connection are kept
    and, on the next connection, acknowledged if the writer's mark shows them applied, else
    re-sent (:attr:`resent` counts those) before any new commit (see the module docstring).

    ``max_unacked`` bounds the commits awaiting a reply (and so those kept across a lost
    connection); a commit past it goes to ``fallback`` unsent.
    """

    def __init__(self, url: str, fallback, *, max_unacked: int = 4096) -> None:
        from redis.asyncio.connection import parse_url

        self._options = parse_url(url)
        self._fallback = fallback
        self._sha = hashlib.sha1(COMMIT_SCRIPT.encode(), usedforsecurity=False).hexdigest()
        self.writer_id = secrets.token_hex(8)
        self.max_unacked = max_unacked
        self._seq = 0
        self._writer: asyncio.StreamWriter | None = None
        # (seq, item) of the commits written and not yet answered, oldest first.
        self._pending: deque[tuple[int, CommitItem]] = deque()
        self._task: asyncio.Task | None = None
        self.resent = 0  # commits re-sent after a lost reply (they were not applied)
        self.recovered = 0  # commits whose reply was lost but which the mark shows applied

    @property
    def connected(self) -> bool:
        """Whether :meth:`write` sends on the connection (else it hands to the fallback)."""
        return self._writer is not None and not self._writer.is_closing()

    @property
    def unacknowledged(self) -> int:
        """Commits sent (or to re-send) whose reply has not arrived."""
        return len(self._pending)

    async def start(self, client: Redis) -> None:
        """Load the script and connect, then keep reading replies (and reconnecting)."""
        await client.script_load(COMMIT_SCRIPT)
        self._task = asyncio.create_task(self._run(), name="commit-writer")

    async def stop(self, drain_seconds: float = 2.0) -> None:
        """Wait up to ``drain_seconds`` for the replies of the commits in flight (a lost
        connection is re-made and settled meanwhile), then close."""
        deadline = asyncio.get_running_loop().time() + drain_seconds
        while self._pending and self._task is not None and not self._task.done():
            if asyncio.get_running_loop().time() >= deadline:
                break
            await asyncio.sleep(0.01)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._writer is not None:
            self._writer.close()
        if self._pending:
            log.error(
                "commit writer %s stopped with %d metering commits unacknowledged "
                "(applied or not, unknown: Redis unreachable)",
                self.writer_id,
                len(self._pending),
            )

    def write(self, item: CommitItem) -> None:
        """Commit ``item`` now (synchronously), or hand it to the fallback."""
        writer = self._writer
        if writer is None or writer.is_closing() or len(self._pending) >= self.max_unacked:
            asyncio.ensure_future(self._fallback(item))
            return
        self._seq += 1
        writer.write(self._command(self._seq, item))
        self._pending.append((self._seq, item))

    def _command(self, seq: int, item: CommitItem) -> bytes:
        return _resp(
            "EVALSHA", self._sha, 1, INDEX_KEY, WINDOW_SECONDS, self.writer_id, seq, *item.args()
        )

    async def _connect(self) -> asyncio.StreamReader:
        """Connect, authenticate, load the script, settle the commits of the last connection
        (acknowledge the applied prefix, re-send the rest), and only then take new ones."""
        o = self._options
        if "path" in o:
            reader, writer = await asyncio.open_unix_connection(o["path"])
        else:
            reader, writer = await asyncio.open_connection(
                o.get("host", "localhost"), o.get("port", 6379)
            )
        try:
            setup = []
            if o.get("password"):
                auth = [o["username"], o["password"]] if o.get("username") else [o["password"]]
                setup.append(_resp("AUTH", *auth))
            if o.get("db"):
                setup.append(_resp("SELECT", o["db"]))
            setup.append(_resp("CLIENT", "SETNAME", f"trainyard-commits-{self.writer_id}"))
            # A restarted Redis has no scripts: loaded here, a re-sent commit cannot be refused.
            setup.append(_resp("SCRIPT", "LOAD", COMMIT_SCRIPT))
            setup.append(_resp("GET", MARK_PREFIX + self.writer_id))
            writer.write(b"".join(setup))
            for _ in setup[:-1]:
                await _reply(reader)
            mark = await _reply(reader)
        except BaseException:
            writer.close()
            raise
        applied = int(mark) if mark else 0
        while self._pending and self._pending[0][0] <= applied:
            self._pending.popleft()
            self.recovered += 1
        if self._pending:
            self.resent += len(self._pending)
            log.warning(
                "re-sending %d metering commits whose reply was lost (not applied)",
                len(self._pending),
            )
            writer.write(b"".join(self._command(seq, item) for seq, item in self._pending))
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
                    _, item = self._pending.popleft()
                    if line.startswith(b"-"):  # refused: not applied
                        log.warning("metering commit refused by Redis: %s", line.strip()[:200])
                        await self._fallback(item)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                writer, self._writer = self._writer, None
                if writer is not None:
                    writer.close()
                if self._pending:
                    # Kept, to settle on the next connection (see _connect).
                    log.error(
                        "Redis connection lost with %d metering commits unacknowledged "
                        "(kept, to re-send unless applied): %s",
                        len(self._pending),
                        exc,
                    )
                await asyncio.sleep(0.5)
