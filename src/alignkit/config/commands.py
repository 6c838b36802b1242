"""Config models of the foundation commands (lint, generate, chat)."""

from __future__ import annotations

from pydantic import Field, field_validator

from alignkit.config.base import StrictModel
from alignkit.config.common import DataConfig, ModelFields
from alignkit.config.rag import RagUseConfig


class GenerationConfigSection(StrictModel):
    max_new_tokens: int = Field(256, gt=0, description="reply length limit in tokens")
    temperature: float = Field(0.0, ge=0.0, description="0 = greedy")
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(0, ge=0, description="0 = off")
    repetition_penalty: float = Field(1.0, gt=0.0, description=">1 discourages repeating tokens")
    length_penalty: float = Field(1.0, description="beam search length penalty (1 = none)")
    stop: list[str] = Field(default_factory=list, description="extra stop strings")
    num_samples: int = Field(1, ge=1, description="replies per prompt")
    seed: int = 0


class LintConfig(ModelFields):
    paths: list[str] = Field(default_factory=list, description="data files to lint")
    data: DataConfig = Field(default_factory=DataConfig)
    out: str | None = Field(None, description="also write the findings as JSON here")


class GenerateConfig(ModelFields):
    prompts: list[str] = Field(default_factory=list, description="user prompts given on the command line")
    prompts_file: str | None = Field(None, description="a .txt (one prompt a line) or JSONL with prompt/messages")
    system: str | None = Field(None, description="a system message put before each prompt")
    out: str | None = Field(None, description="write JSONL here instead of printing")
    batch_size: int = Field(8, gt=0)
    generation: GenerationConfigSection = Field(default_factory=GenerationConfigSection)
    chat_template: str | None = None


class ChatConfig(ModelFields):
    system: str | None = None
    rag: RagUseConfig | None = Field(
        None, description="retrieval: {index, top_k}; the chunks replace the system turn (grounded format)"
    )
    guard: str | None = Field(None, description="a guard file: its input rules run on each line, output rules on each reply")
    generation: GenerationConfigSection = Field(default_factory=lambda: GenerationConfigSection(temperature=0.7,
                                                                                               top_p=0.9))


class MergeConfig(ModelFields):
    adapters: list[str] = Field(default_factory=list, description="LoRA adapter folders")
    weights: list[float] = Field(default_factory=list, description="one weight per adapter (default 1.0 each)")
    combination: str = Field("cat", description="cat (stack factors) | linear (weighted sum; equal ranks) | svd")
    out: str | None = Field(None, description="output folder for the merged model")


class ReportRun(StrictModel):
    """A run shown in the report, assembled from a training folder and the probe folder that examined it."""

    label: str = Field(description="the run's name in the report")
    train: str | None = Field(None, description="a training folder (its metrics.jsonl)")
    probe: str | None = Field(None, description="a probe folder (or a stage folder holding probe/)")


class ReportConfig(StrictModel):
    runs: list[str | ReportRun] = Field(
        default_factory=list, description="run folders (training output and/or probe folders), or label/train/probe"
    )
    out: str | None = Field(None, description="the HTML file to write")
    labels: list[str] = Field(default_factory=list, description="run names, one per run folder (default: folder names)")

    @field_validator("labels", mode="before")
    @classmethod
    def _split_labels(cls, value: object) -> object:
        """``--labels a,b`` arrives as one string."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",")]
        return value


class RunConfig(StrictModel):
    pipeline: str | None = Field(None, description="the pipeline YAML file")
    from_stage: str | None = Field(None, description="rerun from this stage on")
    only: str | None = Field(None, description="run only this stage")
    overrides: list[str] = Field(default_factory=list, description="<stage>.<key>=value overrides of stage configs")
    dry_run: bool = Field(False, description="print what would run, resume or be skipped, and why; run nothing")
