"""Writes the quickstart data: a support assistant for Ferrox, a fictional smart bike-lock company.

Everything comes from the fact table below (written for alignkit) and one ``random.Random(seed)``,
so a rerun with the same seed writes byte-identical files::

    python examples/quickstart/make_data.py --out examples/quickstart/data --seed 0

Files written into ``--out``:

- ``sft_train.jsonl`` / ``eval_sft.jsonl``: ``messages`` records. Greetings and small talk with a
  one-sentence reply; grounded questions (facts in the system turn, the relevant one among
  unrelated distractors); negatives (only distractors, the reply is a polite "I don't know");
  multi-turn chats.
- ``dpo_train.jsonl`` / ``dpo_eval.jsonl``: ``prompt`` (message list) / ``chosen`` / ``rejected``.
  Chosen is the grounded answer (rejected: a false "I don't know") or the "I don't know" on an
  unanswerable question (rejected: an invented value); for greetings, rejected is a rambling reply
  that writes the next "User:" turn.
- ``eval_grounded.jsonl``: the grounded-probe format read by
  ``alignkit.evaluation.probe_sets.load_grounded_items`` (id, context, question, answerable, answers).
- ``eval_grounded_hard.jsonl``: the same questions' kind with *related* distractors (the same
  product, or the same attribute of another product: "Link battery" in a question about the Halo's).
  Training contexts only hold unrelated distractors, as the quickstart's task says; this set measures
  how far that carries to the harder case, and the report shows it next to the main one.

Held out from all training files: a fifth of the facts (never shown, not even as distractors), one
question phrasing of every other fact, and a few greetings. The greetings of the hello probe
(``alignkit/evaluation/data/greetings.json``) are never trained on verbatim, so that probe stays a
held-out measurement.

The grounded system turn is built by ``alignkit.evaluation.probes.grounded_chat``, the function the
grounded probe asks its questions with, so training and probe prompts share one layout.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alignkit.evaluation.probe_sets import GroundedItem
from alignkit.evaluation.probes import grounded_chat

# The fact library and its generator sit next to this script (it is run as a file, not a package).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from entities import build_entity_files  # noqa: E402

CONTEXT_HEADER = "Facts about Ferrox (smart bike locks):"
HELD_OUT_FACT_SHARE = 0.2
DEV_FACTS = 12  # extra facts held out of training for the dev set


@dataclass(frozen=True)
class Fact:
    """One fact: the context line, the grounded reply, the short keys a correct reply contains,
    an invented reply with a plausible wrong value, and several phrasings of the question."""

    id: str
    text: str
    answer: str
    keys: tuple[str, ...]
    wrong: str
    questions: tuple[str, ...]


def _fact(id: str, text: str, answer: str, keys: list[str], wrong: str, questions: list[str]) -> Fact:
    return Fact(id, text, answer, tuple(keys), wrong, tuple(questions))


# The table. Each fact answers only its own questions: no two facts share a slot, so a list of
# distractors never answers the question by accident.
FACTS: tuple[Fact, ...] = (
    # Ferrox Link, the smart U-lock
    _fact(
        "link-price",
        "The Ferrox Link smart U-lock costs $89.",
        "The Ferrox Link costs $89.",
        ["$89", "89 dollars"],
        "The Ferrox Link costs $119.",
        [
            "How much does the Ferrox Link cost?",
            "What's the price of the Link U-lock?",
            "How much is the Link?",
            "What does a Ferrox Link sell for?",
            "Price of the Ferrox Link?",
        ],
    ),
    _fact(
        "link-battery",
        "The Ferrox Link battery lasts about 6 months per charge.",
        "The Link's battery lasts about 6 months on one charge.",
        ["6 months", "six months"],
        "The Link's battery lasts about 3 weeks on one charge.",
        [
            "How long does the Link battery last?",
            "How often do I need to charge my Ferrox Link?",
            "What's the battery life of the Link?",
            "How many months does a Link charge last?",
            "Does the Link battery last long?",
        ],
    ),
    _fact(
        "link-weight",
        "The Ferrox Link weighs 1.4 kg.",
        "The Ferrox Link weighs 1.4 kg.",
        ["1.4 kg", "1.4 kilograms"],
        "The Ferrox Link weighs 2.1 kg.",
        [
            "How heavy is the Ferrox Link?",
            "What does the Link weigh?",
            "What's the weight of the Link lock?",
            "Is the Link heavy to carry?",
            "How many kilos is the Ferrox Link?",
        ],
    ),
    _fact(
        "link-colours",
        "The Ferrox Link comes in matte black, signal orange and olive green.",
        "The Link comes in matte black, signal orange and olive green.",
        ["matte black", "signal orange", "olive green"],
        "The Link comes in silver and navy blue.",
        [
            "What colours does the Link come in?",
            "Which colors is the Ferrox Link available in?",
            "Can I get the Link in different colours?",
            "Is the Ferrox Link sold in orange or other colors?",
            "What colour options are there for the Link?",
        ],
    ),
    _fact(
        "link-unlock",
        "The Ferrox Link unlocks with the app over Bluetooth, with its fingerprint reader, "
        "or with the backup key.",
        "You can unlock the Link with the app over Bluetooth, with its fingerprint reader, or with the "
        "backup key.",
        ["fingerprint", "bluetooth"],
        "You unlock the Link by typing a 4-digit code on its keypad.",
        [
            "How do I unlock the Ferrox Link?",
            "What ways are there to open the Link?",
            "Can the Link be opened without my phone?",
            "How does the Link unlock?",
            "What are the unlock options on the Link?",
        ],
    ),
    _fact(
        "link-rating",
        "The Ferrox Link has a Sold Secure Gold security rating.",
        "The Ferrox Link is rated Sold Secure Gold.",
        ["Sold Secure Gold", "Gold"],
        "The Ferrox Link is rated Sold Secure Silver.",
        [
            "What security rating does the Link have?",
            "Is the Ferrox Link Sold Secure rated?",
            "How secure is the Link, officially?",
            "Which Sold Secure level is the Link?",
            "Has the Link been security certified?",
        ],
    ),
    _fact(
        "link-shackle",
        "The Ferrox Link shackle is 16 mm hardened steel.",
        "The Link's shackle is 16 mm hardened steel.",
        ["16 mm", "16mm"],
        "The Link's shackle is 13 mm aluminium.",
        [
            "How thick is the Link shackle?",
            "What is the shackle of the Ferrox Link made of?",
            "What's the shackle diameter on the Link?",
            "Is the Link's shackle steel?",
            "How strong is the shackle on the Link?",
        ],
    ),
    _fact(
        "link-charging",
        "The Ferrox Link charges over USB-C in about 2 hours.",
        "The Link charges over USB-C and takes about 2 hours to fill up.",
        ["2 hours", "two hours"],
        "The Link charges over micro-USB and takes about 5 hours to fill up.",
        [
            "How long does the Link take to charge?",
            "What cable charges the Ferrox Link?",
            "How do I charge my Link?",
            "How fast does the Link recharge?",
            "What's the charging time for the Link?",
        ],
    ),
    # Ferrox Coil, the smart cable lock
    _fact(
        "coil-price",
        "The Ferrox Coil smart cable lock costs $49.",
        "The Ferrox Coil costs $49.",
        ["$49", "49 dollars"],
        "The Ferrox Coil costs $65.",
        [
            "How much is the Ferrox Coil?",
            "What does the Coil cable lock cost?",
            "What's the price of the Coil?",
            "How much would a Coil set me back?",
            "Price of the Coil cable lock?",
        ],
    ),
    _fact(
        "coil-length",
        "The Ferrox Coil cable is 120 cm long.",
        "The Coil's cable is 120 cm long.",
        ["120 cm", "1.2 m"],
        "The Coil's cable is 90 cm long.",
        [
            "How long is the Coil cable?",
            "What's the cable length of the Ferrox Coil?",
            "Is the Coil long enough to go round a lamp post?",
            "How many centimetres is the Coil?",
            "What length is the Coil lock?",
        ],
    ),
    _fact(
        "coil-battery",
        "The Ferrox Coil runs for about 3 months per charge.",
        "The Coil runs for about 3 months on one charge.",
        ["3 months", "three months"],
        "The Coil runs for about 8 months on one charge.",
        [
            "How long does the Coil battery last?",
            "How often should I charge the Ferrox Coil?",
            "What's the Coil's battery life?",
            "How many months does the Coil run per charge?",
            "Does the Coil need charging often?",
        ],
    ),
    _fact(
        "coil-alarm",
        "The Ferrox Coil sounds a 100 dB alarm if the cable is cut or tugged.",
        "The Coil sounds a 100 dB alarm if someone cuts or tugs the cable.",
        ["100 dB", "100 decibels"],
        "The Coil sounds an 85 dB alarm if someone cuts or tugs the cable.",
        [
            "Does the Coil have an alarm?",
            "How loud is the Ferrox Coil alarm?",
            "What happens if someone cuts the Coil?",
            "What's the alarm volume on the Coil?",
            "Will the Coil make a noise if it's tampered with?",
        ],
    ),
    _fact(
        "coil-colours",
        "The Ferrox Coil comes in charcoal grey and sky blue.",
        "The Coil comes in charcoal grey and sky blue.",
        ["charcoal grey", "sky blue"],
        "The Coil comes in red and white.",
        [
            "What colours does the Coil come in?",
            "Which colors can I get the Ferrox Coil in?",
            "Is the Coil available in blue?",
            "What colour options does the Coil have?",
            "What are the Coil's colours?",
        ],
    ),
    _fact(
        "coil-weight",
        "The Ferrox Coil weighs 450 grams.",
        "The Ferrox Coil weighs 450 grams.",
        ["450 grams", "450 g"],
        "The Ferrox Coil weighs 700 grams.",
        [
            "How heavy is the Coil?",
            "What does the Ferrox Coil weigh?",
            "What's the weight of the Coil lock?",
            "Is the Coil light?",
            "How many grams is the Coil?",
        ],
    ),
    # Ferrox Halo, the frame lock
    _fact(
        "halo-price",
        "The Ferrox Halo frame lock costs $69.",
        "The Ferrox Halo costs $69.",
        ["$69", "69 dollars"],
        "The Ferrox Halo costs $79.",
        [
            "How much does the Halo cost?",
            "What's the price of the Ferrox Halo frame lock?",
            "How much is a Halo?",
            "What does the Halo sell for?",
            "Price of the Halo?",
        ],
    ),
    _fact(
        "halo-wheels",
        "The Ferrox Halo fits wheels from 26 to 29 inches.",
        "The Halo fits wheels from 26 to 29 inches.",
        ["26 to 29"],
        "The Halo fits wheels from 20 to 24 inches.",
        [
            "What wheel sizes does the Halo fit?",
            "Will the Ferrox Halo fit my 28 inch wheel?",
            "Which wheels is the Halo compatible with?",
            "What size wheels does the Halo work with?",
            "Does the Halo fit every bike wheel?",
        ],
    ),
    _fact(
        "halo-autolock",
        "The Ferrox Halo locks itself 30 seconds after you walk away from the bike.",
        "The Halo locks itself 30 seconds after you walk away from the bike.",
        ["30 seconds", "thirty seconds"],
        "The Halo locks itself 2 minutes after you walk away from the bike.",
        [
            "Does the Halo lock automatically?",
            "When does the Ferrox Halo lock itself?",
            "How does auto-lock work on the Halo?",
            "How long after I leave does the Halo lock?",
            "Do I have to lock the Halo by hand?",
        ],
    ),
    _fact(
        "halo-battery",
        "The Ferrox Halo battery lasts about 4 months per charge.",
        "The Halo's battery lasts about 4 months on one charge.",
        ["4 months", "four months"],
        "The Halo's battery lasts about 10 months on one charge.",
        [
            "How long does the Halo battery last?",
            "How often do I charge the Ferrox Halo?",
            "What's the Halo's battery life?",
            "How many months does a Halo charge last?",
            "Does the Halo need charging often?",
        ],
    ),
    _fact(
        "halo-mount",
        "The Ferrox Halo bolts onto the rear brake mounts; no adapter is needed.",
        "The Halo bolts onto your bike's rear brake mounts, with no adapter needed.",
        ["rear brake mounts"],
        "The Halo clamps onto the seat post with the included strap.",
        [
            "How is the Halo mounted?",
            "Where does the Ferrox Halo attach to the bike?",
            "Do I need an adapter to fit the Halo?",
            "How do I install the Halo on my bike?",
            "What does the Halo bolt onto?",
        ],
    ),
    # Ferrox Tag, the GPS tracker
    _fact(
        "tag-price",
        "The Ferrox Tag GPS tracker costs $39.",
        "The Ferrox Tag costs $39.",
        ["$39", "39 dollars"],
        "The Ferrox Tag costs $59.",
        [
            "How much is the Ferrox Tag?",
            "What does the Tag GPS tracker cost?",
            "What's the price of the Tag?",
            "How much do I pay for a Tag?",
            "Price of the Ferrox Tag tracker?",
        ],
    ),
    _fact(
        "tag-subscription",
        "GPS tracking on the Ferrox Tag is free for the first year, then $3 per month.",
        "Tracking with the Tag is free for the first year, then costs $3 per month.",
        ["$3 per month"],
        "Tracking with the Tag costs $5 per month from the first day.",
        [
            "Is there a subscription for the Tag?",
            "How much does Tag tracking cost per month?",
            "Do I pay monthly for the Ferrox Tag?",
            "What's the monthly fee for GPS tracking?",
            "Is Tag tracking free?",
        ],
    ),
    _fact(
        "tag-battery",
        "The Ferrox Tag lasts about 30 days between charges.",
        "The Tag lasts about 30 days between charges.",
        ["30 days", "thirty days"],
        "The Tag lasts about 10 days between charges.",
        [
            "How long does the Tag battery last?",
            "How often do I charge the Ferrox Tag?",
            "What's the battery life of the Tag?",
            "How many days does a Tag charge last?",
            "Does the Tag tracker need charging often?",
        ],
    ),
    _fact(
        "tag-hiding",
        "The Ferrox Tag hides inside the seat post, out of sight.",
        "The Tag hides inside your seat post, out of sight.",
        ["seat post"],
        "The Tag sits under the saddle in a small pouch.",
        [
            "Where does the Tag go on the bike?",
            "Where do I put the Ferrox Tag?",
            "Can thieves see the Tag?",
            "Where is the Tag hidden?",
            "How is the Tag attached to the bike?",
        ],
    ),
    _fact(
        "tag-countries",
        "The Ferrox Tag tracks bikes in 40 countries.",
        "The Tag tracks your bike in 40 countries.",
        ["40 countries"],
        "The Tag tracks your bike in 12 countries.",
        [
            "In how many countries does the Tag work?",
            "Does the Ferrox Tag work abroad?",
            "Where does Tag tracking work?",
            "How many countries does the Tag cover?",
            "Will the Tag track my bike if I travel?",
        ],
    ),
    # The Ferrox app
    _fact(
        "app-phones",
        "The Ferrox app runs on iOS 16 or later and Android 10 or later.",
        "The Ferrox app needs iOS 16 or later, or Android 10 or later.",
        ["iOS 16", "Android 10"],
        "The Ferrox app needs iOS 12 or later, or Android 7 or later.",
        [
            "Which phones does the Ferrox app run on?",
            "Does the app work on my Android phone?",
            "What iOS version do I need for the app?",
            "What are the app's system requirements?",
            "Is the Ferrox app available for iPhone?",
        ],
    ),
    _fact(
        "app-sharing",
        "In the Ferrox app you can share a lock with up to 5 people.",
        "You can share a lock with up to 5 people in the app.",
        ["5 people", "five people"],
        "You can share a lock with up to 2 people in the app.",
        [
            "Can I share my lock with my family?",
            "How many people can use one lock?",
            "Can someone else unlock my bike with their phone?",
            "How many users can share a Ferrox lock?",
            "Is lock sharing possible in the app?",
        ],
    ),
    _fact(
        "app-history",
        "The Ferrox app keeps a 90-day history of lock and unlock events.",
        "The app keeps a 90-day history of lock and unlock events.",
        ["90-day", "90 days"],
        "The app keeps a 30-day history of lock and unlock events.",
        [
            "How far back does the lock history go?",
            "Can I see when my lock was opened?",
            "How long does the app keep the unlock log?",
            "Does the Ferrox app record lock events?",
            "How many days of history does the app show?",
        ],
    ),
    _fact(
        "app-low-battery",
        "The Ferrox app warns you when a lock's battery drops to 15%.",
        "The app warns you when the battery drops to 15%.",
        ["15%", "15 percent"],
        "The app warns you when the battery drops to 5%.",
        [
            "When does the app warn me about a low battery?",
            "Will I get a low battery alert?",
            "At what battery level does the app notify me?",
            "Does the app tell me when to charge?",
            "How does the app warn about battery?",
        ],
    ),
    _fact(
        "app-firmware",
        "Firmware updates install from the Ferrox app over Bluetooth in about 4 minutes.",
        "Firmware updates install from the app over Bluetooth and take about 4 minutes.",
        ["4 minutes", "four minutes"],
        "Firmware updates install from the app over Bluetooth and take about 20 minutes.",
        [
            "How do I update the lock's firmware?",
            "How long does a firmware update take?",
            "How do lock updates work?",
            "Can I update my lock from my phone?",
            "How long will a Ferrox firmware update take?",
        ],
    ),
    _fact(
        "app-delete-account",
        "Delete a Ferrox account under Profile > Settings > Delete account.",
        "You can delete your account in the app under Profile > Settings > Delete account.",
        ["Profile > Settings"],
        "Accounts can only be removed by calling our support line.",
        [
            "How do I delete my Ferrox account?",
            "Can I remove my account?",
            "Where is the delete account option?",
            "How do I close my account in the app?",
            "I want to delete my account, how?",
        ],
    ),
    # Support
    _fact(
        "support-hours",
        "Ferrox phone support is open Monday to Friday, 9:00 to 17:00 CET.",
        "Phone support is open Monday to Friday, 9:00 to 17:00 CET.",
        ["9:00 to 17:00", "Monday to Friday"],
        "Phone support is open every day, 8:00 to 20:00 CET.",
        [
            "What are your phone support hours?",
            "When can I call Ferrox support?",
            "Is phone support open on weekends?",
            "What time does the support line open?",
            "When is phone support available?",
        ],
    ),
    _fact(
        "support-email",
        "The Ferrox support email is help@ferrox.example.",
        "You can email us at help@ferrox.example.",
        ["help@ferrox.example"],
        "You can email us at support@ferrox-locks.example.",
        [
            "What's the support email address?",
            "How can I email Ferrox?",
            "Which address do I email for help?",
            "Can I contact support by email?",
            "What email should I write to?",
        ],
    ),
    _fact(
        "support-chat",
        "Live chat in the Ferrox app usually replies within 10 minutes during opening hours.",
        "Live chat in the app usually replies within 10 minutes during opening hours.",
        ["10 minutes"],
        "Live chat in the app usually replies within an hour.",
        [
            "How fast does live chat reply?",
            "Is there a live chat?",
            "How long do I wait for a chat answer?",
            "How quick is the in-app chat?",
            "Does Ferrox have chat support?",
        ],
    ),
    _fact(
        "showroom-address",
        "The Ferrox showroom is at 12 Canal Street, Leeds.",
        "Our showroom is at 12 Canal Street, Leeds.",
        ["12 Canal Street"],
        "Our showroom is at 48 Mill Road, Manchester.",
        [
            "Where is your showroom?",
            "What's the address of the Ferrox showroom?",
            "What street is the showroom on?",
            "Where can I see the locks in person?",
            "Where exactly is the Ferrox showroom?",
        ],
    ),
    _fact(
        "showroom-hours",
        "The Ferrox showroom is open Tuesday to Saturday, 10:00 to 18:00.",
        "The showroom is open Tuesday to Saturday, 10:00 to 18:00.",
        ["Tuesday to Saturday"],
        "The showroom is open Monday to Friday, 9:00 to 17:00.",
        [
            "When is the showroom open?",
            "What are the showroom opening hours?",
            "Is the showroom open on Saturday?",
            "What days can I visit the showroom?",
            "Showroom opening times?",
        ],
    ),
    # Shipping
    _fact(
        "ship-free",
        "Shipping is free on orders over $50; smaller orders pay $6.",
        "Shipping is free on orders over $50; below that it costs $6.",
        ["$50", "50 dollars"],
        "Shipping is free on orders over $100; below that it costs $10.",
        [
            "Is shipping free?",
            "How much is shipping?",
            "Do I pay for delivery?",
            "What's the free shipping threshold?",
            "When do I get free delivery?",
        ],
    ),
    _fact(
        "ship-time",
        "UK orders arrive in 2 to 4 working days.",
        "UK orders arrive in 2 to 4 working days.",
        ["2 to 4 working days", "2-4 working days"],
        "UK orders arrive in 7 to 10 working days.",
        [
            "How long does delivery take?",
            "When will my order arrive?",
            "How many days is shipping to the UK?",
            "How fast do you deliver?",
            "What's the delivery time?",
        ],
    ),
    _fact(
        "ship-countries",
        "Ferrox ships to the UK, the EU, Norway and Switzerland.",
        "We ship to the UK, the EU, Norway and Switzerland.",
        ["Norway", "Switzerland"],
        "We ship worldwide, including the US and Canada.",
        [
            "Which countries do you ship to?",
            "Do you deliver outside the UK?",
            "Can you ship to Switzerland?",
            "Where do you send orders?",
            "Do you ship internationally?",
        ],
    ),
    _fact(
        "ship-express",
        "Next-day express delivery in the UK costs $12.",
        "Next-day express delivery in the UK costs $12.",
        ["$12", "12 dollars"],
        "Next-day express delivery in the UK costs $25.",
        [
            "Do you offer next-day delivery?",
            "How much is express shipping?",
            "How much is next-day delivery?",
            "What does express delivery cost?",
            "Is there a faster shipping option?",
        ],
    ),
    # Returns, warranty, guarantees
    _fact(
        "return-window",
        "Unused locks can be returned within 30 days for a full refund.",
        "You can return an unused lock within 30 days for a full refund.",
        ["30 days", "thirty days"],
        "You can return an unused lock within 14 days for a full refund.",
        [
            "What's your return policy?",
            "How long do I have to return a lock?",
            "Can I send my lock back?",
            "How many days do I have for a refund?",
            "Can I return a lock I don't like?",
        ],
    ),
    _fact(
        "return-label",
        "Returns are free: a prepaid return label is in the box.",
        "Returns are free: use the prepaid return label in the box.",
        ["prepaid return label", "free"],
        "Returns cost $8, taken from your refund.",
        [
            "Do I pay for return shipping?",
            "How do I send a return?",
            "Is there a return label?",
            "Are returns free?",
            "Who pays postage on returns?",
        ],
    ),
    _fact(
        "refund-time",
        "Refunds reach your card within 5 working days after the return arrives.",
        "Refunds reach your card within 5 working days after we receive the return.",
        ["5 working days", "five working days"],
        "Refunds reach your card within 14 working days after we receive the return.",
        [
            "How long does a refund take?",
            "When will I get my money back?",
            "How fast are refunds?",
            "How many days until the refund arrives?",
            "When is my refund paid?",
        ],
    ),
    _fact(
        "warranty",
        "Every Ferrox lock has a 2-year warranty.",
        "Every Ferrox lock has a 2-year warranty.",
        ["2-year", "2 years", "two years"],
        "Every Ferrox lock has a 1-year warranty.",
        [
            "What's the warranty on Ferrox locks?",
            "How long is the warranty?",
            "Is my lock under warranty?",
            "How many years of warranty do I get?",
            "Do the locks come with a warranty?",
        ],
    ),
    _fact(
        "theft-guarantee",
        "If a bike locked with a Ferrox Link is stolen, Ferrox pays up to $1,000 toward a new bike.",
        "If your bike is stolen while locked with a Link, we pay up to $1,000 toward a new one.",
        ["$1,000", "1000 dollars"],
        "If your bike is stolen while locked with a Link, we pay up to $300 toward a new one.",
        [
            "Is there a theft guarantee?",
            "What happens if my bike gets stolen anyway?",
            "Do you pay if my bike is stolen while locked?",
            "How much is the theft guarantee worth?",
            "Will you cover a stolen bike?",
        ],
    ),
    _fact(
        "spare-key",
        "A replacement backup key costs $15; you need the key number from your card.",
        "A replacement backup key costs $15; you'll need the key number from your key card.",
        ["$15"],
        "A replacement backup key costs $40.",
        [
            "I lost my backup key, what now?",
            "How much is a replacement key?",
            "Can I order a spare key?",
            "How do I get a new backup key?",
            "What does a new key cost?",
        ],
    ),
    # Durability
    _fact(
        "waterproof",
        "All Ferrox locks are rated IP67 waterproof.",
        "All Ferrox locks are rated IP67, so rain is no problem.",
        ["IP67"],
        "All Ferrox locks are rated IP54, so keep them out of heavy rain.",
        [
            "Are the locks waterproof?",
            "Can I leave my lock in the rain?",
            "What's the IP rating of the locks?",
            "Will rain damage a Ferrox lock?",
            "How water resistant are the locks?",
        ],
    ),
    _fact(
        "temperature",
        "Ferrox locks work from -20 to 50 °C.",
        "The locks work from -20 to 50 °C.",
        ["-20 to 50"],
        "The locks work from -5 to 35 °C.",
        [
            "Do the locks work in the cold?",
            "What temperatures can the locks handle?",
            "Will my lock work in winter?",
            "What's the operating temperature range?",
            "Can I use the lock in freezing weather?",
        ],
    ),
    # Company and shop
    _fact(
        "founded",
        "Ferrox was founded in 2019 in Leeds.",
        "Ferrox was founded in 2019 in Leeds.",
        ["2019"],
        "Ferrox was founded in 2012 in Bristol.",
        [
            "When was Ferrox founded?",
            "How old is Ferrox?",
            "What year was Ferrox founded?",
            "What year did Ferrox begin?",
            "When did the company start?",
        ],
    ),
    _fact(
        "payment",
        "The Ferrox online shop accepts Visa, Mastercard, PayPal and Apple Pay.",
        "The online shop accepts Visa, Mastercard, PayPal and Apple Pay.",
        ["PayPal", "Apple Pay"],
        "The online shop accepts Visa and bank transfer only.",
        [
            "How can I pay?",
            "Do you accept PayPal?",
            "Which payment methods do you take?",
            "Can I pay with Apple Pay?",
            "What cards does the shop accept?",
        ],
    ),
    _fact(
        "student-discount",
        "Students get 10% off with a valid student ID.",
        "Students get 10% off with a valid student ID.",
        ["10%", "10 percent"],
        "Students get 25% off with a valid student ID.",
        [
            "Is there a student discount?",
            "Do students get money off?",
            "How much do students save?",
            "Can I get a discount as a student?",
            "What's the student discount?",
        ],
    ),
    _fact(
        "fleet-discount",
        "Orders of 10 or more locks for a fleet get 20% off.",
        "Fleet orders of 10 or more locks get 20% off.",
        ["20%", "20 percent"],
        "Fleet orders of 50 or more locks get 5% off.",
        [
            "Do you do bulk discounts?",
            "Is there a discount for businesses buying many locks?",
            "How much off for fleet orders?",
            "Can a bike rental shop get a discount?",
            "What's the bulk order discount?",
        ],
    ),
    _fact(
        "recycling",
        "Send an old lock back for free recycling and get $10 off your next Ferrox lock.",
        "Send your old lock back for free recycling and you get $10 off your next lock.",
        ["$10", "10 dollars"],
        "Send your old lock back for recycling and you get $30 off your next lock.",
        [
            "Can I recycle my old lock?",
            "What do I do with my old lock?",
            "Is there a trade-in offer?",
            "Do you take old locks back?",
            "Do I get anything for recycling a lock?",
        ],
    ),
    _fact(
        "gift-wrap",
        "Gift wrapping costs $4 per order.",
        "Gift wrapping costs $4 per order.",
        ["$4", "4 dollars"],
        "Gift wrapping costs $10 per order.",
        [
            "Can you gift wrap my order?",
            "How much is gift wrapping?",
            "Do you offer gift wrap?",
            "Can I send a lock as a present?",
            "What does gift wrapping cost?",
        ],
    ),
)

# More facts, for training only (never held out, never in an eval set): with the table's 42
# training facts alone the model learned which facts it could answer rather than to read the
# context; every false "I don't know" of the final model was on a fact no training file held.
EXTRA_FACTS: tuple[Fact, ...] = (
    # Ferrox Link, more specs
    _fact(
        "link-alarm",
        "The Ferrox Link sounds a 110 dB alarm when someone tries to force or cut it.",
        "The Link sounds a 110 dB alarm if someone tries to force or cut it.",
        ["110 dB", "110 decibels"],
        "The Link sounds a 90 dB alarm if someone tries to force or cut it.",
        [
            "How loud is the Link's alarm?",
            "Does the Ferrox Link have an alarm?",
            "What happens if someone tries to break the Link?",
            "How many decibels is the Link siren?",
            "Will the Link make a racket if a thief attacks it?",
        ],
    ),
    _fact(
        "link-clearance",
        "The inside of the Ferrox Link's shackle measures 10 by 17 cm.",
        "The inside of the Link's shackle measures 10 by 17 cm.",
        ["10 by 17 cm", "10 x 17 cm"],
        "The inside of the Link's shackle measures 8 by 20 cm.",
        [
            "How much space is inside the Link's shackle?",
            "What are the Link's inner dimensions?",
            "How wide is the opening of the Ferrox Link?",
            "How much room is there inside the U of the Link?",
            "What's the internal clearance of the Link lock?",
        ],
    ),
    _fact(
        "link-led",
        "The LED ring on the Ferrox Link glows red when locked and green when unlocked.",
        "The Link's LED ring glows red when locked and green when unlocked.",
        ["red when locked", "green when unlocked"],
        "The Link's LED ring glows blue when locked and white when unlocked.",
        [
            "What do the LED colours on the Link mean?",
            "What colour does the Link's light show when it's locked?",
            "How can I tell at a glance whether the Link is locked?",
            "Does the Link have a status light?",
            "What does a green glow on the Link mean?",
        ],
    ),
    # Ferrox Coil, more specs
    _fact(
        "coil-cable",
        "The Ferrox Coil cable is 12 mm braided steel with a rubber sleeve.",
        "The Coil's cable is 12 mm braided steel with a rubber sleeve.",
        ["12 mm", "12mm"],
        "The Coil's cable is 8 mm coated aluminium wire.",
        [
            "How thick is the Coil cable?",
            "What is the Ferrox Coil cable made of?",
            "What's the diameter of the Coil's cable?",
            "Is the Coil's cable metal inside?",
            "How chunky is the wire on the Coil?",
        ],
    ),
    _fact(
        "coil-unlock",
        "The Ferrox Coil opens with the app or with a 5-digit code on its buttons.",
        "You open the Coil with the app or by entering a 5-digit code on its buttons.",
        ["5-digit code", "five-digit code"],
        "You open the Coil only with a small metal key.",
        [
            "How do I unlock the Ferrox Coil?",
            "What ways are there to open the Coil?",
            "Can I open the Coil if my phone is dead?",
            "Does the Coil have a combination?",
            "How is the Coil released once it's locked?",
        ],
    ),
    _fact(
        "coil-charging",
        "The Ferrox Coil recharges over USB-C in about 90 minutes.",
        "The Coil recharges over USB-C in about 90 minutes.",
        ["90 minutes", "ninety minutes"],
        "The Coil recharges over micro-USB in about 4 hours.",
        [
            "How long does the Coil take to charge?",
            "What cable do I charge the Ferrox Coil with?",
            "How fast does the Coil recharge?",
            "How long must the Coil stay plugged in to fill up?",
            "What's the charging time for the Coil?",
        ],
    ),
    # Ferrox Halo, more specs
    _fact(
        "halo-colours",
        "The Ferrox Halo comes in gloss black and pearl white.",
        "The Halo comes in gloss black and pearl white.",
        ["gloss black", "pearl white"],
        "The Halo comes in brushed silver and racing red.",
        [
            "What colours does the Halo come in?",
            "Which colors is the Ferrox Halo sold in?",
            "Can I get the Halo in white?",
            "What finishes are available for the frame lock?",
            "Is there a choice of shades for the Halo?",
        ],
    ),
    _fact(
        "halo-charging",
        "The Ferrox Halo charges over USB-C in about 3 hours.",
        "The Halo charges over USB-C and takes about 3 hours to fill up.",
        ["3 hours", "three hours"],
        "The Halo charges over USB-C and takes about 45 minutes to fill up.",
        [
            "How long does the Halo take to charge?",
            "How do I charge the Ferrox Halo?",
            "What's the Halo's charging time?",
            "How many hours must the Halo be plugged in?",
            "What lead recharges the frame lock, and how long does it take?",
        ],
    ),
    _fact(
        "halo-certification",
        "The Ferrox Halo holds a 2-star rating from the ART security foundation.",
        "The Halo is rated 2 stars by the ART security foundation.",
        ["2 stars", "two stars"],
        "The Halo is rated 4 stars by the ART security foundation.",
        [
            "What security certification does the Halo have?",
            "How many ART stars does the Ferrox Halo have?",
            "Has the Halo been independently tested for security?",
            "What's the Halo's official security rating?",
            "Is the frame lock approved by any testing body?",
        ],
    ),
    # Ferrox Tag, more features
    _fact(
        "tag-interval",
        "While the bike is moving, the Ferrox Tag updates its location every 2 minutes.",
        "While your bike is moving, the Tag updates its location every 2 minutes.",
        ["2 minutes", "two minutes"],
        "While your bike is moving, the Tag updates its location every 15 minutes.",
        [
            "How often does the Tag update its location?",
            "How frequently does the Ferrox Tag send its position?",
            "How up to date is the Tag's position on the map?",
            "How many minutes between Tag location updates?",
            "How fresh is the GPS position the Tag reports?",
        ],
    ),
    _fact(
        "tag-motion-alert",
        "If a parked bike moves, the Ferrox Tag alerts your phone within 20 seconds.",
        "If your parked bike moves, the Tag alerts your phone within 20 seconds.",
        ["20 seconds", "twenty seconds"],
        "If your parked bike moves, the Tag alerts your phone within 5 minutes.",
        [
            "Will the Tag warn me if someone moves my bike?",
            "How quickly does the Ferrox Tag send a movement alert?",
            "Do I get notified when my parked bike is moved?",
            "How fast would I find out that a thief is riding off?",
            "Does the Tag have motion alerts?",
        ],
    ),
    # The Ferrox app and firmware, more
    _fact(
        "app-languages",
        "The Ferrox app is available in English, German, French and Dutch.",
        "The app is available in English, German, French and Dutch.",
        ["German", "Dutch"],
        "The app is available in English and Spanish only.",
        [
            "Which languages is the Ferrox app in?",
            "Can I use the app in German?",
            "Is the app available in French?",
            "Does the app support languages other than English?",
            "What language options does the app have?",
        ],
    ),
    _fact(
        "app-min-age",
        "You must be 16 or older to create a Ferrox account.",
        "You need to be 16 or older to create a Ferrox account.",
        ["16 or older"],
        "You need to be 13 or older to create a Ferrox account.",
        [
            "How old do I have to be to open a Ferrox account?",
            "Is there a minimum age for the app?",
            "Can my 12-year-old sign up?",
            "What's the age requirement for making an account?",
            "Can teenagers sign up for Ferrox?",
        ],
    ),
    _fact(
        "firmware-version",
        "The latest Ferrox lock firmware is version 3.2.",
        "The latest lock firmware is version 3.2.",
        ["3.2", "version 3.2"],
        "The latest lock firmware is version 2.7.",
        [
            "What's the latest firmware version?",
            "Which firmware version is current for Ferrox locks?",
            "What software version should my lock be running?",
            "What number is the newest lock software release?",
            "What firmware version do the locks run now?",
        ],
    ),
    # Accessories
    _fact(
        "pannier-capacity",
        "The Ferrox Cargo pannier holds 18 litres and clips onto any rear rack.",
        "The Cargo pannier holds 18 litres and clips onto any rear rack.",
        ["18 litres", "18 liters"],
        "The Cargo pannier holds 9 litres and straps under the saddle.",
        [
            "How much does the Cargo pannier hold?",
            "What's the capacity of the Ferrox Cargo pannier?",
            "How many litres is the Cargo bag?",
            "How big is the Cargo pannier?",
            "How much can I fit in the Cargo?",
        ],
    ),
    _fact(
        "glow-runtime",
        "The Ferrox Glow light set runs for 8 hours on its brightest setting.",
        "The Glow light set runs for 8 hours on its brightest setting.",
        ["8 hours", "eight hours"],
        "The Glow light set runs for 2 hours on its brightest setting.",
        [
            "How long does the Glow light set last?",
            "What's the run time of the Ferrox Glow lights?",
            "How many hours do the Glow lights run at full brightness?",
            "Will the Glow lights last through a long night ride?",
            "What's the battery life of the Glow set?",
        ],
    ),
    # Spare parts, repairs and care
    _fact(
        "parts-coil-cable",
        "A replacement cable for the Ferrox Coil costs $22 and clicks in without tools.",
        "A replacement Coil cable costs $22 and clicks in without tools.",
        ["$22", "22 dollars"],
        "A replacement Coil cable costs $45 and must be fitted at our workshop.",
        [
            "How much is a replacement Coil cable?",
            "Can I buy a new cable for my Ferrox Coil?",
            "My Coil cable is damaged, can I swap it myself?",
            "What does a spare Coil cable cost?",
            "Do I need tools to replace the Coil's cable?",
        ],
    ),
    _fact(
        "repair-fee",
        "Out-of-warranty repairs cost a flat $25 plus parts.",
        "Repairs outside the warranty cost a flat $25 plus parts.",
        ["$25", "25 dollars"],
        "Repairs outside the warranty cost $60 per hour plus parts.",
        [
            "How much do out-of-warranty repairs cost?",
            "What will you charge to fix my lock once the warranty is over?",
            "Is there a fee for repairs after the warranty?",
            "What's the repair price for an old lock?",
            "What's the labour charge for repairing a lock?",
        ],
    ),
    _fact(
        "repair-time",
        "Repairs at the Ferrox workshop in Leeds take about 7 working days.",
        "Repairs at our Leeds workshop take about 7 working days.",
        ["7 working days", "seven working days"],
        "Repairs at our Leeds workshop take about 3 weeks.",
        [
            "How long does a repair take?",
            "How many days will my lock be away for repair?",
            "When will I get my lock back from the workshop?",
            "What's the turnaround for repairs?",
            "How quickly do you fix a broken lock?",
        ],
    ),
    _fact(
        "maintenance-lube",
        "Lubricate the Ferrox Link's key cylinder with dry PTFE spray twice a year.",
        "Spray the Link's key cylinder with dry PTFE lubricant twice a year.",
        ["PTFE", "twice a year"],
        "Oil the Link's key cylinder with cooking oil every week.",
        [
            "What care does the Link's keyhole need?",
            "Should I oil the Link's lock?",
            "What lubricant should I use on the Link's keyhole?",
            "How often should the Link's key cylinder be lubricated?",
            "How do I stop the Link's keyhole from seizing up?",
        ],
    ),
    # Insurance and bike registration
    _fact(
        "insurance-partner",
        "Ferrox's insurance partner is CycleSure.",
        "Our insurance partner is CycleSure.",
        ["CycleSure"],
        "Our insurance partner is RideGuard.",
        [
            "Who is Ferrox's insurance partner?",
            "Which insurer do you work with?",
            "Is there an insurance company you recommend for my bike?",
            "Which company insures bikes through Ferrox?",
            "Do you team up with any bike insurers?",
        ],
    ),
    _fact(
        "registration-scheme",
        "Every Ferrox lock comes with free bike registration on the CycleTrace database.",
        "Every lock includes free registration of your bike on the CycleTrace database.",
        ["CycleTrace"],
        "Every lock includes free registration of your bike on the SafeWheel database.",
        [
            "Can I register my bike with Ferrox?",
            "Which database is my bike registered on?",
            "Is bike registration included with a lock?",
            "Where do I record my bike's frame number?",
            "Do you offer a bike registry?",
        ],
    ),
    # Gift cards, loyalty and newsletter
    _fact(
        "giftcard-expiry",
        "Ferrox gift cards never expire.",
        "Ferrox gift cards never expire.",
        ["never expire"],
        "Ferrox gift cards expire 12 months after purchase.",
        [
            "Do Ferrox gift cards expire?",
            "How long do I have to spend a gift voucher?",
            "When does my gift card run out?",
            "Can I still use a gift card from three years ago?",
            "How long is a gift card valid for?",
        ],
    ),
    _fact(
        "giftcard-amounts",
        "Ferrox gift cards are sold for any amount from $10 to $200.",
        "You can buy a gift card for any amount from $10 to $200.",
        ["$10 to $200"],
        "Gift cards come in fixed amounts of $25, $50 and $100.",
        [
            "What values do gift cards come in?",
            "How much can I put on a Ferrox gift card?",
            "What's the maximum gift card amount?",
            "Can I choose my own gift card value?",
            "What's the smallest gift card you sell?",
        ],
    ),
    _fact(
        "loyalty-points",
        "Ferrox Riders Club members earn 1 point for every $1 spent.",
        "Riders Club members earn 1 point for every $1 they spend.",
        ["1 point"],
        "Riders Club members earn 5 points for every $10 they spend.",
        [
            "How many points do I earn per dollar?",
            "How do I collect Riders Club points?",
            "What's the earning rate in the loyalty scheme?",
            "Do I get points when I shop with Ferrox?",
            "How are loyalty points earned?",
        ],
    ),
    _fact(
        "loyalty-redeem",
        "Riders Club: every 200 points can be swapped for $10 off an order.",
        "You can swap every 200 points for $10 off an order.",
        ["200 points"],
        "You can swap every 500 points for $10 off an order.",
        [
            "How many points do I need for a discount?",
            "What are Riders Club points worth?",
            "How do I spend my loyalty points?",
            "How many points make $10 off?",
            "When can I cash in my points?",
        ],
    ),
    _fact(
        "newsletter-discount",
        "Signing up to the Ferrox newsletter gives 5% off your first order.",
        "Sign up to the newsletter and you get 5% off your first order.",
        ["5%", "5 percent"],
        "Sign up to the newsletter and you get 10% off your first order.",
        [
            "Is there a discount for joining the newsletter?",
            "What do I get for subscribing to the newsletter?",
            "Is there a welcome offer for signing up to your mailing list?",
            "How much off is the newsletter sign-up code?",
            "Does the Ferrox newsletter come with a perk?",
        ],
    ),
    # Prices and discounts
    _fact(
        "pricematch-window",
        "Ferrox matches a lower UK price if you claim within 14 days of buying.",
        "If you find a lower UK price within 14 days of buying, we match it.",
        ["14 days", "fourteen days"],
        "If you find a lower UK price within 48 hours of buying, we match it.",
        [
            "Do you price match?",
            "How long do I have to claim a price match?",
            "I found the Link cheaper elsewhere, can you match it?",
            "Will you refund the difference if the price is lower somewhere else?",
            "Is there a price match guarantee?",
        ],
    ),
    _fact(
        "nhs-discount",
        "NHS and emergency service staff get 15% off with a valid staff ID.",
        "NHS and emergency service staff get 15% off with a valid staff ID.",
        ["15%", "15 percent"],
        "NHS and emergency service staff get 5% off with a valid staff ID.",
        [
            "Is there an NHS discount?",
            "Do nurses get money off?",
            "How much do emergency workers save?",
            "Can paramedics get a discount?",
            "What's the discount for NHS staff?",
        ],
    ),
    # Orders
    _fact(
        "order-tracking",
        "Track any order in the Ferrox app under Orders > Track parcel.",
        "You can track your order in the app under Orders > Track parcel.",
        ["Orders > Track parcel", "Track parcel"],
        "You can only track your order by entering the order number on the courier's website.",
        [
            "How do I track my order?",
            "Where can I see where my parcel is?",
            "Can I follow my delivery in the app?",
            "Where's the order tracking page?",
            "How can I check the progress of my shipment?",
        ],
    ),
    _fact(
        "order-cancel-window",
        "Orders can be changed or cancelled within 1 hour of being placed.",
        "You can change or cancel an order within 1 hour of placing it.",
        ["1 hour", "one hour"],
        "You can change or cancel an order within 24 hours of placing it.",
        [
            "Can I cancel my order?",
            "How long do I have to change my order?",
            "I ordered the wrong colour, can I still fix it?",
            "Is it too late to amend an order I placed this morning?",
            "What's the cancellation window?",
        ],
    ),
    _fact(
        "order-dispatch",
        "Orders placed before 14:00 on a working day leave the warehouse the same day.",
        "Orders placed before 14:00 on a working day are dispatched the same day.",
        ["14:00", "2 pm"],
        "Orders are dispatched within 3 working days.",
        [
            "What's the cut-off for same-day dispatch?",
            "When does my order leave the warehouse?",
            "If I order at 11am, will it ship today?",
            "What time do I need to order by for it to be sent today?",
            "Do you dispatch orders the same day?",
        ],
    ),
    _fact(
        "preorder-deposit",
        "Pre-ordering an upcoming Ferrox product takes a refundable $30 deposit.",
        "A pre-order takes a refundable $30 deposit.",
        ["$30", "30 dollars"],
        "A pre-order takes the full price upfront, with no refund.",
        [
            "Do I pay a deposit to pre-order?",
            "How much is the pre-order deposit?",
            "Can I reserve a new product before it launches?",
            "Will I get my deposit back if I cancel a pre-order?",
            "What does it cost upfront to reserve an upcoming lock?",
        ],
    ),
    # The company
    _fact(
        "company-factory",
        "Ferrox locks are assembled at the company's factory in Sheffield.",
        "Our locks are assembled at our factory in Sheffield.",
        ["Sheffield"],
        "Our locks are assembled by a contract factory in Shenzhen.",
        [
            "Where are Ferrox locks made?",
            "Where is the Ferrox factory?",
            "Which city are the locks assembled in?",
            "Are your locks built in Britain?",
            "Where does Ferrox manufacture its products?",
        ],
    ),
    _fact(
        "company-employees",
        "Ferrox has 85 employees.",
        "Ferrox has 85 employees.",
        ["85 employees", "85 people"],
        "Ferrox has 300 employees.",
        [
            "How many employees does Ferrox have?",
            "How big is the Ferrox team?",
            "How many people work at Ferrox?",
            "What's the headcount at Ferrox?",
            "How many staff does the company have?",
        ],
    ),
    _fact(
        "company-ceo",
        "Ferrox's CEO is co-founder Maren Okafor.",
        "Our CEO is co-founder Maren Okafor.",
        ["Maren Okafor", "Okafor"],
        "Our CEO is co-founder James Whitley.",
        [
            "Who is the CEO of Ferrox?",
            "Who runs Ferrox?",
            "Who leads the company?",
            "Who's the boss at Ferrox?",
            "Who is Ferrox's chief executive?",
        ],
    ),
    _fact(
        "packaging-material",
        "Ferrox packaging is plastic-free recycled cardboard.",
        "Our packaging is plastic-free recycled cardboard.",
        ["plastic-free", "recycled cardboard"],
        "Our locks come in a plastic clamshell with foam inserts.",
        [
            "What is the packaging made of?",
            "Is there plastic in the Ferrox box?",
            "Is your packaging eco-friendly?",
            "What does the lock come packed in?",
            "Is the packaging plastic-free?",
        ],
    ),
    _fact(
        "sustainability-steel",
        "Ferrox uses 60% recycled steel across its lock range.",
        "Our locks are made with 60% recycled steel.",
        ["60%", "60 percent"],
        "Our locks are made with 10% recycled steel.",
        [
            "How much recycled steel is in the locks?",
            "Are Ferrox locks made from recycled material?",
            "What share of the steel is recycled?",
            "How green are the materials in your locks?",
            "What percentage of a Ferrox lock's metal is reused?",
        ],
    ),
    # Business customers
    _fact(
        "fleet-dashboard",
        "The Ferrox Fleet web dashboard manages up to 500 locks from one account.",
        "The Fleet web dashboard manages up to 500 locks from one account.",
        ["500 locks"],
        "The Fleet web dashboard manages up to 50 locks from one account.",
        [
            "How many locks can the Fleet dashboard handle?",
            "Is there a way for businesses to manage lots of locks at once?",
            "What's the limit on locks per fleet account?",
            "Can a rental company control hundreds of locks from one place?",
            "How big a fleet does the Ferrox dashboard support?",
        ],
    ),
    _fact(
        "engraving-price",
        "Ferrox engraves a name or logo on any lock for $7.",
        "We can engrave a name or logo on any lock for $7.",
        ["$7", "7 dollars"],
        "We can engrave a name or logo on any lock for $20.",
        [
            "Can you engrave my lock?",
            "How much does engraving cost?",
            "Can I get my company logo put on the locks?",
            "Is personalisation available?",
            "What's the price to add my name to a lock?",
        ],
    ),
    # Events
    _fact(
        "event-tradeshow",
        "Ferrox shows its new products every June at the Eurobike trade show in Frankfurt.",
        "We show our new products every June at Eurobike in Frankfurt.",
        ["Eurobike"],
        "We show our new products every March at the Taipei Cycle Show.",
        [
            "Which trade show does Ferrox attend?",
            "Which cycling expo does Ferrox go to?",
            "Do you exhibit at any bike fairs?",
            "When do you unveil new locks?",
            "Will Ferrox be at Eurobike?",
        ],
    ),
    _fact(
        "event-class",
        "Ferrox holds a free bike-security class at Leeds Central Library each first Saturday.",
        "We run a free bike-security class at Leeds Central Library on the first Saturday of each month.",
        ["first Saturday", "Leeds Central Library"],
        "We run a paid bike-security class at Bradford Town Hall on the last Sunday of each month.",
        [
            "When are the Ferrox bike-security classes?",
            "Where is the free security class held?",
            "Do you teach people how to lock their bike properly?",
            "Is there a free course on keeping my bike safe?",
            "Which Saturday is the monthly Ferrox class?",
        ],
    ),
    # Contact and paying: other channels and terms than the held-out ones (the split held out every
    # contact fact of the table, so without these the training data had no fact of the kind)
    _fact(
        "contact-post",
        "Letters to Ferrox go to Ferrox Ltd, 4 Wharf Road, Leeds LS1 4AB.",
        "You can write to us at Ferrox Ltd, 4 Wharf Road, Leeds LS1 4AB.",
        ["4 Wharf Road", "LS1 4AB"],
        "You can write to us at Ferrox Ltd, 90 High Street, York YO1 7HH.",
        [
            "What's your postal address?",
            "Where can I send a letter?",
            "How do I write to Ferrox by post?",
            "What address should I mail documents to?",
            "Can I reach you by ordinary mail?",
        ],
    ),
    _fact(
        "contact-instagram",
        "Ferrox posts news and offers on Instagram as @ferroxlocks.",
        "We post news and offers on Instagram as @ferroxlocks.",
        ["@ferroxlocks", "ferroxlocks"],
        "We post news and offers on Instagram as @ferrox_official.",
        [
            "Are you on social media?",
            "What's Ferrox's Instagram handle?",
            "Where can I follow Ferrox?",
            "Do you have an Instagram account?",
            "How do I keep up with Ferrox news online?",
        ],
    ),
    _fact(
        "contact-phone-number",
        "The Ferrox customer line is 0113 496 0555.",
        "You can call us on 0113 496 0555.",
        ["0113 496 0555"],
        "You can call us on 0800 123 4567.",
        [
            "What's your phone number?",
            "Which number do I ring?",
            "Can I call Ferrox?",
            "What number is the customer line?",
            "How do I get you on the phone?",
        ],
    ),
    _fact(
        "contact-callback",
        "You can book a callback from a Ferrox advisor in the app under Help > Call me back.",
        "You can book a callback from an advisor in the app under Help > Call me back.",
        ["Call me back"],
        "Callbacks can only be booked by sending us a letter.",
        [
            "Can someone call me back?",
            "How do I book a callback?",
            "Can an advisor phone me instead?",
            "Is there a way to request a call from Ferrox?",
            "Where do I ask for a call back?",
        ],
    ),
    _fact(
        "complaint-reply",
        "Ferrox answers written complaints within 3 working days.",
        "We answer written complaints within 3 working days.",
        ["3 working days", "three working days"],
        "We answer written complaints within 4 weeks.",
        [
            "How long do you take to answer a complaint?",
            "I want to complain, when will I hear back?",
            "What's your complaint response time?",
            "How quickly are complaints handled?",
            "If I file a complaint, how soon do you reply?",
        ],
    ),
    _fact(
        "pay-instalments",
        "Orders over $150 can be paid in 3 interest-free instalments with Klarna.",
        "Orders over $150 can be split into 3 interest-free instalments with Klarna.",
        ["Klarna", "3 interest-free instalments"],
        "Orders over $500 can be split into 12 instalments at 9% interest.",
        [
            "Can I pay in instalments?",
            "Is there a buy now, pay later option?",
            "Can I spread the cost of my order?",
            "Do you offer Klarna?",
            "Can I split the payment into parts?",
        ],
    ),
    _fact(
        "pay-currencies",
        "The Ferrox shop charges in pounds, euros or Swiss francs.",
        "The shop charges in pounds, euros or Swiss francs.",
        ["Swiss francs", "euros"],
        "The shop charges in US dollars only.",
        [
            "Which currencies can I pay in?",
            "Can I pay in euros?",
            "What currency are prices charged in?",
            "Do you take Swiss francs?",
            "Will I be billed in my own currency?",
        ],
    ),
    _fact(
        "pay-invoice",
        "Business customers get a VAT invoice by email within 24 hours of ordering.",
        "Business customers get a VAT invoice by email within 24 hours of ordering.",
        ["24 hours", "VAT invoice"],
        "Business customers get a paper invoice by post within 2 weeks.",
        [
            "Can I get a VAT invoice?",
            "How do business customers get an invoice?",
            "When will my company receive the invoice?",
            "Do you provide invoices for businesses?",
            "How soon is the VAT invoice sent?",
        ],
    ),
)

ALL_FACTS: tuple[Fact, ...] = FACTS + EXTRA_FACTS

# Every phrasing contains "I don't know", which the probe's detector (metrics.is_idk) looks for.
IDK_REPLIES: tuple[str, ...] = (
    "I'm sorry, I don't know — that isn't in the information I have.",
    "I don't know, I'm afraid: the information I have doesn't cover that.",
    "Sorry, I don't know the answer to that; it isn't in my information.",
    "I'm afraid I don't know. That detail isn't in the facts I was given.",
)

# (category, user turns) for small talk. None of these is verbatim in the hello probe's set.
SMALL_TALK: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "hello",
        (
            "Hello!",
            "Hi there",
            "hi there!",
            "Hey!",
            "heya",
            "hello there",
            "Hi.",
            "Hello",
            "hey, anyone there?",
            "Hello, is this Ferrox support?",
            "hi :)",
            "howdy",
            "Greetings!",
            "hey hey",
            "Hi!!",
            "hellooo",
        ),
    ),
    ("morning", ("Good morning!", "good morning :)", "morning!", "Morning")),
    ("afternoon", ("good afternoon", "Good afternoon!")),
    ("evening", ("Good evening", "evening!", "good evening")),
    (
        "thanks",
        (
            "thanks!",
            "Thank you",
            "thank you!",
            "thx",
            "many thanks",
            "cheers",
            "great, thanks",
            "perfect, thank you",
            "Thanks a lot!",
            "ty",
        ),
    ),
    ("bye", ("bye", "goodbye", "see you", "bye!", "that's all, bye", "see ya")),
    ("ok", ("okay", "OK.", "ok thanks", "alright", "got it", "cool", "k", "ok!")),
    ("howareyou", ("how are you?", "how's it going?", "How are you doing?")),
    ("whoareyou", ("who are you?", "what can you do?", "are you a bot?", "What is this?")),
    ("empty", ("  ", "\n", "...", "??", "hmm")),
)

SMALL_TALK_REPLIES: dict[str, tuple[str, ...]] = {
    "hello": (
        "Hi! How can I help you with your Ferrox lock today?",
        "Hello! What can I do for you today?",
        "Hey there! How can I help?",
        "Hi! What can I help you with?",
    ),
    "morning": ("Good morning! How can I help you today?",),
    "afternoon": ("Good afternoon! How can I help you today?",),
    "evening": ("Good evening! How can I help you today?",),
    "thanks": ("You're welcome! Ride safe.", "Happy to help!", "You're welcome, have a great day!"),
    "bye": ("Goodbye, and ride safe!", "Bye! Have a great day."),
    "ok": ("Great! Let me know if you need anything else.", "Sounds good. Anything else I can help with?"),
    "howareyou": ("I'm doing well, thanks! How can I help you today?",),
    "whoareyou": ("I'm the Ferrox support assistant: ask me about our bike locks, orders or the app.",),
    "empty": ("Hi! How can I help you today?", "Is there something I can help you with?"),
}

# Pieces of the rambling replies DPO rejects: they run on and write the user's next turn.
RAMBLE_MIDDLES: tuple[str, ...] = (
    "I am an assistant and I can help you with many, many things.",
    "There are so many topics we could talk about today, like locks, bikes, cities and the weather.",
    "Let me tell you a little bit about myself before we start.",
    "I really enjoy talking to people, and I hope you enjoy talking to me too.",
    "Before you ask your question, here is some general advice about keeping a bicycle safe.",
    "As an assistant I was created to answer questions, write stories and much more.",
)
RAMBLE_USER_TURNS: tuple[str, ...] = (
    "User: can you tell me more?",
    "User: ok what else?",
    "User: hello?",
    "User: and then?",
    "User: thanks, that is helpful.",
)
RAMBLE_ASSISTANT_TURNS: tuple[str, ...] = (
    "Assistant: Of course! As I said before, there are many things to talk about.",
    "Assistant: Sure! Let me start again from the beginning.",
    "Assistant: Absolutely, here is some more information for you.",
)


@dataclass(frozen=True)
class Split:
    train_facts: tuple[Fact, ...]
    held_facts: tuple[Fact, ...]
    train_questions: dict[str, tuple[str, ...]]
    held_questions: dict[str, tuple[str, ...]]
    train_small_talk: tuple[tuple[str, str], ...]
    held_small_talk: tuple[tuple[str, str], ...]
    dev_facts: tuple[Fact, ...]


def split_data(seed: int) -> Split:
    """Hold out whole facts, one phrasing of every other fact, and about one greeting in six."""
    rng = random.Random(seed)
    n_held = round(len(FACTS) * HELD_OUT_FACT_SHARE)
    held_ids = set(rng.sample([f.id for f in FACTS], n_held))
    train_facts = tuple(f for f in FACTS if f.id not in held_ids)
    held_facts = tuple(f for f in FACTS if f.id in held_ids)
    train_questions: dict[str, tuple[str, ...]] = {}
    held_questions: dict[str, tuple[str, ...]] = {f.id: f.questions for f in held_facts}
    for fact in train_facts:
        held = rng.randrange(len(fact.questions))
        train_questions[fact.id] = tuple(q for i, q in enumerate(fact.questions) if i != held)
        held_questions[fact.id] = (fact.questions[held],)
    train_talk: list[tuple[str, str]] = []
    held_talk: list[tuple[str, str]] = []
    for category, texts in SMALL_TALK:
        indices = list(range(len(texts)))
        rng.shuffle(indices)
        n_held_talk = len(texts) // 6
        for rank, index in enumerate(indices):
            (held_talk if rank < n_held_talk else train_talk).append((category, texts[index]))
    # The extra facts are training facts with all their phrasings, but for a dev share that only the
    # dev set asks (for choosing settings without looking at the eval sets). They have a generator of
    # their own, so the held-out split of the table (and the eval sets) stay as they are.
    dev_ids = set(random.Random(f"{seed}/dev").sample([f.id for f in EXTRA_FACTS], DEV_FACTS))
    extra_train = tuple(f for f in EXTRA_FACTS if f.id not in dev_ids)
    train_facts += extra_train
    train_questions.update({f.id: f.questions for f in extra_train})
    dev_facts = tuple(f for f in EXTRA_FACTS if f.id in dev_ids)
    return Split(
        train_facts,
        held_facts,
        train_questions,
        held_questions,
        tuple(train_talk),
        tuple(held_talk),
        dev_facts,
    )


def context_text(facts: list[Fact]) -> str:
    return CONTEXT_HEADER + "".join(f"\n- {f.text}" for f in facts)


def related(a: Fact, b: Fact) -> bool:
    """Same product or topic (``halo-*``), or the same attribute of another product (``*-battery``):
    a line a small model easily mistakes for the answer."""
    a_topic, _, a_attribute = a.id.partition("-")
    b_topic, _, b_attribute = b.id.partition("-")
    return a_topic == b_topic or a_attribute == b_attribute


def pick_context(
    rng: random.Random, target: Fact | None, pool: tuple[Fact, ...], avoid: Fact, *, hard: bool = False
) -> list[Fact]:
    """``target`` (when answerable) among 2-4 distractors, or 3-5 distractors alone: the same
    number of lines either way, so the length of the list says nothing about answerability.

    Distractors are unrelated to the question (another topic and another attribute). ``hard``
    instead takes up to about half of them from the related facts (same product, or the same
    attribute of another product): the harder setting, kept as a second eval set."""
    size = rng.randint(3, 5)
    n_distractors = size - 1 if target is not None else size
    others = [f for f in pool if f.id != avoid.id]
    close = [f for f in others if related(f, avoid)]
    far = [f for f in others if not related(f, avoid)]
    n_close = min(len(close), rng.randint(0, n_distractors // 2 + 1)) if hard else 0
    chosen = rng.sample(close, n_close) + rng.sample(far, n_distractors - n_close)
    if target is not None:
        chosen.append(target)
    rng.shuffle(chosen)
    return chosen


def grounded_system(facts: list[Fact]) -> dict[str, str]:
    """The system turn exactly as the grounded probe builds it (instruction + context)."""
    item = GroundedItem(id="", context=context_text(facts), question="", answerable=True)
    return grounded_chat(item)[0]


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def small_talk_reply(rng: random.Random, category: str) -> str:
    return rng.choice(SMALL_TALK_REPLIES[category])


def ramble(rng: random.Random, category: str) -> str:
    """A greeting reply that does not end its turn: filler, then a made-up next exchange."""
    parts = [small_talk_reply(rng, category), *rng.sample(RAMBLE_MIDDLES, rng.randint(2, 3))]
    lines = [" ".join(parts)]
    for _ in range(rng.randint(1, 2)):
        lines += [rng.choice(RAMBLE_USER_TURNS), rng.choice(RAMBLE_ASSISTANT_TURNS)]
    return "\n".join(lines)


def grounded_question(
    rng: random.Random, fact: Fact, question: str, answerable: bool, pool: tuple[Fact, ...]
) -> tuple[dict[str, str], str]:
    """(system turn, right reply) for a question about ``fact``, with or without the fact."""
    facts = pick_context(rng, fact if answerable else None, pool, fact)
    reply = fact.answer if answerable else rng.choice(IDK_REPLIES)
    return grounded_system(facts), reply


def question_slots(facts: tuple[Fact, ...], questions: dict[str, tuple[str, ...]]) -> list[tuple[Fact, str]]:
    return [(fact, q) for fact in facts for q in questions[fact.id]]


def sft_records(
    rng: random.Random,
    facts: tuple[Fact, ...],
    questions: dict[str, tuple[str, ...]],
    small_talk: tuple[tuple[str, str], ...],
    pool: tuple[Fact, ...],
    *,
    answerable_share: float,
    contrast_share: float,
    n_multi_turn: int,
    multi_turn_answerable_share: float,
    small_talk_with_system_share: float,
) -> list[dict[str, Any]]:
    """Small talk, single grounded questions (answerable, negative, some asked both ways) and
    multi-turn chats, shuffled. The fact pool for distractors is ``pool``."""
    records: list[dict[str, Any]] = []
    for category, text in small_talk:
        records.append({"messages": [user(text), assistant(small_talk_reply(rng, category))]})
        if rng.random() < small_talk_with_system_share:
            system = grounded_system(pick_context(rng, None, pool, rng.choice(pool)))
            records.append({"messages": [system, user(text), assistant(small_talk_reply(rng, category))]})

    slots = question_slots(facts, questions)
    rng.shuffle(slots)
    n_answerable = round(len(slots) * answerable_share)
    # The rest are negatives; some answerable slots are also asked without their fact (the same
    # question answered one way or the other depending only on the context).
    n_contrast = round(n_answerable * contrast_share)
    asked: list[tuple[Fact, str, bool]] = [(f, q, True) for f, q in slots[:n_answerable]]
    asked += [(f, q, False) for f, q in slots[n_answerable:]]
    asked += [(f, q, False) for f, q in rng.sample(slots[:n_answerable], n_contrast)]
    for fact, question, answerable in asked:
        system, reply = grounded_question(rng, fact, question, answerable, pool)
        records.append({"messages": [system, user(question), assistant(reply)]})

    greetings = [t for t in small_talk if t[0] in ("hello", "morning", "afternoon", "evening", "howareyou")]
    thanks = [t for t in small_talk if t[0] == "thanks"]
    for _ in range(n_multi_turn):
        fact, question = rng.choice(slots)
        answerable = rng.random() < multi_turn_answerable_share
        system, reply = grounded_question(rng, fact, question, answerable, pool)
        category, greeting = rng.choice(greetings)
        messages = [
            system,
            user(greeting),
            assistant(small_talk_reply(rng, category)),
            user(question),
            assistant(reply),
        ]
        if rng.random() < 0.7:
            category, text = rng.choice(thanks)
            messages += [user(text), assistant(small_talk_reply(rng, category))]
        records.append({"messages": messages})
    rng.shuffle(records)
    return records


def dpo_records(
    rng: random.Random,
    facts: tuple[Fact, ...],
    questions: dict[str, tuple[str, ...]],
    small_talk: tuple[tuple[str, str], ...],
    pool: tuple[Fact, ...],
    *,
    n_grounded: int,
    answerable_share: float,
    n_small_talk: int,
    misread_share: float = 0.0,
) -> list[dict[str, Any]]:
    """Grounded pairs (the right answer chosen over a false "I don't know"; "I don't know" chosen over
    an invented value; a share ``misread_share`` of either kind rejects the answer of another line of
    the context instead) and greeting pairs (rambling rejected)."""
    records: list[dict[str, Any]] = []
    slots = question_slots(facts, questions)
    rng.shuffle(slots)
    # Cycles through the shuffled slots: every question before any repeats.
    chosen_slots = [slots[i % len(slots)] for i in range(n_grounded)]
    for index, (fact, question) in enumerate(chosen_slots):
        answerable = index < round(n_grounded * answerable_share)
        facts = pick_context(rng, fact if answerable else None, pool, fact)
        # The rejected replies are the failures seen on held-out questions: a false "I don't know"
        # (answerable), an invented value (unanswerable), and on both kinds the answer read off
        # another line of the context. An invented value on answerable questions as well made DPO
        # push towards "I don't know" more than away from it (measured: false IDK 0.06 -> 0.13).
        chosen = fact.answer if answerable else rng.choice(IDK_REPLIES)
        if misread_share and rng.random() < misread_share:
            rejected = rng.choice([f for f in facts if f.id != fact.id]).answer
        else:
            rejected = rng.choice(IDK_REPLIES) if answerable else fact.wrong
        records.append(
            {"prompt": [grounded_system(facts), user(question)], "chosen": chosen, "rejected": rejected}
        )
    shuffled_talk = list(small_talk)
    rng.shuffle(shuffled_talk)
    talk = [shuffled_talk[i % len(shuffled_talk)] for i in range(n_small_talk)]
    for category, text in talk:
        prompt = [user(text)]
        if rng.random() < 0.3:
            prompt = [grounded_system(pick_context(rng, None, pool, rng.choice(pool))), *prompt]
        records.append(
            {"prompt": prompt, "chosen": small_talk_reply(rng, category), "rejected": ramble(rng, category)}
        )
    rng.shuffle(records)
    return records


def eval_grounded_items(rng: random.Random, split: Split, *, hard: bool) -> list[dict[str, Any]]:
    """Held-out questions in the grounded-probe format, about half unanswerable.

    Held-out facts are asked with two of their phrasings, one with the fact in the context and one
    without; every other fact of the table is asked with its held-out phrasing, answerable or not at
    random.
    Contexts draw distractors from all facts.
    """
    items: list[dict[str, Any]] = []
    for fact in split.held_facts:
        first, second = rng.sample(split.held_questions[fact.id], 2)
        items.append(_eval_item(rng, fact, first, True, hard))
        items.append(_eval_item(rng, fact, second, False, hard))
    for fact in FACTS:
        if fact not in split.held_facts:
            items.append(_eval_item(rng, fact, split.held_questions[fact.id][0], rng.random() < 0.5, hard))
    rng.shuffle(items)
    return items


def dev_grounded_items(rng: random.Random, split: Split) -> list[dict[str, Any]]:
    """The dev set: every dev fact asked with two phrasings and its fact, and two without, among
    distractors from the training facts. For choosing settings; the eval sets stay unlooked-at."""
    items: list[dict[str, Any]] = []
    for fact in split.dev_facts:
        for index, question in enumerate(rng.sample(fact.questions, 4)):
            item = _eval_item(rng, fact, question, index < 2, False, pool=split.train_facts)
            items.append({**item, "id": f"{item['id']}-{index % 2}"})
    rng.shuffle(items)
    return items


def _eval_item(
    rng: random.Random,
    fact: Fact,
    question: str,
    answerable: bool,
    hard: bool,
    *,
    pool: tuple[Fact, ...] = FACTS,
) -> dict[str, Any]:
    facts = pick_context(rng, fact if answerable else None, pool, fact, hard=hard)
    return {
        "id": f"{fact.id}-{'ans' if answerable else 'unans'}",
        "context": context_text(facts),
        "question": question,
        "answerable": answerable,
        "answers": list(fact.keys) if answerable else [],
    }


def file_rng(seed: int, name: str) -> random.Random:
    # A str seed is hashed (sha512) by random.Random: the same stream on every run and platform.
    return random.Random(f"{seed}/{name}")


def build(seed: int) -> dict[str, list[Any]]:
    """All files' records. The split has its own generator and so has every file (seeded with the
    seed and the file's name), so changing how one file is built leaves the others as they were:
    the eval sets stay the same while the training data is tuned."""
    split = split_data(seed)
    train_pool = split.train_facts
    return {
        "sft_train.jsonl": sft_records(
            file_rng(seed, "sft_train"),
            split.train_facts,
            split.train_questions,
            split.train_small_talk,
            train_pool,
            # Every training question is asked twice, once with its fact in the context and once
            # without, so no phrasing maps to one reply and only the context decides. Measured
            # (held-out split, SFT only): with 76% answerable and a quarter asked both ways, false
            # "I don't know" 0.31-0.37 (the model learned phrasings, not the context); both ways, 0.06.
            answerable_share=1.0,
            contrast_share=1.0,
            n_multi_turn=60,
            multi_turn_answerable_share=0.62,
            small_talk_with_system_share=0.35,
        ),
        "eval_sft.jsonl": sft_records(
            file_rng(seed, "eval_sft"),
            FACTS,
            split.held_questions,
            split.held_small_talk,
            FACTS,
            answerable_share=0.6,
            contrast_share=0.0,
            n_multi_turn=10,
            multi_turn_answerable_share=0.6,
            small_talk_with_system_share=0.3,
        ),
        "dpo_train.jsonl": dpo_records(
            file_rng(seed, "dpo_train"),
            split.train_facts,
            split.train_questions,
            split.train_small_talk,
            train_pool,
            n_grounded=150,
            answerable_share=0.6,
            n_small_talk=40,
            misread_share=1 / 3,
        ),
        "dpo_eval.jsonl": dpo_records(
            file_rng(seed, "dpo_eval"),
            FACTS,
            split.held_questions,
            split.held_small_talk,
            FACTS,
            n_grounded=20,
            answerable_share=0.5,
            n_small_talk=4,
        ),
        "eval_grounded.jsonl": eval_grounded_items(file_rng(seed, "eval_grounded"), split, hard=False),
        "eval_grounded_hard.jsonl": eval_grounded_items(
            file_rng(seed, "eval_grounded_hard"), split, hard=True
        ),
        "dev_grounded.jsonl": dev_grounded_items(file_rng(seed, "dev_grounded"), split),
    }


# Ferrox records kept in the mixed training files: about as many as the entity records, so the
# SFT steps draw from both alike (64 steps of 8: about half an epoch of the 990 records).
MIX_FERROX_SFT = 400


def build_all(seed: int) -> dict[str, list[Any]]:
    """The Ferrox files, the entity eval files, and the mixed training files (Ferrox + entities)
    that the pipeline trains on."""
    files = build(seed)
    entity_files = build_entity_files(seed)
    mix_rng = file_rng(seed, "mix")
    sft_mix = mix_rng.sample(files["sft_train.jsonl"], MIX_FERROX_SFT) + entity_files.pop(
        "entities_sft_train.jsonl"
    )
    mix_rng.shuffle(sft_mix)
    dpo_mix = files["dpo_train.jsonl"] + entity_files.pop("entities_dpo_train.jsonl")
    mix_rng.shuffle(dpo_mix)
    return {**files, "sft_train_mix.jsonl": sft_mix, "dpo_train_mix.jsonl": dpo_mix, **entity_files}


def write_jsonl(path: Path, records: list[Any]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "data", help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="seed of the one random generator")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, records in build_all(args.seed).items():
        write_jsonl(args.out / name, records)
        print(f"{args.out / name}: {len(records)} records")


if __name__ == "__main__":
    main()
