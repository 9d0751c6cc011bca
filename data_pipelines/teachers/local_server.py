"""A small OpenAI-compatible chat server on 127.0.0.1, with set latency, capacity and scripted faults.

Used by the tests (real HTTP, no mocked client) and by ``benchmarks/cot_throughput.py``. It runs an
asyncio HTTP/1.1 server (keep-alive) in a background thread. ``slots`` bounds how many requests it
serves at once, so its capacity is ``slots / latency_s`` requests per second.

Faults are scripted per prompt: ``faults=[("FAULTY AD", ["timeout", "429", "500"])]`` makes the
first three requests whose messages contain ``FAULTY AD`` time out, get a 429, then a 500; the
fourth is answered. Actions: ``timeout``, any status code (``"429"``, ``"500"``, ``"503"``),
``truncated`` (a 200 whose JSON body is cut in half), ``non_json`` (a 200 HTML page),
``bad_content`` (a completion whose text holds no JSON), ``reasoning`` (a good answer after a
``<think>`` block), ``drop`` (close the connection without answering).

    with LocalChatServer(latency_s=0.05, slots=8) as server:
        teacher = OpenAITeacher(OpenAIConfig(model="local", base_url=server.base_url))
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Callable
from typing import Any

Responder = Callable[[list[dict[str, str]]], str]


def default_responder(messages: list[dict[str, str]]) -> str:
    """A plausible teacher reply for our prompts: a profile, a title (the original's first part), a check."""
    system = messages[0]["content"] if messages else ""
    user = messages[-1]["content"] if messages else ""
    if "describe what they care about" in system:
        lines = [ln.split(". ", 1)[-1] for ln in user.splitlines()[1:] if ln.strip()]
        return json.dumps(
            {
                "long_term_interests": lines[:2],
                "short_term_interests": lines[-1:],
                "preferences": ["reliable everyday supplies"],
                "needs": ["restocking"],
                "description": "A shopper who keeps a well-stocked desk.",
            }
        )
    if "Rewrite an ad title" in system:
        m = re.search(r"Original title: (.*)", user)
        title = (m.group(1) if m else "Untitled").split(",")[0].strip()
        return json.dumps(
            {
                "suitable_user_info": "likes organised desks",
                "selling_points": [],
                "title": f"{title}, Ready for Your Desk",
            }
        )
    return json.dumps({"supported": True, "unsupported_claims": [], "reason": "all claims are in the ad"})


class LocalChatServer:
    """See the module docstring. ``base_url`` ends in ``/v1``; ``stats`` counts what happened."""

    def __init__(
        self,
        responder: Responder | None = None,
        *,
        latency_s: float = 0.0,
        slots: int | None = None,
        faults: list[tuple[str, list[str]]] | None = None,
        timeout_sleep_s: float = 30.0,
    ) -> None:
        self.responder = responder or default_responder
        self.latency_s = latency_s
        self.slots = slots
        self.faults = [(needle, list(actions)) for needle, actions in (faults or [])]
        self.timeout_sleep_s = timeout_sleep_s
        self.stats: dict[str, Any] = {"requests": 0, "completions": 0, "max_in_flight": 0, "actions": {}}
        self._in_flight = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._ready = threading.Event()
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> LocalChatServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> LocalChatServer:
        self._thread = threading.Thread(target=self._run, name="local-chat-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("local chat server did not start within 10 s")
        return self

    def stop(self) -> None:
        if self._loop and self._server:

            async def shutdown() -> None:
                self._server.close()
                for task in asyncio.all_tasks():
                    if task is not asyncio.current_task():
                        task.cancel()

            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(5)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(5)

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._sem = asyncio.Semaphore(self.slots) if self.slots else None
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0, backlog=1024)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    def _next_fault(self, messages: list[dict[str, str]]) -> str | None:
        text = "\n".join(m.get("content", "") for m in messages)
        with self._lock:
            for needle, actions in self.faults:
                if needle in text and actions:
                    action = actions.pop(0)
                    self.stats["actions"][action] = self.stats["actions"].get(action, 0) + 1
                    return action
        return None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                headers: dict[str, str] = {}
                while True:
                    h = await reader.readline()
                    if h in (b"\r\n", b"\n", b""):
                        break
                    k, _, v = h.decode("latin-1").partition(":")
                    headers[k.strip().lower()] = v.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
                keep = await self._respond(line.decode("latin-1"), body, writer)
                if not keep or headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _respond(self, request_line: str, body: bytes, writer: asyncio.StreamWriter) -> bool:
        self.stats["requests"] += 1
        if not request_line.startswith("POST") or "/chat/completions" not in request_line:
            return await self._send(writer, 404, b'{"error": {"message": "not found"}}')
        try:
            req = json.loads(body)
            messages = req["messages"]
        except (json.JSONDecodeError, KeyError, TypeError):
            return await self._send(writer, 400, b'{"error": {"message": "bad request"}}')
        action = self._next_fault(messages)
        if action == "timeout":
            await asyncio.sleep(self.timeout_sleep_s)
            return False
        if action == "drop":
            return False
        if action and action.isdigit():
            return await self._send(
                writer,
                int(action),
                json.dumps({"error": {"message": f"injected {action}", "type": "server_error"}}).encode(),
                extra={"Retry-After": "0"} if action == "429" else None,
            )
        if action == "non_json":
            return await self._send(
                writer, 200, b"<html><body>502 Bad Gateway</body></html>", ctype="text/html"
            )
        if self._sem:
            async with self._sem:
                content = await self._work(messages)
        else:
            content = await self._work(messages)
        if action == "bad_content":
            content = "Sure! Here is a great title for this user."
        elif action == "reasoning":
            content = '<think>The user likes pens, so {"title": "wrong"} is not it.</think>\n' + content
        payload = json.dumps(
            {
                "id": f"chatcmpl-{self.stats['requests']}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": req.get("model", "local"),
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": content},
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        ).encode()
        if action == "truncated":
            payload = payload[: len(payload) // 2]
        self.stats["completions"] += 1
        return await self._send(writer, 200, payload)

    async def _work(self, messages: list[dict[str, str]]) -> str:
        self._in_flight += 1
        self.stats["max_in_flight"] = max(self.stats["max_in_flight"], self._in_flight)
        try:
            if self.latency_s:
                await asyncio.sleep(self.latency_s)
            return self.responder(messages)
        finally:
            self._in_flight -= 1

    @staticmethod
    async def _send(
        writer: asyncio.StreamWriter,
        status: int,
        body: bytes,
        *,
        ctype: str = "application/json",
        extra: dict[str, str] | None = None,
    ) -> bool:
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 429: "Too Many Requests"}.get(
            status, "Error"
        )
        head = [
            f"HTTP/1.1 {status} {reason}",
            f"Content-Type: {ctype}",
            f"Content-Length: {len(body)}",
            "Connection: keep-alive",
        ] + [f"{k}: {v}" for k, v in (extra or {}).items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        await writer.drain()
        return True
