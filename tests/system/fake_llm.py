"""A fake LLM provider for the system tests: one threaded stdlib HTTP server on 127.0.0.1
(a free port) that speaks each vendor's real wire format, whole and streamed, and can be
told to fail.

Every backend lives under its own path prefix, so one server plays several providers:
base_url = fake.base("primary", "openai") -> http://127.0.0.1:PORT/primary/v1 (and so on).
The format is chosen by the path the client calls:

  .../chat/completions                      OpenAI Chat Completions (SSE + [DONE] when stream)
  .../v1/messages                           Anthropic Messages (named-event SSE when stream)
  .../models/M:generateContent              Gemini
  .../models/M:streamGenerateContent?alt=sse  Gemini, data-only SSE
  .../api/chat                              Ollama (NDJSON unless "stream": false)

fake.script(name, step, step, ...) sets what `name` answers, one step per request, the
last one repeating: {"status": 500}, {"status": 429, "retry_after": "1"}, {"delay": 3}
(sleep before answering: a client timeout), {"text": "..."} (200 with that text; the
default is "Hello from <name>."), {"text": "...", "cut_after": N} (streamed: only the first
N frames, then the connection closes: a stream cut short). Every request is recorded (fake.requests(name)):
method, path, headers (Idempotency-Key included), parsed body, monotonic arrival time.

fake.hold() makes every request wait, recorded but unanswered, until fake.release(): a call
kept in flight (a crash test kills the client meanwhile)."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DEFAULT_PATH = {"openai": "v1", "anthropic": "", "gemini": "v1beta", "ollama": ""}


class FakeLLM:
    def __init__(self):
        self.lock = threading.Lock()
        self.scripts = {}
        self.log = []
        self.gate = threading.Event()  # set: answer; clear: hold requests (hold/release)
        self.gate.set()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # the body ends with the connection

            def log_message(self, *args):
                pass

            def do_POST(self):  # noqa: N802
                outer._handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.gate.set()  # no handler stays blocked
        self.httpd.shutdown()
        self.httpd.server_close()

    def base(self, name, kind):
        tail = DEFAULT_PATH[kind]
        return f"{self.url}/{name}" + (f"/{tail}" if tail else "")

    def script(self, name, *steps):
        with self.lock:
            self.scripts[name] = list(steps)

    def hold(self):
        self.gate.clear()

    def release(self):
        self.gate.set()

    def requests(self, name=None):
        with self.lock:
            return [r for r in self.log if name is None or r["name"] == name]

    # ---- serving -------------------------------------------------------------------------

    def _step(self, name):
        with self.lock:
            seen = sum(1 for r in self.log if r["name"] == name)
            steps = self.scripts.get(name) or [{}]
            return steps[min(seen, len(steps)) - 1]

    def _handle(self, h):
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        name = h.path.split("/")[1]
        try:
            req = json.loads(body or b"{}")
        except ValueError:
            req = None
        with self.lock:
            self.log.append({"name": name, "path": h.path, "headers": dict(h.headers),
                             "body": req, "at": time.monotonic()})
        self.gate.wait()
        step = self._step(name)
        time.sleep(step.get("delay", 0))
        try:
            if step.get("status", 200) != 200:
                self._error(h, step)
            else:
                self._answer(h, name, req or {}, step)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeouts)

    def _error(self, h, step):
        out = json.dumps({"error": {"message": "injected", "type": "server_error"}}).encode()
        h.send_response(step["status"])
        h.send_header("Content-Type", "application/json")
        if "retry_after" in step:
            h.send_header("Retry-After", step["retry_after"])
        h.send_header("Content-Length", str(len(out)))
        h.end_headers()
        h.wfile.write(out)

    def _answer(self, h, name, req, step):
        text = step.get("text", f"Hello from {name}.")
        path = h.path
        if path.endswith("/chat/completions"):
            kind, stream = "openai", bool(req.get("stream"))
        elif path.endswith("/v1/messages"):
            kind, stream = "anthropic", bool(req.get("stream"))
        elif ":streamGenerateContent" in path:
            kind, stream = "gemini", True
        elif ":generateContent" in path:
            kind, stream = "gemini", False
        elif path.endswith("/api/chat"):
            kind, stream = "ollama", req.get("stream", True) is not False
        else:
            h.send_response(404)
            h.end_headers()
            return
        pieces = [text[i:i + 4] for i in range(0, len(text), 4)] or [""]
        if stream:
            self._stream(h, kind, pieces, step.get("cut_after"))
        else:
            self._whole(h, kind, text)

    def _whole(self, h, kind, text):
        body = {
            "openai": {"id": "c1", "object": "chat.completion", "model": "fake-gpt",
                       "choices": [{"index": 0, "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": text}}],
                       "usage": {"prompt_tokens": 11, "completion_tokens": 7,
                                 "total_tokens": 18}},
            "anthropic": {"id": "msg_1", "type": "message", "role": "assistant",
                          "model": "fake-claude", "stop_reason": "end_turn",
                          "content": [{"type": "text", "text": text}],
                          "usage": {"input_tokens": 12, "output_tokens": 6}},
            "gemini": {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]},
                                       "finishReason": "STOP"}],
                       "usageMetadata": {"promptTokenCount": 13, "candidatesTokenCount": 5,
                                         "totalTokenCount": 18},
                       "modelVersion": "fake-gemini"},
            "ollama": {"model": "fake-llama", "created_at": "2024-01-01T00:00:00Z",
                       "message": {"role": "assistant", "content": text}, "done": True,
                       "done_reason": "stop", "prompt_eval_count": 14, "eval_count": 4},
        }[kind]
        out = json.dumps(body).encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(out)))
        h.end_headers()
        h.wfile.write(out)

    def _frames(self, kind, pieces):
        if kind == "openai":
            for p in pieces:
                yield "data: " + json.dumps({"object": "chat.completion.chunk",
                                             "model": "fake-gpt", "choices": [
                                                 {"index": 0, "delta": {"content": p},
                                                  "finish_reason": None}]}) + "\n\n"
            yield "data: " + json.dumps({"choices": [{"index": 0, "delta": {},
                                                      "finish_reason": "stop"}]}) + "\n\n"
            yield "data: " + json.dumps({"choices": [], "usage": {
                "prompt_tokens": 11, "completion_tokens": 7}}) + "\n\n"
            yield "data: [DONE]\n\n"
        elif kind == "anthropic":
            def ev(name, data):
                return f"event: {name}\ndata: {json.dumps(data)}\n\n"
            yield ev("message_start", {"type": "message_start", "message": {
                "model": "fake-claude", "usage": {"input_tokens": 12, "output_tokens": 1}}})
            yield ev("content_block_start", {"type": "content_block_start", "index": 0,
                                             "content_block": {"type": "text", "text": ""}})
            yield ev("ping", {"type": "ping"})
            for p in pieces:
                yield ev("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                 "delta": {"type": "text_delta", "text": p}})
            yield ev("content_block_stop", {"type": "content_block_stop", "index": 0})
            yield ev("message_delta", {"type": "message_delta",
                                       "delta": {"stop_reason": "end_turn"},
                                       "usage": {"output_tokens": 6}})
            yield ev("message_stop", {"type": "message_stop"})
        elif kind == "gemini":
            for i, p in enumerate(pieces):
                last = i == len(pieces) - 1
                chunk = {"candidates": [{"content": {"role": "model", "parts": [{"text": p}]}}],
                         "modelVersion": "fake-gemini"}
                if last:
                    chunk["candidates"][0]["finishReason"] = "STOP"
                    chunk["usageMetadata"] = {"promptTokenCount": 13,
                                              "candidatesTokenCount": 5}
                yield "data: " + json.dumps(chunk) + "\r\n\r\n"
        else:
            for p in pieces:
                yield json.dumps({"model": "fake-llama", "message": {
                    "role": "assistant", "content": p}, "done": False}) + "\n"
            yield json.dumps({"model": "fake-llama", "message": {"role": "assistant",
                                                                 "content": ""},
                              "done": True, "done_reason": "stop", "prompt_eval_count": 14,
                              "eval_count": 4}) + "\n"

    def _stream(self, h, kind, pieces, cut_after=None):
        h.send_response(200)
        h.send_header("Content-Type", "application/x-ndjson" if kind == "ollama"
                      else "text/event-stream")
        h.end_headers()
        frames = list(self._frames(kind, pieces))
        for frame in frames[:cut_after] if cut_after is not None else frames:
            # cut each frame in two so the client sees frames split across reads
            data = frame.encode()
            h.wfile.write(data[:len(data) // 2])
            h.wfile.flush()
            time.sleep(0.005)
            h.wfile.write(data[len(data) // 2:])
            h.wfile.flush()
