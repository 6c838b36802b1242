"""Config of ``alignkit serve``: the model and its named adapters, where to listen, keys and limits."""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from alignkit.config.base import StrictModel
from alignkit.config.common import ModelFields
from alignkit.config.rag import RagUseConfig

# Served names travel in URLs, JSON and the chat page: keep them plain.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")


class ServeLimits(StrictModel):
    """Caps that keep one client from taking the server down; a request over one gets a 4xx."""

    max_tokens: int = Field(1024, gt=0, description="largest max_tokens a request may ask for")
    default_max_tokens: int = Field(256, gt=0, description="max_tokens when a request gives none")
    max_prompt_tokens: int = Field(4096, gt=0, description="longest prompt, in tokens")
    max_n: int = Field(8, gt=0, description="most choices (n) per request")
    max_stop: int = Field(4, ge=0, description="most stop strings per request (OpenAI allows 4)")
    max_top_logprobs: int = Field(20, ge=0, description="largest top_logprobs")
    max_body_bytes: int = Field(1_000_000, gt=0, description="largest request body (413 above)")
    max_batch: int = Field(16, gt=0, description="rows generated together (requests batched into one call)")
    max_queue: int = Field(32, ge=0, description="requests waiting for the model (429 with Retry-After above)")
    request_timeout_s: float = Field(300.0, gt=0, description="a request still unanswered after this gets 408")
    batch_window_ms: float = Field(10.0, ge=0, description="how long the first greedy request waits for others to batch with")

    @model_validator(mode="after")
    def _default_within_cap(self) -> ServeLimits:
        if self.default_max_tokens > self.max_tokens:
            raise ValueError(f"default_max_tokens={self.default_max_tokens} exceeds max_tokens={self.max_tokens}")
        return self


class ServeConfig(ModelFields):
    """``alignkit serve``: one base model, any number of named LoRA adapters on top of it."""

    adapters: dict[str, str] = Field(default_factory=dict,
                                     description="served name -> PEFT adapter folder trained on `model`")
    name: str | None = Field(None, description="the base model's served name (default: the spec's last path part)")
    host: str = Field("127.0.0.1", description="address to bind; anything but loopback needs an API key")
    port: int = Field(8000, ge=0, le=65535, description="0 = a free port (printed)")
    api_key_file: str | None = Field(None, description="a file holding the API key clients must send")
    allow_remote_without_key: bool = Field(False, description="bind a non-loopback address with no API key")
    chat_template: str | None = Field(None, description="the Jinja chat template (text or .jinja path) training used")
    threads: int | None = Field(None, gt=0, description="torch CPU threads (default: torch's choice)")
    check: bool = Field(False, description="render the template, compare greedy replies in process and over HTTP, exit")
    check_prompts: list[str] = Field(
        default_factory=lambda: ["hello", "What is 2 + 2?", "Name a colour."],
        description="user prompts --check compares",
    )
    check_max_tokens: int = Field(32, gt=0, description="reply length --check compares")
    limits: ServeLimits = Field(default_factory=ServeLimits)
    rag: RagUseConfig | None = Field(
        None, description="retrieval for chat requests: {index, top_k}; the chunks replace the system turn"
    )
    guard: str | None = Field(
        None, description="a guard file: input rules on each chat prompt, output rules on each answer"
    )

    @field_validator("adapters")
    @classmethod
    def _plain_names(cls, adapters: dict[str, str]) -> dict[str, str]:
        for name in adapters:
            if not _NAME.match(name):
                raise ValueError(f"adapter name {name!r}: use letters, digits and . _ : / - (up to 128)")
        return adapters

    @model_validator(mode="after")
    def _one_way_to_name_adapters(self) -> ServeConfig:
        if self.adapter is not None:
            raise ValueError("serve takes named adapters: --adapter NAME=DIR (adapters.NAME=DIR), not adapter=DIR")
        return self
