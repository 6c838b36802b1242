"""Config of ``alignkit export``: the merged model as GGUF (llama.cpp, Ollama) or safetensors."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from alignkit.config.base import StrictModel
from alignkit.config.commands import MergeConfig


class SamplingDefaults(StrictModel):
    """Written to the GGUF (general.sampling.*) and the Modelfile (PARAMETER); alignkit chat's defaults."""

    temperature: float = Field(0.7, ge=0.0, description="0 = greedy")
    top_p: float = Field(0.9, gt=0.0, le=1.0)
    top_k: int = Field(0, ge=0, description="0 = off")
    repetition_penalty: float = Field(1.0, gt=0.0, description="Ollama's repeat_penalty; 1 = off")


class ExportConfig(MergeConfig):
    """``adapters`` (and ``adapter``) are merged exactly as ``alignkit merge`` does, then written."""

    format: Literal["gguf", "safetensors"] = Field("gguf", description="gguf: one file for llama.cpp/Ollama; "
                                                   "safetensors: a merged model folder")
    quant: Literal["f16", "q8_0"] = Field("f16", description="GGUF weight type: f16, or q8_0 (8-bit blocks of 32)")
    overwrite: bool = Field(False, description="replace an existing output (refused otherwise)")
    modelfile: bool = Field(True, description="write an Ollama Modelfile next to the GGUF (<name>.Modelfile)")
    name: str | None = Field(None, description="general.name in the GGUF (default: the output file's stem)")
    chat_template: str | None = Field(None, description="the Jinja template used in training, if it was not the "
                                      "tokenizer's (text or .jinja path)")
    sampling: SamplingDefaults = Field(default_factory=SamplingDefaults)
