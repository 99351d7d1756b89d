"""The pool a triggerer's waits share lets through as many requests as it has connections, no more."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from airflow_provider_hfep.endpoints.transport import (
    SHARED_POOL_CONNECTIONS,
    SHARED_POOL_SHARD,
    SharedPool,
    shared_async_transport,
)


class CountingPool(httpx.AsyncBaseTransport):
    """Stands for httpcore's pool: counts the requests it holds at once, answers when told to."""

    def __init__(self) -> None:
        self.holding = 0
        self.most = 0
        self.go = asyncio.Event()
        self.arrived = asyncio.Condition()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        async with self.arrived:
            self.holding += 1
            self.most = max(self.most, self.holding)
            self.arrived.notify_all()
        await self.go.wait()
        if request.url.path == "/broken":
            self.holding -= 1
            raise httpx.ConnectError("refused")
        pool = self

        class Body(httpx.AsyncByteStream):
            async def __aiter__(self):
                yield b"{}"

            async def aclose(self) -> None:
                pool.holding -= 1

        return httpx.Response(200, stream=Body())


def gated(pool: CountingPool) -> httpx.AsyncBaseTransport:
    return SharedPool([pool], SHARED_POOL_CONNECTIONS)


def test_the_gate_holds_requests_beyond_the_connections_until_answers_close():
    async def main() -> None:
        pool = CountingPool()
        async with httpx.AsyncClient(transport=gated(pool), base_url="http://127.0.0.1") as client:
            reads = [
                asyncio.ensure_future(client.get("/endpoint")) for _ in range(3 * SHARED_POOL_CONNECTIONS)
            ]
            async with pool.arrived:
                await pool.arrived.wait_for(lambda: pool.holding == SHARED_POOL_CONNECTIONS)
            for _ in range(5):  # the others are given every chance to pass the gate: none does
                await asyncio.sleep(0)
            assert pool.holding == SHARED_POOL_CONNECTIONS
            pool.go.set()
            answers = await asyncio.gather(*reads)
        assert [a.status_code for a in answers] == [200] * len(reads)
        assert pool.most == SHARED_POOL_CONNECTIONS
        assert pool.holding == 0

    asyncio.run(main())


def test_failed_and_abandoned_requests_give_their_slot_back():
    async def main() -> None:
        pool = CountingPool()
        pool.go.set()
        async with httpx.AsyncClient(transport=gated(pool), base_url="http://127.0.0.1") as client:
            for _ in range(2 * SHARED_POOL_CONNECTIONS):
                with pytest.raises(httpx.ConnectError):
                    await client.get("/broken")
                request = client.build_request("GET", "/endpoint")
                response = await client.send(request, stream=True)
                await response.aclose()  # closed unread
            # every slot free again: a full round passes the gate at once
            answers = await asyncio.gather(*(client.get("/endpoint") for _ in range(SHARED_POOL_CONNECTIONS)))
        assert len(answers) == SHARED_POOL_CONNECTIONS
        assert pool.holding == 0

    asyncio.run(main())


def test_requests_go_to_the_least_busy_shard_and_quiet_ones_keep_to_the_first():
    async def main() -> None:
        shards = [CountingPool() for _ in range(3)]
        for shard in shards:
            shard.go.set()
        pool = SharedPool(shards, 2)
        assert pool.connections == 6
        async with httpx.AsyncClient(transport=pool, base_url="http://127.0.0.1") as client:
            for _ in range(5):  # one at a time: each finds the first shard free
                await client.get("/endpoint")
            assert [shard.most for shard in shards] == [1, 0, 0]
            for shard in shards:
                shard.go.clear()
            reads = [asyncio.ensure_future(client.get("/endpoint")) for _ in range(10)]
            for shard in shards:
                async with shard.arrived:
                    await shard.arrived.wait_for(lambda shard=shard: shard.holding == 2)
            for _ in range(5):  # the other four are given every chance to pass the gate: none does
                await asyncio.sleep(0)
            assert [shard.holding for shard in shards] == [2, 2, 2]
            for shard in shards:
                shard.go.set()
            answers = await asyncio.gather(*reads)
        assert [a.status_code for a in answers] == [200] * 10
        assert [shard.most for shard in shards] == [2, 2, 2]
        assert [shard.holding for shard in shards] == [0, 0, 0]

    asyncio.run(main())


def test_the_triggerers_pool_is_shards_of_a_few_connections():
    async def main() -> None:
        pool = shared_async_transport()
        assert isinstance(pool, SharedPool)
        assert pool is shared_async_transport()  # one per event loop
        assert pool.connections == SHARED_POOL_CONNECTIONS
        assert SHARED_POOL_SHARD < SHARED_POOL_CONNECTIONS

    asyncio.run(main())


def test_a_triggerers_clients_share_an_http_client_per_token_and_never_mix_tokens(monkeypatch):
    from airflow_provider_hfep.endpoints import transport
    from airflow_provider_hfep.endpoints.client import AsyncEndpointsClient
    from airflow_provider_hfep.endpoints.errors import InvalidEndpointArgumentError

    seen: list[tuple[str, str | None]] = []

    def whoami(request: httpx.Request) -> httpx.Response:
        seen.append((request.headers["authorization"], request.headers.get("cookie")))
        # a cookie the answer sets is sent again by the same httpx client only: it shows which share one
        return httpx.Response(
            200,
            json={"name": "someone", "type": "user", "orgs": []},
            headers={"set-cookie": f"client={len(seen)}; Path=/"},
        )

    mock = httpx.MockTransport(whoami)
    monkeypatch.setattr(transport, "shared_async_transport", lambda verify=True: mock)

    async def main() -> None:
        first, second = (
            AsyncEndpointsClient("hf_token_a", shared=True),
            AsyncEndpointsClient("hf_token_a", shared=True),
        )
        other = AsyncEndpointsClient("hf_token_b", shared=True)
        own = AsyncEndpointsClient("hf_token_a", transport=mock)
        await first.whoami()
        await first.aclose()  # leaves the shared client to the second
        await second.whoami()
        await other.whoami()
        await own.whoami()
        for client in (second, other, own):
            await client.aclose()

    asyncio.run(main())
    assert seen == [
        ("Bearer hf_token_a", None),
        ("Bearer hf_token_a", "client=1"),  # the first's httpx client, cookie jar and all
        ("Bearer hf_token_b", None),  # another token: a client of its own
        ("Bearer hf_token_a", None),  # not shared: its own client
    ]
    with pytest.raises(InvalidEndpointArgumentError, match="transport"):
        AsyncEndpointsClient("hf_token_a", shared=True, transport=mock)
