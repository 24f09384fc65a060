"""OpenAIBackend against a real HTTP server on localhost (ThreadingHTTPServer in a thread) that serves
scripted responses: chat and completions with n, per-prompt seeds (with and without n_per_request
chunks), 429 + Retry-After, 5xx then success, permanent 400, connection refused, timeouts, the
concurrency bound, and the API key kept out of errors and logs. Several servers: the load shared
under a per-server bound, one killed mid-run (its requests move, nothing lost or duplicated, the
same completions as one server), all down, a down server re-probed after its cool-down, and the
comma-separated and list forms of base_url.

Run: .venv/bin/python -m pytest tests/generate/test_openai_api.py -q
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from focalpo.generate import GenerationError, get_backend

KEY = "sk-test-SECRET-4f2a9c"


class ScriptedServer:
    """Serves queued (status, headers, body, delay) replies first, then successful echoes.

    A success echoes the prompt: choice i of a chat request is "<last message content>#i", of a
    completions request "<prompt>#i" (with `seeded`, "...#i@<seed>": what a seeded sampler gives is a
    function of the body alone). Records every request, every body answered with a success
    (`served`) and the peak number in flight. `before_reply(body)`, when set, runs before a success
    is sent (a test blocks there on an event or barrier); `admit` returning False drops the
    connection unanswered.
    """

    def __init__(self, delay: float = 0.0, seeded: bool = False):
        self.queue: list[tuple[int, dict, object, float]] = []
        self.requests: list[dict] = []
        self.served: list[dict] = []
        self.delay, self.seeded = delay, seeded
        self.before_reply = None
        self.in_flight = self.peak = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
                    server.in_flight += 1
                    server.peak = max(server.peak, server.in_flight)
                    reply = server.queue.pop(0) if server.queue else None
                counted = True
                try:
                    if reply is None and not server.admit(body):
                        self.close_connection = True  # no reply at all: the client sees the connection close
                        return
                    status, headers, payload, delay = reply or (200, {}, server.success(self.path, body, server.seeded),
                                                                server.delay)
                    time.sleep(delay)
                    # No longer in flight once the reply is about to go: the client may send its
                    # next request as soon as it reads this one, before a `finally` here would run.
                    with server.lock:
                        server.in_flight -= 1
                        counted = False
                    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                    self.send_response(status)
                    for k, v in {"Content-Type": "application/json", **headers}.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    if reply is None:
                        with server.lock:
                            server.served.append(body)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
                    pass
                finally:
                    if counted:
                        with server.lock:
                            server.in_flight -= 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @staticmethod
    def success(path: str, body: dict, seeded: bool = False) -> dict:
        tag = f"@{body.get('seed')}" if seeded else ""
        if path.endswith("/chat/completions"):
            text = body["messages"][-1]["content"]
            choices = [{"index": i, "message": {"role": "assistant", "content": f"{text}#{i}{tag}"}}
                       for i in range(body["n"])]
        else:
            choices = [{"index": i, "text": f"{body['prompt']}#{i}{tag}"} for i in range(body["n"])]
        return {"object": "completion", "choices": choices[::-1]}  # reversed: the client must sort by index

    def admit(self, body: dict) -> bool:
        return self.before_reply(body) if self.before_reply else True

    def close(self):
        """Stop serving; the listening socket is closed, so later connections are refused."""
        self.httpd.shutdown()
        self.httpd.server_close()


class DyingServer(ScriptedServer):
    """Answers its first `serve_first` requests and holds every later one (`holding` is set) until
    `kill()`: then the held requests are dropped unanswered and new connections refused, as when a
    vLLM process dies under load."""

    def __init__(self, serve_first: int, **kw):
        super().__init__(**kw)
        self.serve_first, self.admitted = serve_first, 0
        self.holding, self.dead = threading.Event(), threading.Event()

    def admit(self, body: dict) -> bool:
        with self.lock:
            self.admitted += 1
            if self.admitted <= self.serve_first:
                return True
        self.holding.set()
        self.dead.wait(10)
        return False

    def kill(self):
        self.close()
        self.dead.set()


def free_ports(k: int) -> list[int]:
    """k distinct ports with nobody listening (bound together, then released)."""
    socks = [socket.socket() for _ in range(k)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@pytest.fixture
def server():
    s = ScriptedServer()
    yield s
    s.close()


def backend(server, **kw):
    opts = {"model": "m", "base_url": server.base_url, "backoff_base": 0.01, "jitter": 0.0, "timeout": 5.0}
    return get_backend("openai", **{**opts, **kw})


def cluster(servers, **kw):
    """A backend over several servers, given as one comma-separated base_url as a pipeline passes it."""
    return backend(servers[0], base_url=",".join(s.base_url for s in servers), **kw)


def test_chat_with_n_keeps_prompt_order(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    b = backend(server, max_concurrency=3)
    prompts = [f"p{i}" for i in range(7)] + [[{"role": "system", "content": "s"}, {"role": "user", "content": "msg"}]]
    out = b.generate(prompts, n=3, temperature=0.7, top_p=0.9, max_new_tokens=32, stop=["#2"], seed=5)
    assert out[:7] == [[f"p{i}#0", f"p{i}#1", f"p{i}"] for i in range(7)]  # "#2" cut by the local stop
    assert out[7] == ["msg#0", "msg#1", "msg"]
    sent = server.requests[0]
    assert sent["path"] == "/v1/chat/completions" and sent["auth"] == f"Bearer {KEY}"
    assert {k: sent["body"][k] for k in ("model", "n", "temperature", "top_p", "max_tokens", "stop", "seed")} == {
        "model": "m", "n": 3, "temperature": 0.7, "top_p": 0.9, "max_tokens": 32, "stop": ["#2"], "seed": 5}
    sent_messages = sorted((r["body"]["messages"] for r in server.requests), key=len)
    assert sent_messages[0] == [{"role": "user", "content": sent_messages[0][0]["content"]}]  # plain -> one user message
    assert sent_messages[-1] == prompts[7]
    assert b.stats.requests == 8 and b.stats.retries == 0


def test_completions_with_n_and_chunks(server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    b = backend(server, api="completions", n_per_request=2, extra_body={"top_k": 20})
    out = b.generate(["a", "b"], n=5, seed=1)
    assert out == [["a#0", "a#1", "a#0", "a#1", "a#0"], ["b#0", "b#1", "b#0", "b#1", "b#0"]]
    assert all(r["path"] == "/v1/completions" and r["auth"] is None for r in server.requests)
    assert sorted(r["body"]["n"] for r in server.requests) == [1, 1, 2, 2, 2, 2]
    assert sorted({r["body"]["seed"] for r in server.requests}) == [1, 2, 3]  # seed + chunk index
    assert all(r["body"]["top_k"] == 20 for r in server.requests)
    with pytest.raises(GenerationError, match="prompt 1 is a message list; api='completions'"):
        b.generate(["a", [{"role": "user", "content": "b"}]])


def test_per_prompt_seeds_in_request_bodies(server):
    """Request c of prompt i carries seed[i] + c; prompts = ["a", "b", "c"], seeds = [10, 20, 7]."""
    b = backend(server, api="completions")
    out = b.generate(["a", "b", "c"], n=2, seed=[10, 20, 7])
    assert out == [["a#0", "a#1"], ["b#0", "b#1"], ["c#0", "c#1"]]
    assert sorted((r["body"]["prompt"], r["body"]["seed"]) for r in server.requests) == [("a", 10), ("b", 20), ("c", 7)]

    server.requests.clear()  # n=5 in chunks of 2 -> chunks 0, 1, 2 of sizes 2, 2, 1
    chunked = backend(server, n_per_request=2)
    out = chunked.generate(["a", "b"], n=5, seed=(100, 3))
    assert out == [["a#0", "a#1", "a#0", "a#1", "a#0"], ["b#0", "b#1", "b#0", "b#1", "b#0"]]
    sent = sorted((r["body"]["messages"][-1]["content"], r["body"]["seed"], r["body"]["n"]) for r in server.requests)
    assert sent == [("a", 100, 2), ("a", 101, 2), ("a", 102, 1), ("b", 3, 2), ("b", 4, 2), ("b", 5, 1)]


def test_bad_per_prompt_seeds_send_nothing(server):
    b = backend(server)
    with pytest.raises(ValueError, match="list of 3 seeds but there are 2 prompts"):
        b.generate(["a", "b"], seed=[1, 2, 3])
    with pytest.raises(ValueError, match=r"seed\[1\] \(the seed of prompt 1\) must be an int, got False"):
        b.generate(["a", "b"], seed=[1, False])
    assert server.requests == [] and b.stats.requests == 0


def test_429_then_success_honours_retry_after(server):
    server.queue.append((429, {"Retry-After": "1"}, {"error": {"message": "slow down"}}, 0.0))
    b = backend(server)
    t0 = time.monotonic()
    assert b.generate(["x"], n=2) == [["x#0", "x#1"]]
    elapsed = time.monotonic() - t0
    assert 0.95 <= elapsed < 2.5  # waited the server's 1 s, not the 0.01 s back-off
    assert b.stats.retries == 1 and b.stats.requests == 2 and len(server.requests) == 2


def test_5xx_retried_with_backoff_then_success(server, caplog):
    for status in (500, 502, 503):
        server.queue.append((status, {}, b"upstream broke", 0.0))
    b = backend(server, backoff_base=0.05, backoff_max=0.1)
    t0 = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="focalpo.generate.openai_api"):
        assert b.generate(["x"]) == [["x#0"]]
    assert time.monotonic() - t0 >= 0.05 + 0.1 + 0.1  # min(max, base·2^k), k = 0, 1, 2
    assert b.stats.retries == 3 and b.stats.requests == 4
    assert [r.getMessage().split(";")[0] for r in caplog.records][0].endswith("HTTP 500 Internal Server Error: upstream broke")


def test_retries_exhausted_is_a_clear_error(server):
    server.queue.extend([(503, {}, {"message": "overloaded"}, 0.0)] * 3)
    b = backend(server, max_retries=2)
    with pytest.raises(GenerationError, match=r"HTTP 503 .*overloaded \(gave up after 3 attempts\)"):
        b.generate(["x"])
    assert b.stats.requests == 3 and b.stats.failures == 1


def test_permanent_400_fails_at_once_and_never_leaks_the_key(server, monkeypatch, caplog):
    monkeypatch.setenv("MY_KEY", KEY)
    # a careless server that echoes the credential in its error message
    server.queue.append((400, {}, {"error": {"message": f"max_tokens too large (auth was Bearer {KEY})"}}, 0.0))
    b = backend(server, api_key_env="MY_KEY")
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(GenerationError) as info:
            b.generate(["x"])
    msg = str(info.value)
    assert "HTTP 400" in msg and "max_tokens too large" in msg and "/v1/chat/completions" in msg
    assert server.requests[0]["auth"] == f"Bearer {KEY}"  # it was sent ...
    assert KEY not in msg and KEY not in repr(b) and KEY not in str(vars(b))  # ... and is nowhere else
    assert b.stats.requests == 1 and b.stats.retries == 0
    # retried failures are logged: the key must not reach the log either
    server.queue.extend([(500, {}, {"error": {"message": f"boom {KEY}"}}, 0.0)] * 2)
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(GenerationError) as info:
            backend(server, api_key_env="MY_KEY", max_retries=1).generate(["y"])
    assert caplog.records and all(KEY not in r.getMessage() for r in caplog.records)
    assert KEY not in str(info.value) and "boom ***" in str(info.value)


def test_timeout_is_retried_then_reported(server):
    server.queue.append((200, {}, ScriptedServer.success("/v1/chat/completions", {"messages": [{"content": "x"}], "n": 1}), 1.0))
    b = backend(server, timeout=0.3)
    assert b.generate(["x"]) == [["x#0"]]  # first attempt timed out, the retry succeeded
    assert b.stats.retries == 1
    server.queue.append((200, {}, {}, 1.0))
    t0 = time.monotonic()
    with pytest.raises(GenerationError, match=r"timed out after 0.3s"):
        backend(server, timeout=0.3, retry_on_timeout=False).generate(["x"])
    assert time.monotonic() - t0 < 0.9


def test_connection_refused_is_retried_then_reported():
    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    b = get_backend("openai", model="m", base_url=f"http://127.0.0.1:{port}/v1", max_retries=2, backoff_base=0.01)
    with pytest.raises(GenerationError, match=r"failed to connect.*gave up after 3 attempts"):
        b.generate(["x"])
    assert b.stats.retries == 2


def test_concurrency_bound_respected():
    server = ScriptedServer(delay=0.15)
    try:
        b = backend(server, max_concurrency=3)
        out = b.generate([str(i) for i in range(12)], n=1)
        assert out == [[f"{i}#0"] for i in range(12)]
        assert server.peak == 3  # the bound was reached and never exceeded
    finally:
        server.close()


def test_malformed_reply_and_bad_options(server):
    server.queue.append((200, {}, {"choices": [{"index": 0, "message": {"content": "only one"}}]}, 0.0))
    with pytest.raises(GenerationError, match="returned 1 choices, expected n=2"):
        backend(server).generate(["x"], n=2)
    server.queue.append((200, {}, b"<html>not json</html>", 0.0))
    with pytest.raises(GenerationError, match="non-JSON"):
        backend(server).generate(["x"])
    with pytest.raises(ValueError, match="api must be"):
        backend(server, api="responses")


# ---------------------------------------------------------------------------------------------- several servers


def test_two_servers_share_the_load_with_a_bound_per_server():
    """max_concurrency=2 is per server: 8 requests over 2 servers go 4 at a time, 2 on each. Every
    request waits at a barrier of 4 parties, which only a full round (2 + 2) releases."""
    a, b = ScriptedServer(), ScriptedServer()
    rounds = threading.Barrier(4, timeout=5)
    a.before_reply = b.before_reply = lambda body: rounds.wait() is not None
    try:
        bk = cluster([a, b], max_concurrency=2)
        out = bk.generate([f"p{i}" for i in range(8)])
    finally:
        a.close(), b.close()
    assert out == [[f"p{i}#0"] for i in range(8)]
    assert len(a.served) == len(b.served) == 4 and a.peak == b.peak == 2
    assert bk.stats.requests == 8 and bk.stats.retries == bk.stats.failovers == 0


def test_server_killed_mid_run_loses_and_duplicates_nothing():
    """A answers 2 requests, then holds its next ones; B holds everything. With requests pending on
    both, A dies (held requests dropped, new connections refused), then B starts answering. The call
    returns every completion in prompt order, equal to a one-server run with the same seeds, and each
    request was answered exactly once."""
    a, b = DyingServer(serve_first=2, seeded=True), ScriptedServer(seeded=True)
    b_go = threading.Event()
    b.before_reply = lambda body: b_go.wait(10)

    def kill_a_once_it_holds():
        if a.holding.wait(10):
            a.kill()
        b_go.set()

    killer = threading.Thread(target=kill_a_once_it_holds)
    killer.start()
    prompts, seeds = [f"p{i}" for i in range(12)], list(range(100, 112))
    try:
        bk = cluster([a, b], max_concurrency=2, reprobe_after=3600)
        out = bk.generate(prompts, n=2, seed=seeds)
    finally:
        killer.join()
        a.close(), b.close()
    one = ScriptedServer(seeded=True)
    try:
        alone = backend(one, max_concurrency=3).generate(prompts, n=2, seed=seeds)
    finally:
        one.close()
    assert out == alone == [[f"p{i}#0@{100 + i}", f"p{i}#1@{100 + i}"] for i in range(12)]
    assert len(a.served) == 2 and len(a.requests) > 2  # A answered 2, then dropped what it held
    answered = sorted((r["messages"][-1]["content"], r["seed"]) for r in a.served + b.served)
    assert answered == sorted(zip(prompts, seeds))  # one answer per request: nothing lost, nothing twice
    assert bk.stats.failovers >= 1 and bk.stats.retries == 0  # moved without using up a retry
    with pytest.raises(GenerationError, match="all 2 servers are down"):  # A stays down; now B dies too
        bk.generate(["late"], seed=[1])


def test_all_servers_down_names_every_server():
    urls = [f"http://127.0.0.1:{p}/v1" for p in free_ports(2)]
    bk = get_backend("openai", model="m", base_url=urls, max_retries=2, backoff_base=0.01)
    with pytest.raises(GenerationError) as info:
        bk.generate(["x", "y"])
    msg = str(info.value)
    assert "gave up after" in msg and "all 2 servers are down" in msg
    for url in urls:
        assert f"{url}/chat/completions (down): failed to connect" in msg


def test_down_server_is_reprobed_after_its_cool_down():
    """max_retries=0: one 503 marks A down (5xx max_retries + 1 times in a row); the request moves to
    B without a retry. A gets nothing during its cool-down, then one probe puts it back in rotation."""
    a, b = ScriptedServer(), ScriptedServer()
    a.queue.append((503, {}, {"error": {"message": "engine dead"}}, 0.0))
    try:
        bk = cluster([a, b], max_retries=0, max_concurrency=1, reprobe_after=3600)
        assert bk.generate(["x"]) == [["x#0"]]  # first try on A (ties go to the first server)
        assert (len(a.requests), len(b.requests), bk.stats.failovers, bk.stats.retries) == (1, 1, 1, 0)
        assert bk.generate([f"p{i}" for i in range(4)]) == [[f"p{i}#0"] for i in range(4)]
        assert len(a.requests) == 1  # cooling down
        bk.reprobe_after = 0.0
        assert bk.generate([f"q{i}" for i in range(4)]) == [[f"q{i}#0"] for i in range(4)]
        assert len(a.served) >= 1 and bk._servers[0].down_since is None  # probed, answered, back up
    finally:
        a.close(), b.close()


def test_base_url_as_comma_string_or_list():
    a, b = ScriptedServer(), ScriptedServer()
    try:
        for base_url in (f" {a.base_url}/ ,{b.base_url}", [a.base_url, b.base_url]):
            bk = backend(a, base_url=base_url)
            assert bk.urls == (f"{a.base_url}/chat/completions", f"{b.base_url}/chat/completions")
            assert bk.generate(["x", "y", "z"]) == [["x#0"], ["y#0"], ["z#0"]]
            assert "urls=" in repr(bk)
        assert a.served and b.served  # ties alternate, so both take requests
    finally:
        a.close(), b.close()
    assert repr(backend(a)) == f"OpenAIBackend(model='m', url='{a.base_url}/chat/completions', api_key_env='OPENAI_API_KEY')"
    for bad, message in ((f"{a.base_url},,{b.base_url}", "entry 1 is empty"), ("localhost:8000/v1", "http://"),
                         ([a.base_url, a.base_url + "/"], "twice"), ([], "at least one server")):
        with pytest.raises(ValueError, match=message):
            backend(a, base_url=bad)


def test_a_trailing_assistant_message_asks_the_server_to_continue_it(server):
    b = backend(server)
    b.generate([[{"role": "user", "content": "a"}, {"role": "assistant", "content": "def f("}], "b"], n=1)
    bodies = {r["body"]["messages"][-1]["content"]: r["body"] for r in server.requests}
    assert bodies["def f("]["continue_final_message"] is True and bodies["def f("]["add_generation_prompt"] is False
    assert "continue_final_message" not in bodies["b"]
