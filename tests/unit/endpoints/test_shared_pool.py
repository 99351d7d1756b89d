"""The pool a triggerer's waits share lets through as many requests as it has connections, no more."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from airflow_provider_hfep.endpoints.transport import SHARED_POOL_CONNECTIONS, SharedPool


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
    return SharedPool(pool, SHARED_POOL_CONNECTIONS)


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
