"""``autarky bench messaging``: signed machine-to-machine round trips over a local NATS server (SPEC P9).

What is measured, all in one run on this machine:

* ``verify_per_s_single_core``: libsodium Ed25519 verifications per second on one thread over
  envelope-sized messages, the baseline (best of three rounds);
* two agents, each in its own process with its own key, replay guard and cached
  :class:`~autarky.messaging.directory.StaticDirectory` holding both keys, talk through a local
  nats-server that the benchmark starts and stops. The requester keeps ``concurrency`` requests in
  flight; one round trip is: seal (sign) a request, send it, the responder receives it and opens it
  (decode, directory lookup, signature, expiry, nonce), seals a signed reply correlated to the
  request, the requester receives and opens the reply (the same checks, plus the correlation);
* ``messages_per_s``: signed messages verified per second, both directions counted (requests
  verified by the responder plus replies verified by the requester, over the measured window);
  target >= 5,000 (P9). ``round_trips_per_s`` is half of it;
* ``p50_rtt_ms`` / ``p99_rtt_ms``: from before the request is sealed until its reply is verified,
  at that concurrency (closed loop: they include waiting behind the other requests in flight);
  ``single_p50_rtt_ms`` / ``single_p99_rtt_ms``: the same with one request in flight
  (``--latency-round-trips`` of them, after the throughput phase);
* ``ratio``: messages_per_s / verify_per_s_single_core, so runs on a noisy machine compare.

Nothing is signed ahead of time: every message is sealed and opened inside the measured window.
"""

from __future__ import annotations

import asyncio
import hashlib
import multiprocessing
import statistics
import tempfile
import time
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

from autarky.crypto.domains import Domain
from autarky.crypto.keys import SigningKey, cose_sig_structure, verify_raw
from autarky.messaging.directory import StaticDirectory
from autarky.messaging.transport import Agent, subject_for

REQUEST_TYPE = "m2m/bench"
REPLY_TYPE = "m2m/bench_reply"
TARGET_MESSAGES_PER_S = 5_000
WARMUP_ROUND_TRIPS = 200
REQUEST_TIMEOUT_S = 30.0
_SUBJECT_KIND = "bench"


class MessagingBenchError(Exception):
    """The benchmark could not run (server or responder did not start, a round trip failed)."""


def measure_verify_rate(samples: int = 4000, rounds: int = 3) -> float:
    """Single-thread libsodium verifications per second over envelope-sized Sig_structures."""
    key = _key("verify-baseline")
    protected = b"h" * 96
    payloads = [i.to_bytes(4, "big") * 60 for i in range(samples)]
    messages = [cose_sig_structure(Domain.MESSAGE, protected, payload) for payload in payloads]
    signatures = [key.sign_cose(Domain.MESSAGE, protected, payload) for payload in payloads]
    public_key = key.public_key.raw
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        for message, signature in zip(messages, signatures, strict=True):
            assert verify_raw(public_key, message, signature)
        best = max(best, samples / (time.perf_counter() - start))
    return best


def _key(name: str, seed: int = 1) -> SigningKey:
    return SigningKey.from_seed(hashlib.sha256(f"bench-messaging/{seed}/{name}".encode()).digest())


def _directory(seed: int) -> StaticDirectory:
    directory = StaticDirectory()
    for name in ("requester", "responder"):
        key = _key(name, seed)
        directory.add_key(key.did, key.public_key.raw)
    return directory


# --- the responder: its own process -------------------------------------------------------------------


def _responder_process(url: str, seed: int, ready: Event, stop: Event, results: Any) -> None:
    asyncio.run(_responder(url, seed, ready, stop, results))


async def _responder(url: str, seed: int, ready: Event, stop: Event, results: Any) -> None:
    agent = Agent(_key("responder", seed), _directory(seed), name="bench-responder")
    await agent.connect(url)
    verified = 0

    def answer(message: Any) -> tuple[str, Any]:
        nonlocal verified
        verified += 1
        return REPLY_TYPE, message.body

    await agent.respond(agent.inbox(_SUBJECT_KIND), answer)
    await agent.flush()
    ready.set()
    await asyncio.to_thread(stop.wait)
    await agent.close()
    results.put({"verified": verified, "refused": dict(agent.refused)})


# --- the requester: this process ------------------------------------------------------------------------


async def _round_trips(
    agent: Agent, responder: str, count: int, concurrency: int, start_index: int
) -> tuple[list[float], int]:
    """Run ``count`` round trips with ``concurrency`` in flight; returns RTTs (s) and replies verified."""
    subject = subject_for(responder, _SUBJECT_KIND)
    rtts: list[float] = []
    next_index = start_index
    end_index = start_index + count

    async def worker() -> None:
        nonlocal next_index
        while next_index < end_index:
            index = next_index
            next_index += 1
            started = time.perf_counter()
            body = {"i": index, "reading": index * 7}
            reply = await agent.ask(subject, responder, REQUEST_TYPE, body, timeout=REQUEST_TIMEOUT_S)
            if reply.type != REPLY_TYPE or reply.body.get("i") != index:
                raise MessagingBenchError(f"round trip {index}: unexpected reply {reply.type} {reply.body!r}")
            rtts.append(time.perf_counter() - started)

    await asyncio.gather(*(worker() for _ in range(min(concurrency, count))))
    return rtts, len(rtts)


async def _run(
    messages: int, concurrency: int, seed: int, base_dir: Path, latency_round_trips: int
) -> dict[str, Any]:
    from autarky.engines.nats_server import LocalCluster

    verify_rate = measure_verify_rate()
    cluster = LocalCluster.create(base_dir / "nats", 1, name_prefix="bench-m2m")
    await cluster.start()
    context = multiprocessing.get_context("spawn")
    ready, stop, results = context.Event(), context.Event(), context.Queue()
    process = context.Process(
        target=_responder_process,
        args=(cluster.urls[0], seed, ready, stop, results),
        name="autarky-bench-responder",
        daemon=True,
    )
    try:
        process.start()
        if not await asyncio.to_thread(ready.wait, 60):
            raise MessagingBenchError("the responder agent did not start within 60 s")
        requester = Agent(_key("requester", seed), _directory(seed), name="bench-requester")
        responder_did = _key("responder", seed).did
        await requester.connect(cluster.urls[0])
        try:
            await _round_trips(requester, responder_did, min(WARMUP_ROUND_TRIPS, messages), concurrency, 0)
            started = time.perf_counter()
            rtts, replies_verified = await _round_trips(
                requester, responder_did, messages, concurrency, WARMUP_ROUND_TRIPS
            )
            elapsed = time.perf_counter() - started
            single, _ = await _round_trips(
                requester, responder_did, latency_round_trips, 1, WARMUP_ROUND_TRIPS + messages
            )
        finally:
            await requester.close()
        stop.set()
        responder_stats = await asyncio.to_thread(results.get, True, 30)
        await asyncio.to_thread(process.join, 30)
    finally:
        stop.set()
        if process.is_alive():
            process.kill()
            process.join(10)
        await asyncio.to_thread(cluster.stop)
    warmup = min(WARMUP_ROUND_TRIPS, messages)
    requests_verified = responder_stats["verified"] - warmup - len(single)
    messages_per_s = (requests_verified + replies_verified) / elapsed
    rtts_ms = sorted(rtt * 1000 for rtt in rtts)
    single_ms = sorted(rtt * 1000 for rtt in single)
    return {
        "messages": messages,
        "concurrency": concurrency,
        "round_trips": replies_verified,
        "requests_verified": requests_verified,
        "replies_verified": replies_verified,
        "elapsed_s": round(elapsed, 3),
        "messages_per_s": round(messages_per_s, 1),
        "round_trips_per_s": round(replies_verified / elapsed, 1),
        "p50_rtt_ms": round(statistics.median(rtts_ms), 3),
        "p99_rtt_ms": round(_percentile(rtts_ms, 99), 3),
        "max_rtt_ms": round(rtts_ms[-1], 3),
        "single_p50_rtt_ms": round(statistics.median(single_ms), 3),
        "single_p99_rtt_ms": round(_percentile(single_ms, 99), 3),
        "verify_per_s_single_core": round(verify_rate, 1),
        "ratio": round(messages_per_s / verify_rate, 3),
        "refused": {"requester": dict(requester.refused), "responder": responder_stats["refused"]},
        "agents": {"processes": 2, "transport": "nats", "server": "local nats-server (1)"},
        "ok": requests_verified == replies_verified == messages
        and not requester.refused
        and not responder_stats["refused"],
        "targets": {"messages_per_s": TARGET_MESSAGES_PER_S},
    }


def _percentile(ordered: list[float], percent: int) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, -(-len(ordered) * percent // 100))
    return ordered[rank - 1]


def run_messaging_bench(
    messages: int = 20_000, concurrency: int = 64, seed: int = 1, latency_round_trips: int = 1_000
) -> dict[str, Any]:
    if messages < 1 or concurrency < 1 or latency_round_trips < 1:
        raise ValueError("messages, concurrency and latency_round_trips must be at least 1")
    with tempfile.TemporaryDirectory(prefix="autarky-bench-m2m-") as tmp:
        return asyncio.run(_run(messages, concurrency, seed, Path(tmp), latency_round_trips))


__all__ = ["MessagingBenchError", "measure_verify_rate", "run_messaging_bench"]
