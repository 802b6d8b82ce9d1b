"""The commit writer meters every answered prediction exactly once across lost replies: a
TCP proxy between the writer and real Redis cuts the connection after forwarding a commit
(its reply lost) or before (the commit lost), and ``CLIENT KILL`` drops the writer's connection
with many commits in flight; the window counts must come out exact every time."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable

import pytest
import redis.asyncio as aioredis
from django.conf import settings
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from saas.metering.windows import INDEX_KEY, SEP, WINDOW_SECONDS
from serve.admission import Admission
from serve.commits import COMMIT_SCRIPT, MARK_PREFIX, CommitItem, CommitWriter


class CuttingProxy:
    """A TCP proxy to Redis. :meth:`arm` makes it cut the connection at the next ``EVALSHA``:
    ``"reply"`` forwards the command, lets Redis answer and drops the answer; ``"request"``
    drops the command unsent. ``paused`` holds Redis's replies back while set."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.listen_port = 0
        self.mode: str | None = None
        self.connections = 0
        self.paused = asyncio.Event()
        self.paused.set()  # set = replies flow
        self._server: asyncio.Server | None = None

    def arm(self, mode: str) -> None:
        self.mode = mode

    async def __aenter__(self) -> CuttingProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.listen_port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc) -> None:
        assert self._server is not None
        self._server.close()

    async def _handle(self, creader, cwriter) -> None:
        self.connections += 1
        ureader, uwriter = await asyncio.open_connection(self.host, self.port)
        drop_replies = False

        async def up() -> None:
            nonlocal drop_replies
            while data := await creader.read(65536):
                if self.mode and b"EVALSHA" in data:
                    mode, self.mode = self.mode, None
                    if mode == "request":
                        return
                    drop_replies = True
                uwriter.write(data)
                await uwriter.drain()

        async def down() -> None:
            while data := await ureader.read(65536):
                if drop_replies:
                    return
                await self.paused.wait()
                cwriter.write(data)
                await cwriter.drain()

        tasks = [asyncio.ensure_future(up()), asyncio.ensure_future(down())]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for t in tasks:
            t.cancel()
        for w in (cwriter, uwriter):
            w.close()


def redis_url_via(port: int) -> str:
    db = parse_url(settings.REDIS_URL).get("db", 0)
    return f"redis://127.0.0.1:{port}/{db}"


def redis_address() -> tuple[str, int]:
    o = parse_url(settings.REDIS_URL)
    return o.get("host", "localhost"), int(o.get("port", 6379))


class Tally:
    """Items to commit for one fresh organisation, and what the windows hold for it."""

    def __init__(self) -> None:
        self.org = "org_" + uuid.uuid4().hex[:12]
        self.prefix = SEP.join((self.org, "key_t", "mdl_t")) + SEP
        self.inputs = 0
        self.requests = 0

    def item(self, inputs: int) -> CommitItem:
        self.inputs += inputs
        self.requests += 1
        return CommitItem(
            organization_id=self.org,
            principal="key_t",
            model_id="mdl_t",
            inputs=inputs,
            micros=10,
            cold_start=False,
            prediction_id="pred_" + uuid.uuid4().hex[:12],
        )

    async def counted(self, r: aioredis.Redis) -> tuple[int, int]:
        """``(inputs, requests)`` in every window for this organisation."""
        n = reqs = 0
        async for key in r.scan_iter("dp:mw:*"):
            if key == INDEX_KEY.encode():
                continue
            for field, value in (await r.hgetall(key)).items():
                if field == (self.prefix + "n").encode():
                    n += int(value)
                elif field == (self.prefix + "r").encode():
                    reqs += int(value)
        return n, reqs

    async def clean(self, r: aioredis.Redis) -> None:
        """Remove this organisation's counts, so no later flush meets an unknown tenant."""
        async for key in r.scan_iter("dp:mw:*"):
            if key == INDEX_KEY.encode():
                continue
            mine = self.prefix.encode()
            fields = [f for f in await r.hkeys(key) if isinstance(f, bytes) and f.startswith(mine)]
            if fields:
                await r.hdel(key, *fields)
            if not await r.exists(key):
                await r.zrem(INDEX_KEY, int(key.rsplit(b":", 1)[1]))


async def until(check: Callable[[], Awaitable[bool] | bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached in time")


@contextlib.asynccontextmanager
async def scenario(url: str | None = None, max_unacked: int = 4096):
    """``(writer, redis client, tally, fallback items)``: a started writer on ``url`` (Redis
    itself by default) whose fallback is the real one through redis-py (recorded)."""
    r = aioredis.Redis.from_url(settings.REDIS_URL)
    admission = Admission(r, rate_window_seconds=1.0)
    fallen: list[CommitItem] = []

    async def fallback(item: CommitItem) -> None:
        fallen.append(item)
        await admission.commit(item)

    writer = CommitWriter(url or settings.REDIS_URL, fallback=fallback, max_unacked=max_unacked)
    tally = Tally()
    await writer.start(r)
    try:
        await until(lambda: writer.connected)
        yield writer, r, tally, fallen
    finally:
        await writer.stop()
        await tally.clean(r)
        await r.delete(MARK_PREFIX + writer.writer_id)
        await r.aclose()


async def settled(writer: CommitWriter, r: aioredis.Redis, tally: Tally) -> None:
    await until(lambda: writer.connected and writer.unacknowledged == 0)
    await until(lambda: _equal(r, tally))


async def _equal(r: aioredis.Redis, tally: Tally) -> bool:
    return await tally.counted(r) == (tally.inputs, tally.requests)


def test_a_reply_lost_after_redis_applied_the_commit_is_not_counted_twice():
    async def main() -> None:
        async with CuttingProxy(*redis_address()) as proxy:
            async with scenario(redis_url_via(proxy.listen_port)) as (writer, r, tally, fallen):
                writer.write(tally.item(2))
                await until(lambda: writer.unacknowledged == 0)
                proxy.arm("reply")
                writer.write(tally.item(3))
                await until(lambda: proxy.connections == 2)  # cut, and reconnected
                await settled(writer, r, tally)
                writer.write(tally.item(5))  # the reconnected writer goes on counting
                await settled(writer, r, tally)
                await asyncio.sleep(0.2)  # nothing more arrives late
                assert await tally.counted(r) == (10, 3)
                assert (writer.recovered, writer.resent, fallen) == (1, 0, [])
                assert int(await r.get(MARK_PREFIX + writer.writer_id)) == 3
                assert 0 < await r.ttl(MARK_PREFIX + writer.writer_id) <= 86400

    asyncio.run(main())


def test_a_commit_lost_before_reaching_redis_is_resent_and_counted_once():
    async def main() -> None:
        async with CuttingProxy(*redis_address()) as proxy:
            async with scenario(redis_url_via(proxy.listen_port)) as (writer, r, tally, fallen):
                proxy.arm("request")
                writer.write(tally.item(3))
                await until(lambda: proxy.connections == 2)
                await settled(writer, r, tally)
                await asyncio.sleep(0.2)
                assert await tally.counted(r) == (3, 1)
                assert (writer.recovered, writer.resent, fallen) == (0, 1, [])

    asyncio.run(main())


def test_many_commits_in_flight_across_client_kills_are_counted_exactly():
    async def main() -> None:
        async with scenario() as (writer, r, tally, fallen):
            killer = aioredis.Redis.from_url(settings.REDIS_URL)
            name = f"trainyard-commits-{writer.writer_id}"
            try:
                for _round in range(3):
                    for i in range(60):
                        writer.write(tally.item(1 + i % 4))
                    (client,) = [c for c in await killer.client_list() if c["name"] == name]
                    await killer.client_kill_filter(_id=client["id"])
                    # Written right after the kill, before the writer can notice it: these
                    # are lost with the connection (or go to the fallback).
                    for i in range(60):
                        writer.write(tally.item(1 + i % 3))
                    await until(lambda: writer.connected)
                    for i in range(30):
                        writer.write(tally.item(2))
                        if i % 5 == 0:
                            await asyncio.sleep(0)
                await settled(writer, r, tally)
                await asyncio.sleep(0.3)
                assert await tally.counted(r) == (tally.inputs, tally.requests)
                assert tally.requests == 450
                assert writer.resent + writer.recovered + len(fallen) > 0
            finally:
                await killer.aclose()

    asyncio.run(main())


def test_commits_past_the_unacknowledged_bound_go_to_the_fallback_unsent():
    async def main() -> None:
        async with CuttingProxy(*redis_address()) as proxy:
            url = redis_url_via(proxy.listen_port)
            async with scenario(url, max_unacked=3) as (writer, r, tally, fallen):
                proxy.paused.clear()  # Redis's replies held back: nothing is acknowledged
                items = [tally.item(k) for k in (1, 2, 3, 4, 5)]
                for item in items:
                    writer.write(item)
                assert writer.unacknowledged == 3
                await until(lambda: len(fallen) == 2)
                assert fallen == items[3:]
                proxy.paused.set()
                await settled(writer, r, tally)
                assert await tally.counted(r) == (15, 5)

    asyncio.run(main())


def test_commit_script_applies_a_writer_sequence_once():
    """Re-sent or retried commits (same writer, same or lower sequence) change nothing."""

    async def main() -> None:
        r = aioredis.Redis.from_url(settings.REDIS_URL)
        script = r.register_script(COMMIT_SCRIPT)
        tally = Tally()
        wid = "t" + uuid.uuid4().hex[:15]
        item = tally.item(4)
        try:
            args = [WINDOW_SECONDS, wid, 7, *item.args()]
            assert int(await script(keys=[INDEX_KEY], args=args)) > 0
            assert int(await script(keys=[INDEX_KEY], args=args)) == 0  # same seq: skipped
            lower = [WINDOW_SECONDS, wid, 6, *item.args()]
            assert int(await script(keys=[INDEX_KEY], args=lower)) == 0
            assert await tally.counted(r) == (4, 1)
            higher = [WINDOW_SECONDS, wid, 8, *item.args()]
            assert int(await script(keys=[INDEX_KEY], args=higher)) > 0
            assert await tally.counted(r) == (8, 2)
            # No writer id: not idempotent (kept for callers that need none).
            plain = [WINDOW_SECONDS, "", 0, *item.args()]
            assert int(await script(keys=[INDEX_KEY], args=plain)) > 0
            assert await tally.counted(r) == (12, 3)
        finally:
            await tally.clean(r)
            await r.delete(MARK_PREFIX + wid)
            await r.aclose()

    asyncio.run(main())


@pytest.mark.parametrize("groups", [1, 3])
def test_fallback_groups_are_counted_once_each(groups: int):
    """The redis-py fallback: a group per call, each with a fresh writer id (so a retry of one
    call is skipped, and distinct groups never skip each other)."""

    async def main() -> None:
        r = aioredis.Redis.from_url(settings.REDIS_URL)
        admission = Admission(r, rate_window_seconds=1.0)
        tally = Tally()
        try:
            for _ in range(groups):
                await asyncio.gather(*(admission.commit(tally.item(2)) for _ in range(4)))
            assert await tally.counted(r) == (8 * groups, 4 * groups)
        finally:
            await tally.clean(r)
            await r.aclose()

    asyncio.run(main())


@pytest.mark.parametrize("retries", [3, 0])
def test_a_fallback_commit_whose_reply_is_lost_is_counted_once(retries: int):
    """redis-py's retry re-sends the group (skipped by its mark); with no retry left, the
    group's mark, set after the loss, tells it was applied."""

    async def main() -> None:
        async with CuttingProxy(*redis_address()) as proxy:
            r = aioredis.Redis.from_url(
                redis_url_via(proxy.listen_port), retry=Retry(NoBackoff(), retries)
            )
            direct = aioredis.Redis.from_url(settings.REDIS_URL)
            tally = Tally()
            try:
                admission = Admission(r, rate_window_seconds=1.0)
                await r.ping()
                proxy.arm("reply")
                assert await admission.commit(tally.item(3)) == 0  # applied, reply lost
                assert proxy.connections == 2
                assert await tally.counted(direct) == (3, 1)
            finally:
                await tally.clean(direct)
                await r.aclose()
                await direct.aclose()

    asyncio.run(main())


def test_a_fallback_commit_lost_before_redis_raises_and_is_fenced_off():
    """Not applied: the caller (the ledger fallback) gets the error, and the group's mark is
    set, so no late copy of the command could still apply it."""

    async def main() -> None:
        async with CuttingProxy(*redis_address()) as proxy:
            r = aioredis.Redis.from_url(
                redis_url_via(proxy.listen_port), retry=Retry(NoBackoff(), 0)
            )
            direct = aioredis.Redis.from_url(settings.REDIS_URL)
            tally = Tally()
            before = {k async for k in direct.scan_iter(MARK_PREFIX + "f*")}
            try:
                admission = Admission(r, rate_window_seconds=1.0)
                await r.ping()
                proxy.arm("request")
                with pytest.raises(RedisConnectionError):
                    await admission.commit(tally.item(3))
                assert await tally.counted(direct) == (0, 0)
                (mark,) = {k async for k in direct.scan_iter(MARK_PREFIX + "f*")} - before
                late = [WINDOW_SECONDS, mark.decode()[len(MARK_PREFIX) :], 1, *tally.item(3).args()]
                script = direct.register_script(COMMIT_SCRIPT)
                assert int(await script(keys=[INDEX_KEY], args=late)) == 0
                assert await tally.counted(direct) == (0, 0)
                await direct.delete(mark)
            finally:
                await tally.clean(direct)
                await r.aclose()
                await direct.aclose()

    asyncio.run(main())


def test_stop_waits_for_the_commits_in_flight_and_settles_a_lost_connection():
    async def main() -> None:
        async with CuttingProxy(*redis_address()) as proxy:
            async with scenario(redis_url_via(proxy.listen_port)) as (writer, r, tally, fallen):
                proxy.arm("request")
                for k in range(20):
                    writer.write(tally.item(1 + k % 2))
                await writer.stop()  # at once: the cut, the reconnect, the re-send
                assert writer.unacknowledged == 0
                assert await tally.counted(r) == (30, 20)
                assert (writer.resent, fallen) == (20, [])

    asyncio.run(main())
