"""Retrieval: chunk windows by hand, RRF by hand, index -> query round trip, incremental re-index,
shared grounded format, bad documents."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from alignkit.config.synth import DEFAULT_GROUNDED_INSTRUCTION
from alignkit.data.grounding import context_block, grounded_system
from alignkit.errors import DataError
from alignkit.retrieval.augment import retrieve_and_format
from alignkit.retrieval.chunking import chunk_document, sentence_spans, sentence_windows, token_windows
from alignkit.retrieval.documents import html_to_text, read_documents
from alignkit.retrieval.evaluate import retrieval_metrics
from alignkit.retrieval.fusion import reciprocal_rank_fusion
from alignkit.retrieval.index import build_index
from alignkit.retrieval.search import Retriever


class WordTokenizer:
    """One token per whitespace-separated word (offsets include the leading space, like byte BPE)."""

    is_fast = True

    def __call__(self, text, add_special_tokens=False, return_offsets_mapping=True):
        offsets, position = [], 0
        for word in text.split():
            start = text.index(word, position)
            offsets.append((position if offsets else start, start + len(word)))
            position = start + len(word)
        return {"offset_mapping": offsets}


def test_token_windows_by_hand():
    # 10 tokens, size 4, overlap 1: stride 3 -> [0,4) [3,7) [6,10); the last ends at the end.
    assert token_windows(10, 4, 1) == [(0, 4), (3, 7), (6, 10)]
    # 9 tokens: [6,9) is the tail; no window starting at 9.
    assert token_windows(9, 4, 1) == [(0, 4), (3, 7), (6, 9)]
    assert token_windows(3, 4, 1) == [(0, 3)]
    assert token_windows(0, 4, 1) == []


def test_chunks_overlap_and_map_back_to_the_text():
    text = "w0 w1 w2 w3 w4 w5 w6 w7 w8 w9"
    chunks = chunk_document(text, "doc.txt", "sha", WordTokenizer(), chunk_tokens=4, overlap_tokens=1)
    assert [c.text for c in chunks] == ["w0 w1 w2 w3", "w3 w4 w5 w6", "w6 w7 w8 w9"]
    assert [c.id for c in chunks] == ["doc.txt#0", "doc.txt#1", "doc.txt#2"]
    for c in chunks:
        assert text[c.start : c.end] == c.text


def test_sentence_windows_by_hand():
    # [3, 3, 3, 3], size 7: two sentences fit; overlap 3 keeps the last one -> start at 1, then 2.
    assert sentence_windows([3, 3, 3, 3], 7, 3) == [(0, 2), (1, 3), (2, 4)]
    assert sentence_windows([3, 3, 3, 3], 7, 0) == [(0, 2), (2, 4)]
    # The kept sentence (2) and the next one (7) exceed 5: no overlap, or (1, 2) would repeat "2".
    # The 7-token sentence is a range of its own.
    assert sentence_windows([3, 2, 7, 1], 5, 2) == [(0, 2), (2, 3), (3, 4)]
    assert sentence_windows([], 5, 2) == []


def test_sentences_split_at_line_breaks_and_sentence_ends_only():
    text = 'The Link weighs 1.4 kg. It costs $89!\n- Colours: black, orange\n\n"Quiet," she said "now." End'
    assert [text[a:b] for a, b in sentence_spans(text)] == [
        "The Link weighs 1.4 kg.", "It costs $89!", "- Colours: black, orange", '"Quiet," she said "now."', "End"]


def test_sentence_chunks_by_hand():
    """Sentences of 3, 2, 7 and 1 words, size 5, overlap 2: the 7-word sentence is cut by tokens."""
    text = "a b c. d e.\nf g h i j k l. m."
    chunks = chunk_document(text, "doc.txt", "sha", WordTokenizer(), chunk_tokens=5, overlap_tokens=2)
    assert [c.text for c in chunks] == ["a b c. d e.", "f g h i j", "i j k l.", "m."]
    for c in chunks:
        assert text[c.start : c.end] == c.text


@pytest.mark.parametrize("split", ["sentences", "tokens"])
def test_chunking_with_the_real_tokenizer_keeps_offsets(tokenizer, split):
    text = "The Ferrox Coil cable is 120 cm long.\n\nThe Link weighs 1.4 kg. " * 6
    # Overlap 14: room for either sentence (9 and 14 tokens) at the start of the next chunk.
    chunks = chunk_document(text, "d", "s", tokenizer, chunk_tokens=30, overlap_tokens=14, split=split)
    assert len(chunks) > 3
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert b.start < a.end  # consecutive chunks overlap
    token_ends = [end for _, end in tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]]
    for c in chunks:
        assert text[c.start : c.end] == c.text
        # Exactly: the document's own tokens that end inside the chunk are at most chunk_tokens.
        assert sum(c.start < end <= c.end for end in token_ends) <= 30
        # Re-tokenized alone, a chunk's text may merge or split a token at its edges.
        assert len(tokenizer(c.text, add_special_tokens=False)["input_ids"]) <= 32
        if split == "sentences":  # whole sentences only
            assert c.text.startswith("The ") and c.text.endswith((" long.", " kg.")), c.text


def test_rrf_against_a_hand_computed_ranking():
    # k=1: a: 1/2 + 1/3 = .8333; b: 1/3 + 1/2 = .8333 (tie: a seen first); c: 1/4 = .25; d: 1/4 = .25
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["b", "a", "d"]], k=1)
    assert [item for item, _ in fused] == ["a", "b", "c", "d"]
    assert fused[0][1] == pytest.approx(1 / 2 + 1 / 3)
    assert fused[2][1] == pytest.approx(1 / 4)
    # k=60: an item first in one list and absent from the other loses to one 2nd in both.
    fused = reciprocal_rank_fusion([["x", "y"], ["z", "y"]], k=60)
    assert fused[0][0] == "y" and fused[0][1] == pytest.approx(2 / 62)


def test_recall_and_mrr_by_hand():
    figures = retrieval_metrics([1, 3, None, 2], [1, 3])
    assert figures["recall@1"] == 0.25 and figures["recall@3"] == 0.75
    assert figures["mrr"] == pytest.approx((1 + 1 / 3 + 0 + 1 / 2) / 4)


def _docs(folder: Path) -> Path:
    folder.mkdir()
    (folder / "locks.md").write_text(
        "# Locks\n\nThe Coil cable is 120 cm long.\n\nThe Halo costs $69.\n", encoding="utf-8"
    )
    (folder / "shipping.txt").write_text("Shipping is free on orders over $50.", encoding="utf-8")
    (folder / "page.html").write_text(
        "<html><head><style>x{}</style></head><body><p>Returns are accepted "
        "within 30 days.</p><script>var a;</script></body></html>",
        encoding="utf-8",
    )
    (folder / "faq.jsonl").write_text(
        json.dumps({"text": "Support answers email within one day.", "topic": "contact"}) + "\n",
        encoding="utf-8",
    )
    return folder


def test_index_query_round_trip_and_incremental_reindex(tmp_path, monkeypatch):
    docs = _docs(tmp_path / "docs")
    out = tmp_path / "index"
    documents = read_documents([docs])
    assert {Path(d.source).name.split(":")[0] for d in documents} == {
        "locks.md",
        "shipping.txt",
        "page.html",
        "faq.jsonl",
    }
    report = build_index(
        documents, out, WordTokenizer(), chunk_tokens=8, overlap_tokens=2, tokenizer_name="words"
    )
    assert report.chunked_documents == 4 and report.reused_documents == 0
    retriever = Retriever(out)
    hits = retriever.search("how long is the cable", k=2, mode="lexical")
    assert "120 cm" in hits[0].chunk.text and hits[0].chunk.source.endswith("locks.md")
    assert retriever.search("returns days", k=1, mode="fused")[0].chunk.source.endswith("page.html")
    assert "var a" not in " ".join(c.text for c in retriever.chunks)  # script text is not indexed

    # Change one document: only it is chunked again.
    calls = []
    import alignkit.retrieval.index as index_module

    real = index_module.chunk_document
    monkeypatch.setattr(index_module, "chunk_document", lambda *a, **k: calls.append(a[1]) or real(*a, **k))
    (docs / "shipping.txt").write_text("Shipping is free on orders over $60.", encoding="utf-8")
    report = build_index(
        read_documents([docs]), out, WordTokenizer(), chunk_tokens=8, overlap_tokens=2, tokenizer_name="words"
    )
    assert report.reused_documents == 3 and report.chunked_documents == 1
    assert [Path(c).name for c in calls] == ["shipping.txt"]
    assert "$60" in Retriever(out).search("shipping free", k=1, mode="lexical")[0].chunk.text
    # Another chunk size: nothing is reused.
    report = build_index(
        read_documents([docs]), out, WordTokenizer(), chunk_tokens=6, overlap_tokens=2, tokenizer_name="words"
    )
    assert report.reused_documents == 0


class FakeEncoder:
    """A deterministic 'embedding': counts of a few words, so dense search is checkable by hand."""

    WORDS = ("cable", "shipping", "returns", "email", "halo")

    def passages(self, texts):
        return np.stack([self._vec(t) for t in texts]).astype(np.float32)

    def query(self, text):
        return self._vec(text)

    def _vec(self, text):
        v = np.array([text.lower().count(w) for w in self.WORDS], dtype=np.float32) + 1e-3
        return v / np.linalg.norm(v)


def test_dense_vectors_are_reused_for_unchanged_documents(tmp_path):
    docs = _docs(tmp_path / "docs")
    out = tmp_path / "index"
    encoded: list[int] = []

    class Counting(FakeEncoder):
        def passages(self, texts):
            encoded.append(len(texts))
            return super().passages(texts)

    build_index(
        read_documents([docs]),
        out,
        WordTokenizer(),
        chunk_tokens=8,
        overlap_tokens=2,
        tokenizer_name="w",
        dense=True,
        encoder_factory=Counting,
    )
    first = np.load(out / "dense.npy")
    build_index(
        read_documents([docs]),
        out,
        WordTokenizer(),
        chunk_tokens=8,
        overlap_tokens=2,
        tokenizer_name="w",
        dense=True,
        encoder_factory=Counting,
    )
    assert encoded[1:] == []  # nothing changed: nothing encoded
    np.testing.assert_array_equal(first, np.load(out / "dense.npy"))
    retriever = Retriever(out)
    retriever._encoder = FakeEncoder()  # type: ignore[assignment]
    assert "email" in retriever.search("email", k=1, mode="dense")[0].chunk.text


def test_served_context_is_byte_identical_to_training_format(tmp_path):
    from alignkit.evaluation.probe_sets import GroundedItem
    from alignkit.evaluation.probes import grounded_chat
    from alignkit.synth.grounded import ContextItem, GroundedExample

    docs = _docs(tmp_path / "docs")
    build_index(
        read_documents([docs]),
        tmp_path / "i",
        WordTokenizer(),
        chunk_tokens=50,
        overlap_tokens=2,
        tokenizer_name="w",
    )
    augmented = retrieve_and_format(
        [{"role": "system", "content": "ignored"}, {"role": "user", "content": "How long is the cable?"}],
        Retriever(tmp_path / "i"),
        top_k=2,
        mode="lexical",
    )
    lines = [" ".join(h.chunk.text.split()) for h in augmented.hits]
    trained = GroundedExample(
        "e", 0, "q", True, tuple(ContextItem(t, "x") for t in lines), "r", "f"
    ).to_record()
    assert augmented.messages[0] == trained["messages"][0]
    probe = grounded_chat(GroundedItem("i", context_block(lines), "q", True))
    assert augmented.messages[0] == probe[0]
    assert augmented.messages[0]["content"].startswith(DEFAULT_GROUNDED_INSTRUCTION + "\n\n- ")
    assert [m["role"] for m in augmented.messages] == ["system", "user"]
    assert augmented.citations[0]["source"].endswith("locks.md")
    assert grounded_system("- a", "I") == "I\n\n- a"


def test_bad_documents_give_one_line_errors(tmp_path):
    (tmp_path / "empty.txt").write_text("  \n", encoding="utf-8")
    with pytest.raises(DataError, match="empty document"):
        read_documents([tmp_path / "empty.txt"])
    (tmp_path / "latin1.txt").write_bytes("ok\ncaf\xe9".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1.txt:2: not UTF-8"):
        read_documents([tmp_path / "latin1.txt"])
    (tmp_path / "bad.jsonl").write_text('{"text": "fine"}\n{"body": "x"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.jsonl:2: text: missing field"):
        read_documents([tmp_path / "bad.jsonl"])
    (tmp_path / "x.pdf").write_bytes(b"%PDF")
    with pytest.raises(DataError, match="unsupported document type"):
        read_documents([tmp_path / "x.pdf"])
    with pytest.raises(DataError, match="not an index folder"):
        Retriever(tmp_path)


def test_html_text_drops_scripts_and_keeps_blocks():
    assert (
        html_to_text("<h1>A&amp;B</h1><p>one\n two <b>bold</b> end</p><script>x</script>")
        == "A&B\none two bold end"
    )
