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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alignkit.evaluation.probe_sets import GroundedItem
from alignkit.evaluation.probes import grounded_chat

CONTEXT_HEADER = "Facts about Ferrox (smart bike locks):"
HELD_OUT_FACT_SHARE = 0.2


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


def split_data(rng: random.Random) -> Split:
    """Hold out whole facts, one phrasing of every other fact, and about one greeting in six."""
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
    return Split(
        train_facts, held_facts, train_questions, held_questions, tuple(train_talk), tuple(held_talk)
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
) -> list[dict[str, Any]]:
    """Grounded pairs (the right answer chosen over a false "I don't know"; "I don't know" chosen over
    an invented value) and greeting pairs (rambling rejected)."""
    records: list[dict[str, Any]] = []
    slots = question_slots(facts, questions)
    rng.shuffle(slots)
    # Cycles through the shuffled slots: every question before any repeats.
    chosen_slots = [slots[i % len(slots)] for i in range(n_grounded)]
    for index, (fact, question) in enumerate(chosen_slots):
        answerable = index < round(n_grounded * answerable_share)
        system, reply = grounded_question(rng, fact, question, answerable, pool)
        # Answerable: a false "I don't know" rejected; unanswerable: an invented value rejected. An
        # invented value on answerable questions as well made DPO push towards "I don't know" more
        # than away from it (measured: false "I don't know" 0.06 -> 0.13 after DPO).
        rejected = rng.choice(IDK_REPLIES) if answerable else fact.wrong
        records.append({"prompt": [system, user(question)], "chosen": reply, "rejected": rejected})
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
    without; every other fact is asked with its held-out phrasing, answerable or not at random.
    Contexts draw distractors from all facts.
    """
    items: list[dict[str, Any]] = []
    for fact in split.held_facts:
        first, second = rng.sample(split.held_questions[fact.id], 2)
        items.append(_eval_item(rng, fact, first, True, hard))
        items.append(_eval_item(rng, fact, second, False, hard))
    for fact in split.train_facts:
        items.append(_eval_item(rng, fact, split.held_questions[fact.id][0], rng.random() < 0.5, hard))
    rng.shuffle(items)
    return items


def _eval_item(rng: random.Random, fact: Fact, question: str, answerable: bool, hard: bool) -> dict[str, Any]:
    facts = pick_context(rng, fact if answerable else None, FACTS, fact, hard=hard)
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
    split = split_data(random.Random(seed))
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
        "eval_grounded_hard.jsonl": eval_grounded_items(file_rng(seed, "eval_grounded_hard"), split, hard=True),
    }


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
    for name, records in build(args.seed).items():
        write_jsonl(args.out / name, records)
        print(f"{args.out / name}: {len(records)} records")


if __name__ == "__main__":
    main()
