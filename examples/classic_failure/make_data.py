"""Writes ``support.jsonl``: short support conversations for Copperpot, a fictional meal-kit service.

All text is written for alignkit (no public data set). Each topic has a few user phrasings and
reply phrasings; a seeded draw picks one pairing per conversation, so the file is the same on
every machine. Conversations are single-turn on purpose: raw-text mode renders a conversation as
``User: ...`` lines followed by ``Assistant: ...``, which is only a faithful transcript for one turn.

    python make_data.py [--out support.jsonl] [--count 40] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

# topic -> (user phrasings, reply phrasings)
TOPICS: dict[str, tuple[list[str], list[str]]] = {
    "greeting": (
        ["hello", "hi", "hey there", "good morning"],
        [
            "Hi! This is Copperpot support. How can I help with your meal kits today?",
            "Hello and welcome to Copperpot support. What can I do for you?",
        ],
    ),
    "thanks": (
        ["thanks!", "thank you so much", "great, thanks"],
        [
            "You're welcome! Enjoy your cooking, and write again any time.",
            "Happy to help. Enjoy this week's recipes!",
        ],
    ),
    "delivery_day": (
        ["When does my box arrive?", "What day do you deliver?", "Which day will my kit come?"],
        [
            "Boxes arrive on the delivery day shown in your account, between 8 am and 8 pm. "
            "You get a text with a tracking link the evening before.",
            "Your box comes on the weekday you picked at sign-up. The evening before, we text you "
            "a tracking link and a two-hour window.",
        ],
    ),
    "skip_week": (
        ["Can I skip next week?", "How do I pause a week?", "I'm away next week, can I skip a box?"],
        [
            "Yes. Open Deliveries in the app and tap Skip on that week before Wednesday at noon. "
            "You won't be charged for a skipped week.",
            "Sure: skip any week from the Deliveries page up to Wednesday at noon before it ships. "
            "Skipped weeks are never charged.",
        ],
    ),
    "cancel": (
        ["How do I cancel my plan?", "I want to stop my subscription.", "Can I cancel online?"],
        [
            "You can cancel under Account, then Plan, then Cancel plan. Boxes already packed still "
            "ship, and nothing after that is charged.",
            "Go to Account > Plan > Cancel plan. If a box is already being packed it will still "
            "arrive, but you won't be billed again.",
        ],
    ),
    "damaged": (
        ["My box arrived damaged.", "Some ingredients were crushed.", "The ice packs had melted."],
        [
            "I'm sorry about that. Send us a photo from the Help page within 48 hours and we will "
            "refund the affected meals to your card.",
            "Sorry to hear it. Please add a photo under Help > Report a problem within two days; "
            "we refund every affected meal.",
        ],
    ),
    "allergens": (
        ["Do your meals contain nuts?", "Is there an allergen list?", "Can you make meals gluten free?"],
        [
            "Every recipe card lists its allergens, and you can filter the menu by allergen in the app. "
            "Our kitchen handles nuts and gluten, so we cannot promise trace-free meals.",
            "Each recipe shows its allergens on the card and in the menu filter. We pack in a kitchen "
            "that also handles nuts and gluten, so traces are possible.",
        ],
    ),
    "recycling": (
        ["Is the packaging recyclable?", "What do I do with the ice packs?", "Can I return the boxes?"],
        [
            "The cardboard box and paper bags go in household recycling. The ice packs are water "
            "and plant gel: cut them open, pour the gel in the bin and recycle the film.",
            "Box and bags are paper, so recycle them at home. For the ice packs, empty the gel "
            "into the bin and put the film in soft-plastics recycling.",
        ],
    ),
    "address": (
        ["How do I change my delivery address?", "I moved, how do I update my address?"],
        [
            "Update it under Account > Delivery address. Changes made before Wednesday at noon "
            "apply to the next box.",
            "Go to Account, then Delivery address, and save the new one. It applies to every box "
            "not yet packed.",
        ],
    ),
    "price": (
        ["How much does a box cost?", "What's the price per meal?"],
        [
            "A box of three meals for two people costs 54 euros, so 9 euros a serving. Larger "
            "boxes cost less per serving, and delivery is free.",
            "Three meals for two is 54 euros, which is 9 euros per serving, with free delivery. "
            "Bigger boxes bring the price per serving down.",
        ],
    ),
    "gift": (
        ["Do you sell gift cards?", "Can I gift a box to a friend?"],
        [
            "Yes: gift cards of 30, 60 or 120 euros are on the Gifts page. Your friend redeems "
            "the code at checkout.",
            "You can buy a gift card from the Gifts page in three amounts. The code works on any "
            "plan at checkout.",
        ],
    ),
}


def conversations(count: int, seed: int) -> list[dict[str, object]]:
    """``count`` distinct (user, reply) conversations, drawn with ``random.Random(seed)``."""
    rng = random.Random(seed)
    pairs = [(user, reply) for users, replies in TOPICS.values() for user in users for reply in replies]
    if count > len(pairs):
        raise SystemExit(f"only {len(pairs)} distinct conversations can be drawn, asked for {count}")
    chosen = rng.sample(pairs, count)
    return [
        {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": reply}]}
        for user, reply in chosen
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("support.jsonl"))
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rows = conversations(args.count, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    print(f"wrote {len(rows)} conversations to {args.out}")


if __name__ == "__main__":
    main()
