"""Small training data the recipe tests write: eight support conversations about a lamp."""

from __future__ import annotations

import json
from pathlib import Path

CONVERSATIONS = [
    ("hello", "Hi! How can I help?"),
    ("what is the lamp called", "It is called Lumo."),
    ("how long does the battery last", "About fourteen hours."),
    ("can I dim it", "Yes, slide along the top strip."),
    ("is it waterproof", "No, keep it dry."),
    ("what colors does it have", "Warm and cool white."),
    ("how do I reset it", "Hold the button for ten seconds."),
    ("thanks", "You are welcome!"),
]


def write_data(path: Path, pairs=CONVERSATIONS) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        for user, reply in pairs:
            record = {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": reply}]}
            handle.write(json.dumps(record) + "\n")
    return path
