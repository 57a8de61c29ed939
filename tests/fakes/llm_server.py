"""A local OpenAI-compatible server standing in for the model (the one test double allowed).

It answers ``POST /v1/chat/completions`` from a table of wording -> answer (a JSON object, or a
string sent as the reply's text as it is), keeps every prompt and every raw request body it
received, and counts any forbidden value (an identifier) that reached it.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Route

from sandbox.server import bind


@dataclass
class FakeModel:
    answers: dict[str, dict[str, Any] | str] = field(default_factory=dict)  # substring of prompt -> answer
    forbidden: set[str] = field(default_factory=set)
    prompts: list[str] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)  # every byte the client sent, headers aside
    redirect_to: str | None = None  # a gateway that sends every request on to another base URL
    leaks: list[str] = field(default_factory=list)
    formats: list[Any] = field(default_factory=list)

    def answer_for(self, prompt: str) -> dict[str, Any] | str | None:
        for needle, answer in self.answers.items():
            if needle.lower() in prompt.lower():
                return answer
        return None


def build_app(model: FakeModel) -> Starlette:
    async def completions(request: Request) -> JSONResponse | RedirectResponse:
        raw = await request.body()
        model.bodies.append(raw)
        if model.redirect_to:
            return RedirectResponse(f"{model.redirect_to}/chat/completions", status_code=307)
        body = json.loads(raw)
        text = "\n".join(str(m.get("content", "")) for m in body.get("messages", []))
        model.prompts.append(text)
        model.formats.append(body.get("response_format"))
        model.leaks.extend(v for v in model.forbidden if v.lower() in text.lower())
        answer = model.answer_for(text)
        if answer is None:
            content = "I am not sure."
        else:
            content = answer if isinstance(answer, str) else json.dumps(answer)
        return JSONResponse(
            {
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "test-model"),
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": content},
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        )

    return Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])


class FakeModelServer:
    def __init__(self, model: FakeModel) -> None:
        self.model = model
        self.sock = bind("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"
        config = uvicorn.Config(build_app(model), log_config=None, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> FakeModelServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()
