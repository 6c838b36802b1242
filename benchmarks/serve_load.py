"""``alignkit serve`` under load, on the embedded model, through the official openai client.

Measured in one run, on one loaded model:
1. one client, greedy: a plain request vs the same request streamed vs the same generation in
   process (``Engine.generate``, no HTTP): generated tokens/s and, for the stream, the time to the
   first content delta (median of ``--repeats``);
2. 1, 4 and 16 concurrent clients, one greedy request each (distinct prompts): completion tokens/s
   and p50/p95 latency, with micro-batching (``max_batch=16``) against alignkit's own unbatched
   path (``max_batch=1``: one request per generate call), and the ratio.
``transformers serve`` is not run here (it is not part of this environment's checked set).

    .venv/bin/python benchmarks/serve_load.py                      # 1 thread, 64 tokens
    .venv/bin/python benchmarks/serve_load.py --threads 2 --clients 1 4
"""

from __future__ import annotations

import argparse
import platform
import statistics
import threading
import time
from typing import Any

import openai
import torch

from alignkit.config.serve import ServeLimits
from alignkit.data.formatting import generation_prompt_ids
from alignkit.generation.types import GenerationParams
from alignkit.models.loader import load_model
from alignkit.serve.app import create_app
from alignkit.serve.engine import Engine
from alignkit.serve.server import BackgroundServer, bind_socket

TOPICS = ["bicycles", "the moon", "bread", "rivers", "chess", "volcanoes", "tea", "owls", "glass", "trains",
          "maps", "honey", "clocks", "whales", "salt", "bridges"]


def ask(client: openai.OpenAI, topic: str, max_tokens: int) -> tuple[float, int]:
    started = time.perf_counter()
    reply = client.chat.completions.create(model="embedded", temperature=0, max_tokens=max_tokens,
                                           messages=[{"role": "user", "content": f"Tell me about {topic}."}])
    assert reply.usage is not None
    return time.perf_counter() - started, reply.usage.completion_tokens


def ask_streamed(client: openai.OpenAI, topic: str, max_tokens: int) -> tuple[float, float, int]:
    started = time.perf_counter()
    first: float | None = None
    tokens = 0
    for chunk in client.chat.completions.create(model="embedded", temperature=0, max_tokens=max_tokens, stream=True,
                                                stream_options={"include_usage": True},
                                                messages=[{"role": "user", "content": f"Tell me about {topic}."}]):
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter() - started
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
    return time.perf_counter() - started, first or 0.0, tokens


def concurrent(client: openai.OpenAI, clients: int, max_tokens: int) -> dict[str, float]:
    results: list[tuple[float, int]] = []
    lock = threading.Lock()

    def run(index: int) -> None:
        outcome = ask(client, TOPICS[index % len(TOPICS)], max_tokens)
        with lock:
            results.append(outcome)

    started = time.perf_counter()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    latencies = sorted(latency for latency, _ in results)
    return {"tokens_per_s": sum(tokens for _, tokens in results) / wall, "p50": statistics.median(latencies),
            "p95": latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))], "wall": wall}


def serving(model: Any, tokenizer: Any, max_batch: int) -> tuple[Engine, BackgroundServer]:
    limits = ServeLimits(max_batch=max_batch, batch_window_ms=10 if max_batch > 1 else 0, max_queue=64)
    engine = Engine(model, tokenizer, limits=limits)
    return engine, BackgroundServer(create_app(engine, base_name="embedded"), bind_socket("127.0.0.1", 0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    loaded = load_model("embedded", device="cpu", dtype="float32")
    print(f"embedded model (SmolLM2-135M-Instruct), CPU, {args.threads} thread(s), greedy, max_tokens "
          f"{args.max_tokens}; {platform.processor() or platform.machine()}, torch {torch.__version__}")

    engine, server = serving(loaded.model, loaded.tokenizer, max_batch=16)
    with server:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=600)
        ask(client, "warm-up", 4)
        # Interleaved, so a change in the machine's load hits the three alike.
        prompt = [generation_prompt_ids(loaded.tokenizer, [{"role": "user", "content": "Tell me about bicycles."}])]
        plain, streamed, in_process = [], [], []
        for _ in range(args.repeats):
            plain.append(ask(client, "bicycles", args.max_tokens))
            streamed.append(ask_streamed(client, "bicycles", args.max_tokens))
            started = time.perf_counter()
            engine.generate(prompt, GenerationParams(max_new_tokens=args.max_tokens))
            in_process.append(time.perf_counter() - started)
        local_s = statistics.median(in_process)
        plain_s = statistics.median(seconds for seconds, _ in plain)
        stream_s = statistics.median(seconds for seconds, _, _ in streamed)
        first_s = statistics.median(first for _, first, _ in streamed)
        tokens = plain[0][1]
        print(f"\none client, {tokens} tokens: plain {tokens / plain_s:.1f} tok/s ({plain_s:.2f} s), "
              f"streamed {streamed[0][2] / stream_s:.1f} tok/s ({stream_s:.2f} s), first token after "
              f"{first_s * 1000:.0f} ms (plain reply arrives after {plain_s * 1000:.0f} ms); "
              f"in process {tokens / local_s:.1f} tok/s; stream/plain {plain_s / stream_s:.2f}x, "
              f"plain/in-process {local_s / plain_s:.2f}x")
        batched = {n: concurrent(client, n, args.max_tokens) for n in args.clients}
        batched_calls = engine.generate_calls
    engine.close()

    engine, server = serving(loaded.model, loaded.tokenizer, max_batch=1)
    with server:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=600)
        unbatched = {n: concurrent(client, n, args.max_tokens) for n in args.clients}
    engine.close()

    print(f"\n{'clients':>7} | {'batched tok/s':>13} {'p50 s':>6} {'p95 s':>6} | {'unbatched tok/s':>15} "
          f"{'p50 s':>6} {'p95 s':>6} | ratio")
    for n in args.clients:
        b, u = batched[n], unbatched[n]
        print(f"{n:>7} | {b['tokens_per_s']:>13.1f} {b['p50']:>6.2f} {b['p95']:>6.2f} | {u['tokens_per_s']:>15.1f} "
              f"{u['p50']:>6.2f} {u['p95']:>6.2f} | {b['tokens_per_s'] / u['tokens_per_s']:.2f}x")
    print(f"(batched server: {batched_calls} generate calls for {1 + 2 * args.repeats + sum(args.clients)} requests)")


if __name__ == "__main__":
    main()
