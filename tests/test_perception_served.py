"""The served captioner (vLLM's OpenAI API): what it sends, over a mock HTTP transport."""

from __future__ import annotations

import asyncio
import base64
import io
import json

import httpx
import numpy as np
import pytest
from PIL import Image

from vidagent.tools.captioner import ServedCaptioner, ServedCaptionerParams, jpeg_data_url
from vidagent.tools.models import ModelRunError
from vidagent.tools.video import FrameBatch


def _batches(n: int, k: int, size: tuple[int, int] = (120, 160)) -> list[FrameBatch]:
    rng = np.random.default_rng(0)
    out = []
    for s in range(n):
        frames = rng.integers(0, 255, (k, *size, 3), dtype=np.uint8)
        idx = np.arange(s * 10, s * 10 + k)
        out.append(FrameBatch(frames, idx, idx / 10.0))
    return out


class FakeServer:
    """An OpenAI-compatible chat endpoint answering with the segment's first frame id."""

    def __init__(self, fail: bool = False) -> None:
        self.bodies: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.fail = fail

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/chat/completions"
        body = json.loads(request.content)
        self.bodies.append(body)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        await asyncio.sleep(0.01)
        self.in_flight -= 1
        if self.fail:
            return httpx.Response(400, json={"error": {"message": "image too large"}})
        n_images = sum(p["type"] == "image_url" for p in body["messages"][0]["content"])
        answer = f"  a caption of {n_images} images \n"
        return httpx.Response(
            200,
            json={
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": answer},
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            },
        )


def _captioner(server: FakeServer, **params: object) -> ServedCaptioner:
    p = ServedCaptionerParams(model="qwen-vl", base_url="http://vllm.test/v1", **params)  # type: ignore[arg-type]
    return ServedCaptioner(
        p,
        http_client_factory=lambda: httpx.AsyncClient(transport=httpx.MockTransport(server)),
    )


def test_requests_carry_frames_as_base64_jpeg_and_respect_concurrency() -> None:
    server = FakeServer()
    captioner = _captioner(server, frames_per_segment=3, concurrency=2, max_side=64)
    out = captioner.run(_batches(5, 3))
    assert out.items == [["a caption of 3 images"]] * 5
    assert len(server.bodies) == 5 and server.max_in_flight == 2
    body = server.bodies[0]
    assert body["model"] == "qwen-vl" and body["temperature"] == 0.0 and body["seed"] == 0
    parts = body["messages"][0]["content"]
    assert [p["type"] for p in parts] == ["image_url"] * 3 + ["text"]
    assert parts[-1]["text"].startswith("These images are frames of a short video clip")
    for part in parts[:3]:
        url = part["image_url"]["url"]
        assert url.startswith("data:image/jpeg;base64,")
        image = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
        assert image.format == "JPEG" and image.size == (64, 48)  # 160x120 shrunk to fit 64


def test_jpeg_keeps_small_frames_and_colours() -> None:
    frame = np.zeros((40, 50, 3), np.uint8)
    frame[..., 0] = 200
    url = jpeg_data_url(frame, quality=95, max_side=768)
    image = np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))
    assert image.shape == (40, 50, 3) and abs(int(image[..., 0].mean()) - 200) <= 3


def test_server_errors_become_model_errors() -> None:
    with pytest.raises(ModelRunError, match=r"captioning server http://vllm.test/v1: .*400"):
        _captioner(FakeServer(fail=True), max_side=64).run(_batches(2, 1))


def test_runs_inside_an_event_loop_too() -> None:
    server = FakeServer()

    async def main() -> list:
        return _captioner(server, max_side=64).run(_batches(2, 1)).items

    assert asyncio.run(main()) == [["a caption of 1 images"]] * 2


def test_cache_params_leave_out_where_and_how_fast() -> None:
    a = _captioner(FakeServer(), concurrency=4).cache_params()
    b = ServedCaptioner(
        ServedCaptionerParams(model="qwen-vl", base_url="http://other:9000/v1", concurrency=64)
    ).cache_params()
    assert a == b
    assert {"model", "prompt", "frames_per_segment", "seed", "temperature"} <= set(a)
    assert "api_key" not in a and "base_url" not in a
