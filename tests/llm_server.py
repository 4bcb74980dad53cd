"""A scripted OpenAI-compatible chat server on 127.0.0.1 for tests: replies chosen by the test, requests recorded."""
from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Union

Reply = Union[str, Callable[[dict], str], "Status"]


class Status:
    """A scripted HTTP error reply (e.g. Status(500, "boom"))."""

    def __init__(self, code: int, message: str = "error") -> None:
        self.code, self.message = code, message


def split_deltas(text: str) -> list[str]:
    """The stream deltas the server sends for `text`: one word (with its trailing space) each."""
    return re.findall(r"\S+\s*|\s+", text)


class ScriptedLLM:
    """`reply(...)` queues replies (str, fn(request) -> str, or Status); `default` answers when the queue is
    empty. `requests` holds every request body received; `sent` the deltas of each streamed reply."""

    def __init__(self, default: Reply = "I don't know.") -> None:
        self.default = default
        self.queue: deque = deque()
        self.requests: list[dict] = []
        self.sent: list[list[str]] = []
        self._server: ThreadingHTTPServer | None = None

    # -- scripting -------------------------------------------------------------------------
    def reply(self, *replies: Reply) -> "ScriptedLLM":
        self.queue.extend(replies)
        return self

    def _next(self, body: dict) -> Reply:
        r = self.queue.popleft() if self.queue else self.default
        return r(body) if callable(r) else r

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> "ScriptedLLM":
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # -- helpers for tests -----------------------------------------------------------------
    def messages(self, i: int = -1) -> dict[str, str]:
        """role -> content of request i (the last by default)."""
        return {m["role"]: m["content"] if isinstance(m["content"], str)
                else "".join(b.get("text", "") for b in m["content"]) for m in self.requests[i]["messages"]}


def _handler(llm: ScriptedLLM):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a) -> None:  # quiet
            pass

        def _json(self, code: int, obj: dict) -> None:
            data = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/v1/models":
                self._json(200, {"object": "list", "data": [{"id": "scripted", "object": "model", "owned_by": "test"}]})
            else:
                self._json(404, {"error": {"message": "not found"}})

        def do_POST(self) -> None:
            if self.path.rstrip("/") != "/v1/chat/completions":
                return self._json(404, {"error": {"message": "not found"}})
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            llm.requests.append(body)
            reply = llm._next(body)
            if isinstance(reply, Status):
                return self._json(reply.code, {"error": {"message": reply.message, "type": "server_error"}})
            base = {"id": f"chatcmpl-{len(llm.requests)}", "created": int(time.time()), "model": body.get("model")}
            usage = {"prompt_tokens": 1, "completion_tokens": len(split_deltas(reply)), "total_tokens": 2}
            if not body.get("stream"):
                return self._json(200, dict(base, object="chat.completion", usage=usage, choices=[
                    {"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}]))
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            deltas = split_deltas(reply)
            llm.sent.append(deltas)

            def event(choices, **extra) -> None:
                obj = dict(base, object="chat.completion.chunk", choices=choices, **extra)
                self.wfile.write(f"data: {json.dumps(obj)}\n\n".encode())
                self.wfile.flush()

            event([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
            for d in deltas:
                event([{"index": 0, "delta": {"content": d}, "finish_reason": None}])
            event([{"index": 0, "delta": {}, "finish_reason": "stop"}])
            if (body.get("stream_options") or {}).get("include_usage"):
                event([], usage=usage)
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()

    return Handler
