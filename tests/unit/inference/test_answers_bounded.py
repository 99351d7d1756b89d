"""A model server's strange answer ends that input, never the batch: the runner over an httpx.MockTransport."""

from __future__ import annotations

import asyncio
import json

import httpx

from airflow_provider_hfep.inference.batch import BatchSettings, ItemResult, ShardedTransport, run_batch
from airflow_provider_hfep.inference.tasks import get_task


class Answers(ShardedTransport):
    """The runner's own transport (its bounded read included) over a scripted server."""

    def __init__(self, max_answer_bytes: int = 1_000_000) -> None:
        super().__init__(1, max_answer_bytes=max_answer_bytes)
        self._pools = [httpx.MockTransport(self.answer)]

    @staticmethod
    def answer(request: httpx.Request) -> httpx.Response:
        job = json.loads(request.content)["inputs"]

        def chunks(text: str):
            for start in range(0, len(text), 65536):
                yield text[start : start + 65536].encode()

        if job == "nested":
            body = "[" * 300 + "]" * 300  # parses, but deeper than any real answer
        elif job == "nested past the parser":
            body = "[" * 50_000 + "]" * 50_000
        elif job == "huge":
            body = json.dumps([{"generated_text": "x" * 3_000_000}])
        else:
            body = json.dumps([{"generated_text": f"answer to {job}"}])
        return httpx.Response(200, stream=httpx.ByteStream(b"".join(chunks(body))))


def run(jobs: list[str]) -> tuple[dict[int, ItemResult], object]:
    results: dict[int, ItemResult] = {}

    async def main():
        async with httpx.AsyncClient(transport=Answers()) as client:
            return await run_batch(
                client=client,
                url="https://ep.example.cloud",
                task=get_task("text-generation"),
                items=list(enumerate(jobs)),
                parameters=None,
                on_result=lambda result: results.setdefault(result.index, result),
                settings=BatchSettings(max_concurrency=2, max_retries=0),
            )

    return results, asyncio.run(main())


def test_a_deeply_nested_or_oversized_answer_is_that_inputs_error():
    results, summary = run(["a", "nested", "b", "huge", "c", "nested past the parser"])
    assert [results[i].output for i in (0, 2, 4)] == ["answer to a", "answer to b", "answer to c"]
    assert "nests deeper than 100" in str(results[1].error)
    assert "larger than 1000000 bytes" in str(results[3].error)
    assert "RecursionError" in str(results[5].error)
    assert (summary.succeeded, summary.failed) == (3, 3)
