"""`OpenAIBackend`: sample completions from one or several OpenAI-compatible servers (vLLM, SGLang,
hosted APIs).

    vllm serve Qwen/Qwen2.5-Coder-7B-Instruct --port 8000        # or: python -m sglang.launch_server ...
    from focalpo.generate.openai_api import OpenAIBackend
    backend = OpenAIBackend("Qwen/Qwen2.5-Coder-7B-Instruct", base_url="http://localhost:8000/v1",
                            api="chat", max_concurrency=32)
    texts = backend.generate(prompts, n=10, temperature=1.5, max_new_tokens=1024, seed=0)

Several servers (one vLLM per GPU, say): a list of URLs or one comma-separated string, which is
what a config's `base_url` or the CLI passes through unchanged:

    for g in 0 1 2 3; do CUDA_VISIBLE_DEVICES=$g vllm serve $MODEL --port 800$g & done
    backend = OpenAIBackend(MODEL, base_url="http://localhost:8000/v1,http://localhost:8001/v1,"
                                            "http://localhost:8002/v1,http://localhost:8003/v1",
                            max_concurrency=32)              # 32 in flight per server, 128 in all

Routing: each request goes to the healthy server with the fewest requests in flight (ties taken in
turn), so a fast server takes more work than a slow one and no server holds more than
`max_concurrency` requests. A server that stops answering (connection refused, reset or dropped, a
timeout) is marked down at once; one that answers 5xx to `max_retries + 1` requests in a row too.
Its requests in flight, and any request that fails there while another server is up, move to
another server at once, without back-off and without using a retry (once per server and request).
A down server gets no requests until `reprobe_after` seconds have passed; then one request at a time
probes it, and a success puts it back in rotation. While every server is down, requests keep
retrying with back-off across them, and a request whose retries run out fails the call with a
`GenerationError` naming every server and its last error. Completions depend only on the request
body (prompt, sampling arguments, seed), never on which server answered it.

Standard library only (urllib + a thread pool). One POST per prompt (`n` samples in one request, or
in chunks of `n_per_request` for servers that cap n), at most `max_concurrency` in flight per server.
`api="chat"` posts to `/chat/completions` (plain prompts become one user message);
`api="completions"` posts to `/completions` (plain prompts only). Retried with exponential back-off
plus jitter: HTTP 429 and 5xx, refused/reset connections and (unless `retry_on_timeout=False`)
timeouts; a `Retry-After` header, when present, sets the wait. Other statuses fail at once with a
`GenerationError` naming the URL, the status and the server's message.

The API key is read from the environment variable `api_key_env` (default OPENAI_API_KEY; unset =
no Authorization header, as local servers need none). It is sent only in the Authorization header
and is scrubbed from every error message and log line.
Over 400 lines on purpose: the request, its retries and the choice of server are one loop, and its
failure modes (server down, busy, slow, wrong) only make sense side by side.
Tests: .venv/bin/python -m pytest tests/generate/test_openai_api.py -q
"""

from __future__ import annotations

import email.utils
import http.client
import json
import logging
import os
import random
import socket
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Sequence

from focalpo.generate.base import (
    GenerationError,
    Prompt,
    Seed,
    as_messages,
    check_sampling,
    continues_reply,
    prompt_seeds,
    truncate_at_stop,
)

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 409, 429}) | frozenset(range(500, 600))


@dataclass
class RequestStats:
    """Counters over the backend's lifetime (thread-safe updates): requests sent, retries, failures,
    and failovers (requests moved off a down server without using a retry)."""

    requests: int = 0
    retries: int = 0
    failures: int = 0
    failovers: int = 0


class _Secret:
    """Holds the API key; its repr is masked, so dumps of the backend (vars, debuggers) never show it."""

    __slots__ = ("value",)

    def __init__(self, value: str | None) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "_Secret('***')" if self.value else "_Secret(None)"


class _Retryable(Exception):
    """A failed attempt worth retrying; `delay` is the server's Retry-After, if any.

    `kind` says what the failure tells about the server: "dead" (refused, reset, dropped, timed out:
    it stopped answering), "error" (it answered 5xx) or "busy" (408/409/429: alive, come back later).
    `detail` is the message without the "POST <url>" prefix, kept as the server's last error.
    """

    def __init__(self, url: str, detail: str, kind: str, delay: float | None = None) -> None:
        super().__init__(f"POST {url} {detail}")
        self.detail, self.kind, self.delay = detail, kind, delay


class _Aborted(Exception):
    """Raised in a worker once its call has already failed elsewhere: stop retrying, nobody waits."""


@dataclass
class _Server:
    """One endpoint and its routing state; every field but `url` is guarded by the backend's `_slots`."""

    url: str  # the full POST URL
    index: int
    in_flight: int = 0
    down_since: float | None = None  # time.monotonic() when marked down; None while up
    errors_in_a_row: int = 0  # consecutive 5xx answers
    last_error: str = ""


def parse_base_urls(base_url: str | Sequence[str]) -> list[str]:
    """A list of server URLs from one URL, a comma-separated string of them, or a list; ValueError on an
    empty entry, a repeated URL or one without http(s)://."""
    items = base_url.split(",") if isinstance(base_url, str) else list(base_url)
    urls = []
    for j, u in enumerate(items):
        u = u.strip().rstrip("/") if isinstance(u, str) else u
        if not isinstance(u, str) or not u:
            raise ValueError(f"base_url entry {j} is empty or not a string in {base_url!r}")
        if not u.startswith(("http://", "https://")):
            raise ValueError(f"base_url entry {j} {u!r} must start with http:// or https://")
        if u in urls:
            raise ValueError(f"base_url lists {u!r} twice in {base_url!r}")
        urls.append(u)
    if not urls:
        raise ValueError("base_url is empty: give at least one server URL")
    return urls


class OpenAIBackend:
    """One or several OpenAI-compatible HTTP endpoints behind the `Backend` protocol.

    model: the served model name. base_url: up to and including /v1; several servers as a list or a
    comma-separated string (see the module docstring for routing and failover).
    api: "chat" (/chat/completions) or "completions" (/completions).
    max_concurrency: requests in flight at once per server (each server is typically one GPU's
    engine, so N servers take N × max_concurrency in all). timeout: seconds per request (connect + read).
    max_retries: retries after the first attempt. backoff_base / backoff_max: the wait before retry
    k is min(backoff_max, backoff_base·2^k) scaled by a factor in [1 − jitter, 1 + jitter];
    a Retry-After header replaces it (capped at max_retry_after).
    reprobe_after: seconds a server marked down gets no requests before one request probes it again.
    n_per_request: split `n` over several requests of at most this many samples; request c of prompt
    i carries seed + c (one int seed) or seed[i] + c (a list of per-prompt seeds).
    extra_body: extra JSON fields of every request (e.g. {"top_k": 50} for vLLM).
    """

    def __init__(self, model: str, base_url: str | Sequence[str] = "http://localhost:8000/v1", api: str = "chat",
                 api_key_env: str = "OPENAI_API_KEY", max_concurrency: int = 8, timeout: float = 600.0,
                 max_retries: int = 5, backoff_base: float = 1.0, backoff_max: float = 60.0, jitter: float = 0.25,
                 max_retry_after: float = 300.0, retry_on_timeout: bool = True, n_per_request: int | None = None,
                 extra_body: dict | None = None, reprobe_after: float = 30.0) -> None:
        if api not in ("chat", "completions"):
            raise ValueError(f"api must be 'chat' or 'completions', got {api!r}")
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        if max_retries < 0 or timeout <= 0 or not 0 <= jitter <= 1:
            raise ValueError("need max_retries >= 0, timeout > 0 and 0 <= jitter <= 1")
        if n_per_request is not None and n_per_request < 1:
            raise ValueError(f"n_per_request must be >= 1, got {n_per_request}")
        if reprobe_after < 0:
            raise ValueError(f"reprobe_after must be >= 0, got {reprobe_after}")
        self.model, self.api = model, api
        endpoint = "/chat/completions" if api == "chat" else "/completions"
        self.urls = tuple(u + endpoint for u in parse_base_urls(base_url))
        self.api_key_env = api_key_env
        self._api_key = _Secret(os.environ.get(api_key_env) or None)  # never in repr, errors or logs
        self.max_concurrency, self.timeout, self.max_retries = max_concurrency, timeout, max_retries
        self.backoff_base, self.backoff_max, self.jitter = backoff_base, backoff_max, jitter
        self.max_retry_after, self.retry_on_timeout = max_retry_after, retry_on_timeout
        self.reprobe_after = reprobe_after
        self.n_per_request, self.extra_body = n_per_request, dict(extra_body or {})
        self.stats = RequestStats()
        self._lock = threading.Lock()
        # Server health and slots live on the backend, not the call: a server found down stays down
        # for the next call too, and concurrent calls share the per-server bound.
        self._servers = [_Server(u, i) for i, u in enumerate(self.urls)]
        self._slots = threading.Condition()
        self._turn = 0  # rotates the tie-break between equally loaded servers

    @property
    def url(self) -> str:
        """The POST URL (comma-joined when there are several servers)."""
        return ",".join(self.urls)

    def __repr__(self) -> str:
        where = f"url={self.urls[0]!r}" if len(self.urls) == 1 else f"urls={list(self.urls)!r}"
        return f"OpenAIBackend(model={self.model!r}, {where}, api_key_env={self.api_key_env!r})"

    def generate(self, prompts: Sequence[Prompt], n: int = 1, temperature: float = 1.0, top_p: float = 1.0,
                 max_new_tokens: int = 512, stop: Sequence[str] | None = None,
                 seed: Seed = None) -> list[list[str]]:
        """`n` completions per prompt, in prompt order; raises GenerationError on the first failed prompt.

        `seed`: None, one int (request c of every prompt carries seed + c) or one int per prompt
        (request c of prompt i carries seed[i] + c); how a server honours it is up to the server.
        """
        check_sampling(prompts, n, temperature, top_p, max_new_tokens, stop, seed)
        seeds = prompt_seeds(seed, len(prompts))
        if self.api == "completions":
            for i, p in enumerate(prompts):
                if not isinstance(p, str):
                    raise GenerationError(f"prompt {i} is a message list; api='completions' takes plain strings "
                                          "(use api='chat')")
        chunk = self.n_per_request or n
        jobs = []  # (prompt index, body)
        for i, p in enumerate(prompts):
            for c, start in enumerate(range(0, n, chunk)):
                body = {"model": self.model, "n": min(chunk, n - start), "temperature": temperature,
                        "top_p": top_p, "max_tokens": max_new_tokens, **self.extra_body}
                body["messages" if self.api == "chat" else "prompt"] = as_messages(p) if self.api == "chat" else p
                if self.api == "chat" and continues_reply(p):  # vLLM's and SGLang's chat extension
                    body = {"continue_final_message": True, "add_generation_prompt": False, **body}
                if stop:
                    body["stop"] = list(stop)
                if seeds is not None:
                    body["seed"] = seeds[i] + c
                elif seed is not None:
                    body["seed"] = seed + c
                jobs.append((i, body))
        out: list[list[str]] = [[] for _ in prompts]
        if not jobs:
            return out
        abort = threading.Event()  # set once the call has failed: workers stop instead of retrying on
        workers = min(self.max_concurrency * len(self._servers), len(jobs))  # the per-server bound is in _acquire
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="openai")
        try:
            futures = [pool.submit(self._complete, body, f"prompt {i}", abort) for i, body in jobs]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            for f in futures:  # the first failure in prompt order, once any has failed
                if f in done and f.exception() is not None:
                    raise f.exception()
            for (i, _), f in zip(jobs, futures):  # chunks were submitted in order: concatenation keeps it
                out[i].extend(truncate_at_stop(t, stop) for t in f.result())
        finally:
            abort.set()
            with self._slots:
                self._slots.notify_all()  # wake workers waiting for a slot so that they see `abort`
            pool.shutdown(wait=True, cancel_futures=True)
        return out

    # ----------------------------------------------------------------------------------------------

    def _complete(self, body: dict, where: str, abort: threading.Event) -> list[str]:
        """POST one request (with retries and failover) and return its `n` texts ordered by choice index."""
        data, url = self._post_with_retries(body, where, abort)
        choices = data.get("choices") if isinstance(data, dict) else None
        if not isinstance(choices, list) or len(choices) != body["n"]:
            got = len(choices) if isinstance(choices, list) else "no"
            raise GenerationError(f"{where}: {url} returned {got} choices, expected n={body['n']}")
        choices = sorted(choices, key=lambda c: c.get("index", 0))
        if self.api == "chat":
            return [((c.get("message") or {}).get("content") or "") for c in choices]
        return [c.get("text") or "" for c in choices]

    def _post_with_retries(self, body: dict, where: str, abort: threading.Event) -> tuple[Any, str]:
        """The decoded reply and the URL that gave it. Retries use the back-off; a request whose server
        went down moves to a live one at once and without using a retry, once per server."""
        payload = json.dumps(body).encode()
        attempt, tries, last, left = 0, 0, None, set()
        while True:
            server = self._acquire(avoid=last, abort=abort)
            tries += 1
            try:
                data = self._post(server.url, payload, where)
            except _Retryable as e:
                moved = self._settle(server, e) and server.index not in left
                if moved:
                    left.add(server.index)
                    self._count(failovers=1)
                    log.warning("%s", self._redact(f"{where}: {e}; {server.url} is down, moving to another server"))
                    last = server
                    continue
                if attempt == self.max_retries:
                    self._count(failures=1)
                    raise GenerationError(self._redact(f"{where}: {e} (gave up after {tries} attempts)"
                                                       + self._servers_summary())) from None
                delay = self._delay(attempt, e.delay)
                self._count(retries=1)
                log.warning("%s", self._redact(f"{where}: {e}; retry {attempt + 1}/{self.max_retries} in {delay:.2f}s"))
                if abort.wait(delay):
                    raise _Aborted() from None
                attempt, last = attempt + 1, server
            except BaseException:
                self._settle(server, None, answered=False)
                raise
            else:
                self._settle(server, None)
                return data, server.url

    def _acquire(self, avoid: _Server | None, abort: threading.Event) -> _Server:
        """Take a slot on the server the next attempt should use, waiting while every usable one is full."""
        with self._slots:
            while True:
                if abort.is_set():
                    raise _Aborted()
                now = time.monotonic()
                server = self._pick(avoid, now)
                if server is not None:
                    server.in_flight += 1
                    return server
                # Woken by every freed slot and health change; a cool-down ending is the one event
                # nobody signals, so wait no longer than that (and 1 s at most, in case).
                reprobes = [s.down_since + self.reprobe_after - now for s in self._servers if s.down_since is not None]
                self._slots.wait(timeout=min([1.0] + [t for t in reprobes if t > 0]))

    def _pick(self, avoid: _Server | None, now: float) -> _Server | None:
        """The least-loaded usable server with a free slot (None: wait). Usable: up, or down for at least
        `reprobe_after` with nothing in flight (a probe); when all are down, any (the back-off was the
        wait). A server other than `avoid`, where the last attempt failed, is preferred."""
        free = [s for s in self._servers if s.in_flight < self.max_concurrency]
        usable = [s for s in free if s.down_since is None
                  or (now - s.down_since >= self.reprobe_after and s.in_flight == 0)]
        if not usable and all(s.down_since is not None for s in self._servers):
            usable = free
        if avoid in usable and len(usable) > 1:
            usable.remove(avoid)
        if not usable:
            return None
        turn, self._turn = self._turn, self._turn + 1
        return min(usable, key=lambda s: (s.in_flight, (s.index - turn) % len(self._servers)))

    def _settle(self, server: _Server, error: _Retryable | None, answered: bool = True) -> bool:
        """Free `server`'s slot and update its health from the attempt's outcome (`error` None and
        `answered`: it replied). True when the server is down and another is up: move the request."""
        with self._slots:
            server.in_flight -= 1
            if error is None and answered:
                if server.down_since is not None:
                    log.warning("%s answers again: back in rotation", server.url)
                server.down_since, server.errors_in_a_row = None, 0
            elif error is not None:
                server.last_error = error.detail
                if error.kind == "error":
                    server.errors_in_a_row += 1
                dead = error.kind == "dead" or server.errors_in_a_row > self.max_retries
                if dead and server.down_since is None:
                    server.down_since = time.monotonic()
                    log.warning("%s", self._redact(f"{server.url} marked down: {error.detail}"))
            self._slots.notify_all()
            return server.down_since is not None and any(s.down_since is None for s in self._servers)

    def _servers_summary(self) -> str:
        """"; all 2 servers are down: <url> (down): <last error>; ..." for a failure message ("" with one server)."""
        if len(self._servers) == 1:
            return ""
        with self._slots:
            down = sum(s.down_since is not None for s in self._servers)
            parts = [f"{s.url} ({'down' if s.down_since is not None else 'up'}): {s.last_error or 'no error'}"
                     for s in self._servers]
        head = f"all {len(parts)} servers are down" if down == len(parts) else f"{down} of {len(parts)} servers down"
        return f"; {head}: " + "; ".join(parts)

    def _post(self, url: str, payload: bytes, where: str) -> Any:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key.value:
            headers["Authorization"] = f"Bearer {self._api_key.value}"
        req = urllib.request.Request(url, data=payload, headers=headers, method="POST")
        self._count(requests=1)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as e:
            detail = f"-> HTTP {e.code} {e.reason}: {_server_message(e.read())}"
            if e.code in RETRY_STATUSES:
                kind = "error" if e.code >= 500 else "busy"
                raise _Retryable(url, detail, kind, _retry_after(e.headers.get("Retry-After"))) from None
            self._count(failures=1)
            raise GenerationError(self._redact(f"{where}: POST {url} {detail}")) from None
        except (TimeoutError, socket.timeout) as e:
            if not self.retry_on_timeout:
                self._count(failures=1)
                raise GenerationError(f"{where}: POST {url} timed out after {self.timeout}s") from None
            raise _Retryable(url, f"timed out after {self.timeout}s ({type(e).__name__})", "dead") from None
        except urllib.error.URLError as e:
            if isinstance(e.reason, (TimeoutError, socket.timeout)) and not self.retry_on_timeout:
                self._count(failures=1)
                raise GenerationError(f"{where}: POST {url} timed out after {self.timeout}s") from None
            raise _Retryable(url, f"failed to connect: {e.reason}", "dead") from None
        except (ConnectionError, http.client.HTTPException) as e:
            raise _Retryable(url, f"connection error: {type(e).__name__}: {e}", "dead") from None
        try:
            return json.loads(raw)
        except ValueError:
            self._count(failures=1)
            raise GenerationError(self._redact(f"{where}: {url} returned non-JSON: {raw[:200]!r}")) from None

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_retry_after)
        base = min(self.backoff_max, self.backoff_base * 2**attempt)
        return base * random.uniform(1 - self.jitter, 1 + self.jitter)

    def _count(self, **deltas: int) -> None:
        with self._lock:
            for k, v in deltas.items():
                setattr(self.stats, k, getattr(self.stats, k) + v)

    def _redact(self, text: str) -> str:
        key = self._api_key.value
        return text.replace(key, "***") if key else text


def _server_message(raw: bytes) -> str:
    """The `error.message` (or `message`/`detail`) of an error body, else its first 500 characters."""
    text = raw.decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except ValueError:
        return text[:500] or "(empty body)"
    if isinstance(data, dict):
        err = data.get("error")
        for v in (err.get("message") if isinstance(err, dict) else err, data.get("message"), data.get("detail")):
            if v:
                return str(v)[:500]
    return text[:500]


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date; None when absent/bad."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
