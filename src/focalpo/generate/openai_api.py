"""`OpenAIBackend`: sample completions from any OpenAI-compatible server (vLLM, SGLang, hosted APIs).

    vllm serve Qwen/Qwen2.5-Coder-7B-Instruct --port 8000        # or: python -m sglang.launch_server ...
    from focalpo.generate.openai_api import OpenAIBackend
    backend = OpenAIBackend("Qwen/Qwen2.5-Coder-7B-Instruct", base_url="http://localhost:8000/v1",
                            api="chat", max_concurrency=32)
    texts = backend.generate(prompts, n=10, temperature=1.5, max_new_tokens=1024, seed=0)

Standard library only (urllib + a thread pool). One POST per prompt (`n` samples in one request, or
in chunks of `n_per_request` for servers that cap n), at most `max_concurrency` in flight.
`api="chat"` posts to `/chat/completions` (plain prompts become one user message);
`api="completions"` posts to `/completions` (plain prompts only). Retried with exponential back-off
plus jitter: HTTP 429 and 5xx, refused/reset connections and (unless `retry_on_timeout=False`)
timeouts; a `Retry-After` header, when present, sets the wait. Other statuses fail at once with a
`GenerationError` naming the URL, the status and the server's message.

The API key is read from the environment variable `api_key_env` (default OPENAI_API_KEY; unset =
no Authorization header, as local servers need none). It is sent only in the Authorization header
and is scrubbed from every error message and log line.
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

from focalpo.generate.base import (GenerationError, Prompt, Seed, as_messages, check_sampling, prompt_seeds,
                                    truncate_at_stop)

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 409, 429}) | frozenset(range(500, 600))


@dataclass
class RequestStats:
    """Counters over the backend's lifetime (thread-safe updates): requests sent, retries, failures."""

    requests: int = 0
    retries: int = 0
    failures: int = 0


class _Secret:
    """Holds the API key; its repr is masked, so dumps of the backend (vars, debuggers) never show it."""

    __slots__ = ("value",)

    def __init__(self, value: str | None) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "_Secret('***')" if self.value else "_Secret(None)"


class _Retryable(Exception):
    """A failed attempt worth retrying; `delay` is the server's Retry-After, if any."""

    def __init__(self, message: str, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class OpenAIBackend:
    """An OpenAI-compatible HTTP endpoint behind the `Backend` protocol.

    model: the served model name. base_url: up to and including /v1.
    api: "chat" (/chat/completions) or "completions" (/completions).
    max_concurrency: requests in flight at once. timeout: seconds per request (connect + read).
    max_retries: retries after the first attempt. backoff_base / backoff_max: the wait before retry
    k is min(backoff_max, backoff_base·2^k) scaled by a factor in [1 − jitter, 1 + jitter];
    a Retry-After header replaces it (capped at max_retry_after).
    n_per_request: split `n` over several requests of at most this many samples; request c of prompt
    i carries seed + c (one int seed) or seed[i] + c (a list of per-prompt seeds).
    extra_body: extra JSON fields of every request (e.g. {"top_k": 50} for vLLM).
    """

    def __init__(self, model: str, base_url: str = "http://localhost:8000/v1", api: str = "chat",
                 api_key_env: str = "OPENAI_API_KEY", max_concurrency: int = 8, timeout: float = 600.0,
                 max_retries: int = 5, backoff_base: float = 1.0, backoff_max: float = 60.0, jitter: float = 0.25,
                 max_retry_after: float = 300.0, retry_on_timeout: bool = True, n_per_request: int | None = None,
                 extra_body: dict | None = None) -> None:
        if api not in ("chat", "completions"):
            raise ValueError(f"api must be 'chat' or 'completions', got {api!r}")
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        if max_retries < 0 or timeout <= 0 or not 0 <= jitter <= 1:
            raise ValueError("need max_retries >= 0, timeout > 0 and 0 <= jitter <= 1")
        if n_per_request is not None and n_per_request < 1:
            raise ValueError(f"n_per_request must be >= 1, got {n_per_request}")
        self.model, self.api = model, api
        self.url = base_url.rstrip("/") + ("/chat/completions" if api == "chat" else "/completions")
        self.api_key_env = api_key_env
        self._api_key = _Secret(os.environ.get(api_key_env) or None)  # never in repr, errors or logs
        self.max_concurrency, self.timeout, self.max_retries = max_concurrency, timeout, max_retries
        self.backoff_base, self.backoff_max, self.jitter = backoff_base, backoff_max, jitter
        self.max_retry_after, self.retry_on_timeout = max_retry_after, retry_on_timeout
        self.n_per_request, self.extra_body = n_per_request, dict(extra_body or {})
        self.stats = RequestStats()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"OpenAIBackend(model={self.model!r}, url={self.url!r}, api_key_env={self.api_key_env!r})"

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
        pool = ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(jobs)), thread_name_prefix="openai")
        try:
            futures = [pool.submit(self._complete, body, f"prompt {i}") for i, body in jobs]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            for f in futures:  # the first failure in prompt order, once any has failed
                if f in done and f.exception() is not None:
                    raise f.exception()
            for (i, _), f in zip(jobs, futures):  # chunks were submitted in order: concatenation keeps it
                out[i].extend(truncate_at_stop(t, stop) for t in f.result())
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return out

    # ----------------------------------------------------------------------------------------------

    def _complete(self, body: dict, where: str) -> list[str]:
        """POST one request (with retries) and return its `n` texts ordered by choice index."""
        data = self._post_with_retries(body, where)
        choices = data.get("choices") if isinstance(data, dict) else None
        if not isinstance(choices, list) or len(choices) != body["n"]:
            got = len(choices) if isinstance(choices, list) else "no"
            raise GenerationError(f"{where}: {self.url} returned {got} choices, expected n={body['n']}")
        choices = sorted(choices, key=lambda c: c.get("index", 0))
        if self.api == "chat":
            return [((c.get("message") or {}).get("content") or "") for c in choices]
        return [c.get("text") or "" for c in choices]

    def _post_with_retries(self, body: dict, where: str) -> Any:
        payload = json.dumps(body).encode()
        for attempt in range(self.max_retries + 1):
            try:
                return self._post(payload, where)
            except _Retryable as e:
                if attempt == self.max_retries:
                    self._count(failures=1)
                    raise GenerationError(self._redact(f"{where}: {e} (gave up after {attempt + 1} attempts)")) from None
                delay = self._delay(attempt, e.delay)
                self._count(retries=1)
                log.warning("%s", self._redact(f"{where}: {e}; retry {attempt + 1}/{self.max_retries} in {delay:.2f}s"))
                time.sleep(delay)
        raise AssertionError("unreachable")

    def _post(self, payload: bytes, where: str) -> Any:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key.value:
            headers["Authorization"] = f"Bearer {self._api_key.value}"
        req = urllib.request.Request(self.url, data=payload, headers=headers, method="POST")
        self._count(requests=1)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as e:
            detail = _server_message(e.read())
            msg = f"POST {self.url} -> HTTP {e.code} {e.reason}: {detail}"
            if e.code in RETRY_STATUSES:
                raise _Retryable(msg, _retry_after(e.headers.get("Retry-After"))) from None
            self._count(failures=1)
            raise GenerationError(self._redact(f"{where}: {msg}")) from None
        except (TimeoutError, socket.timeout) as e:
            if not self.retry_on_timeout:
                self._count(failures=1)
                raise GenerationError(f"{where}: POST {self.url} timed out after {self.timeout}s") from None
            raise _Retryable(f"POST {self.url} timed out after {self.timeout}s ({type(e).__name__})") from None
        except urllib.error.URLError as e:
            if isinstance(e.reason, (TimeoutError, socket.timeout)) and not self.retry_on_timeout:
                self._count(failures=1)
                raise GenerationError(f"{where}: POST {self.url} timed out after {self.timeout}s") from None
            raise _Retryable(f"POST {self.url} failed to connect: {e.reason}") from None
        except (ConnectionError, http.client.HTTPException) as e:
            raise _Retryable(f"POST {self.url} connection error: {type(e).__name__}: {e}") from None
        try:
            return json.loads(raw)
        except ValueError:
            self._count(failures=1)
            raise GenerationError(self._redact(f"{where}: {self.url} returned non-JSON: {raw[:200]!r}")) from None

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
