"""Documents to index: ``.txt``, ``.md``, ``.html``/``.htm`` and ``.jsonl`` (one document a line).

Each document has a ``source`` (the path, plus ``:LINE`` for a JSONL record) used in citations, its
text, the record's other fields as metadata, and a sha256 of both, which decides whether a
re-index must chunk it again.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from alignkit.errors import DataError

TEXT_SUFFIXES = (".txt", ".md")
HTML_SUFFIXES = (".html", ".htm")
JSONL_SUFFIXES = (".jsonl",)
SUFFIXES = TEXT_SUFFIXES + HTML_SUFFIXES + JSONL_SUFFIXES


@dataclass(frozen=True)
class Document:
    source: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def sha256(self) -> str:
        payload = json.dumps([self.text, self.metadata], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class _TextExtractor(HTMLParser):
    """Visible text of an HTML page: script/style/head contents dropped, block tags end a line."""

    _SKIP = frozenset({"script", "style", "head", "noscript", "template"})
    _BLOCK = frozenset(
        {
            "p",
            "div",
            "br",
            "li",
            "tr",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "section",
            "article",
            "header",
            "footer",
            "pre",
            "blockquote",
            "table",
            "ul",
            "ol",
            "title",
        }
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            # Newlines inside HTML text are layout, not structure: only block tags end a line.
            self.parts.append(re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    """The visible text of ``html``, one block element a line, blank runs collapsed."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return "\n".join(line for line in lines if line)


def _read_utf8(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(f"not UTF-8 text (byte {exc.start})", source=str(path), line=line) from None


def _read_jsonl(path: Path, text_field: str) -> Iterator[Document]:
    for number, line in enumerate(_read_utf8(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"invalid JSON: {exc.msg}", source=str(path), line=number) from None
        if not isinstance(record, dict):
            raise DataError("expected an object", source=str(path), line=number)
        text = record.get(text_field)
        if not isinstance(text, str) or not text.strip():
            problem = "missing field" if text_field not in record else "expected a non-empty string"
            raise DataError(problem, source=str(path), line=number, field=text_field)
        metadata = {key: value for key, value in record.items() if key != text_field}
        yield Document(f"{path}:{number}", text, metadata)


def read_document_file(path: Path, text_field: str = "text") -> list[Document]:
    """The documents of one file; an empty or non-UTF-8 file raises :class:`DataError`."""
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        documents = list(_read_jsonl(path, text_field))
        if not documents:
            raise DataError("no documents (empty file)", source=str(path))
        return documents
    text = _read_utf8(path)
    if suffix in HTML_SUFFIXES:
        text = html_to_text(text)
    if not text.strip():
        raise DataError("empty document (no text to index)", source=str(path))
    return [Document(str(path), text)]


def read_documents(paths: Sequence[str | Path], text_field: str = "text") -> list[Document]:
    """Documents of files and folders (searched recursively for known suffixes, sorted)."""
    if not paths:
        raise DataError("expected at least one document file or folder", field="docs")
    documents: list[Document] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
            if not files:
                raise DataError(f"no {'/'.join(SUFFIXES)} files in the folder", source=str(path))
        elif path.is_file():
            if path.suffix.lower() not in SUFFIXES:
                raise DataError(
                    f"unsupported document type (expected {', '.join(SUFFIXES)})", source=str(path)
                )
            files = [path]
        else:
            raise DataError("file not found", source=str(path))
        for file in files:
            documents.extend(read_document_file(file, text_field))
    seen: set[str] = set()
    for document in documents:
        if document.source in seen:
            raise DataError("document given twice", source=document.source)
        seen.add(document.source)
    return documents
