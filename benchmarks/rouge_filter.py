"""ROUGE-L near-duplicate filtering: alignkit's RougeLFilter vs the Self-Instruct loop over rouge-score.

The workload is the Self-Instruct filter: candidates arrive one at a time; a candidate is dropped
when its ROUGE-L F against any instruction already in the pool (the seed tasks plus everything
kept so far) is >= 0.7, otherwise it joins the pool. Candidates come from a seeded template
grammar, so many are near-duplicates of each other and the pool grows to thousands.

Measured:
- alignkit: the whole run over all candidates (tokenisation and pool updates included).
- peer A, "rouge-score score()": ``RougeScorer(["rougeL"]).score(candidate, entry)`` for every pool
  entry, then the max (the plain way).
- peer B, "rouge-score pretokenised": the pool tokenised once and ``_score_lcs`` per pair, as the
  Self-Instruct script does it (single process here; it uses a process pool).
The peers are far too slow for all candidates, so they run on every K-th candidate with the exact
pool that candidate met in the full run (the pool is fixed by the decisions, which are asserted
equal on every measured candidate). Their total is estimated as the measured time times K
(a systematic sample across the run, so pool sizes are represented as they grow).

    .venv/bin/python benchmarks/rouge_filter.py                 # 10,000 candidates, peers on every 50th
    .venv/bin/python benchmarks/rouge_filter.py --every 1 --num 2000   # peers on every candidate
"""

from __future__ import annotations

import argparse
import platform
import random
import time

from rouge_score import rouge_scorer

from alignkit.synth.rouge import RougeLFilter
from alignkit.synth.self_instruct import load_seed_tasks

VERBS = [
    "Write", "Explain", "Describe", "List", "Summarise", "Give", "Create", "Suggest", "Compare",
    "Outline", "Draft", "Rewrite", "Invent", "Discuss", "Propose", "Name",
]  # fmt: skip
THINGS = [
    "a short poem", "three tips", "a story", "a list of ideas", "an email", "a tweet", "five facts",
    "a step-by-step guide", "a riddle", "two arguments", "a dialogue", "a product description",
    "a summary", "a quiz question", "a short speech", "a haiku", "an analogy", "a checklist",
]  # fmt: skip
TOPICS = [
    "the ocean", "climate change", "remote work", "healthy breakfast", "saving money", "learning a language",
    "public transport", "the history of tea", "black holes", "friendship", "city gardens", "time management",
    "electric cars", "the immune system", "ancient Rome", "job interviews", "recycling", "sleep",
    "volcanoes", "chess openings", "birthday parties", "first aid", "rainy days", "the stock market",
    "honeybees", "mountain hiking", "online privacy", "street food", "the Moon", "moving house",
    "board games", "renewable energy", "coffee", "libraries", "bicycles", "winter holidays",
    "photosynthesis", "small businesses", "cats", "kindness",
]  # fmt: skip
AUDIENCES = [
    "", "for children", "for a beginner", "in simple terms", "for a busy parent", "for teenagers",
    "for a teacher", "for experts", "in a formal tone", "in a funny way", "for a blog", "for a newsletter",
]  # fmt: skip
EXTRAS = [
    "", "", "", "using at most 50 words", "with two examples", "and explain your reasoning",
    "in bullet points", "without using the letter z", "ending with a question", "in the second person",
    "as if you were a pirate", "including one surprising fact",
]  # fmt: skip
FILLERS = ["please", "briefly", "clearly", "also", "really", "now", "carefully", "quickly"]


def make_candidates(num: int, seed: int) -> list[str]:
    """Instructions from the grammar, with random filler words dropped in or words deleted."""
    rng = random.Random(seed)
    candidates = []
    for _ in range(num):
        words = " ".join(
            [rng.choice(VERBS), rng.choice(THINGS), "about", rng.choice(TOPICS), rng.choice(AUDIENCES)]
            + [rng.choice(EXTRAS)]
        ).split()
        for _ in range(rng.choice([0, 0, 1, 2])):
            words.insert(rng.randint(1, len(words)), rng.choice(FILLERS))
        if rng.random() < 0.2 and len(words) > 4:
            words.pop(rng.randrange(1, len(words)))
        candidates.append(" ".join(words) + rng.choice([".", "", "!", "?"]))
    return candidates


def run_alignkit(pool_texts: list[str], candidates: list[str], threshold: float) -> tuple[list[bool], float]:
    """Drop decisions for every candidate and the wall time of the whole filtering run."""
    start = time.perf_counter()
    pool = RougeLFilter(threshold, pool_texts)
    decisions = []
    for candidate in candidates:
        duplicate = pool.is_near_duplicate(candidate)
        if not duplicate:
            pool.add(candidate)
        decisions.append(duplicate)
    return decisions, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--num", type=int, default=10_000, help="candidate instructions")
    parser.add_argument(
        "--every", type=int, default=50, help="run the rouge-score peers on every K-th candidate"
    )
    parser.add_argument("--threshold", type=float, default=0.7)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    seeds = [task.instruction for task in load_seed_tasks()]
    candidates = make_candidates(args.num, args.seed)
    decisions, alignkit_s = run_alignkit(seeds, candidates, args.threshold)

    # The pool each candidate met: seeds plus the candidates kept before it.
    kept_before = []
    count = 0
    for duplicate in decisions:
        kept_before.append(count)
        count += not duplicate
    kept = [c for c, duplicate in zip(candidates, decisions, strict=True) if not duplicate]

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    tokenizer = scorer._tokenizer  # what the Self-Instruct script uses to pre-tokenise its pool
    pool_tokens = [tokenizer.tokenize(t) for t in seeds + kept]
    sampled = list(range(0, args.num, args.every))
    score_s = pretokenised_s = 0.0
    for index in sampled:
        pool = seeds + kept[: kept_before[index]]
        candidate = candidates[index]
        start = time.perf_counter()
        best = max(scorer.score(candidate, entry)["rougeL"].fmeasure for entry in pool)
        score_s += time.perf_counter() - start
        start = time.perf_counter()
        candidate_tokens = tokenizer.tokenize(candidate)
        best_pre = max(
            rouge_scorer._score_lcs(candidate_tokens, tokens).fmeasure for tokens in pool_tokens[: len(pool)]
        )
        pretokenised_s += time.perf_counter() - start
        assert best == best_pre
        assert (best >= args.threshold) == decisions[index], (index, candidate, best)

    scale = args.num / len(sampled)
    estimated_score_s = score_s * scale
    estimated_pretokenised_s = pretokenised_s * scale
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}")
    print(
        f"workload: {args.num} candidates from the template grammar (seed {args.seed}), pool starts with "
        f"{len(seeds)} seed instructions, threshold {args.threshold} (>= drops)"
    )
    print(
        f"decisions: kept {len(kept)}, dropped {args.num - len(kept)}; final pool {len(seeds) + len(kept)}; "
        f"rouge-score agreed on all {len(sampled)} measured candidates"
    )
    print(
        f"alignkit RougeLFilter, all {args.num} candidates: {alignkit_s:.2f} s ({1e3 * alignkit_s / args.num:.3f} ms/cand)"
    )
    for name, measured, estimated in (
        ("rouge-score score() loop", score_s, estimated_score_s),
        ("rouge-score pretokenised _score_lcs loop", pretokenised_s, estimated_pretokenised_s),
    ):
        total = "measured" if args.every == 1 else "estimated"
        print(
            f"{name}: measured {measured:.1f} s on {len(sampled)} candidates (1 in {args.every}) "
            f"= {1e3 * measured / len(sampled):.1f} ms/cand; {total} for all {args.num}: {estimated:.0f} s"
        )
        print(f"  speed-up of alignkit: {estimated / alignkit_s:.0f}x")


if __name__ == "__main__":
    main()
