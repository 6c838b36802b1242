"""Batched generation with a local transformers model, stopping on the template's end-of-turn token.

Prompts are rendered with the same chat template (and BOS rule) as training, left-padded, and
generated together; ``Generation.stopped`` says whether the reply ended with an end-of-turn token
(or a stop string) before the token limit.
"""

from __future__ import annotations

from typing import Any

import torch

from alignkit.data.formatting import generation_prompt_ids, template_info
from alignkit.generation.types import Chat, Generation, GenerationParams


def _stop_ids(model: Any, tokenizer: Any) -> list[int]:
    info = template_info(tokenizer)
    ids: set[int] = set()
    eos = model.generation_config.eos_token_id
    if eos is not None:
        ids |= set(eos) if isinstance(eos, list | tuple) else {int(eos)}
    if info.eot_id is not None:
        ids.add(info.eot_id)
    return sorted(ids)


class LocalGenerator:
    """The ``Generator`` protocol over a transformers causal LM (PEFT-wrapped or not)."""

    def __init__(self, model: Any, tokenizer: Any, *, batch_size: int = 16, chat_template: str | None = None,
                 stop_on_eot: bool = True) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.chat_template = chat_template
        # stop_on_eot=False shows what a model does when serving ignores end-of-turn (diagnosis only).
        self.stop_ids = _stop_ids(model, tokenizer) if stop_on_eot else []

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def chat(self, chats: list[Chat], params: GenerationParams) -> list[list[Generation]]:
        prompts = [generation_prompt_ids(self.tokenizer, chat, chat_template=self.chat_template) for chat in chats]
        return self.generate_ids(prompts, params)

    def generate_ids(self, prompts: list[list[int]], params: GenerationParams) -> list[list[Generation]]:
        """Generates ``params.num_samples`` replies for each prompt (token ids)."""
        expanded = [(i, p) for i, p in enumerate(prompts) for _ in range(params.num_samples)]
        # Similar lengths share a batch: less left padding to run through the model. The sort is
        # stable, so each prompt's samples keep their order.
        expanded.sort(key=lambda item: len(item[1]))
        results: list[list[Generation]] = [[] for _ in prompts]
        generator = torch.Generator(device="cpu").manual_seed(params.seed)
        for start in range(0, len(expanded), self.batch_size):
            batch = expanded[start : start + self.batch_size]
            # A seed per batch from one stream: results do not depend on what ran before in-process.
            batch_seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
            for (owner, _), generation in zip(batch, self._generate_batch([p for _, p in batch], params, batch_seed),
                                              strict=True):
                results[owner].append(generation)
        return results

    @torch.no_grad()
    def _generate_batch(self, prompts: list[list[int]], params: GenerationParams, seed: int) -> list[Generation]:
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        width = max(len(p) for p in prompts)
        input_ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, prompt in enumerate(prompts):
            input_ids[row, width - len(prompt):] = torch.tensor(prompt)
            attention_mask[row, width - len(prompt):] = 1
        sampling = params.temperature > 0
        kwargs: dict[str, Any] = {
            "max_new_tokens": params.max_new_tokens,
            "do_sample": sampling,
            "repetition_penalty": params.repetition_penalty,
            "pad_token_id": pad_id,
            "eos_token_id": self.stop_ids or None,
        }
        if sampling:
            kwargs.update(temperature=params.temperature, top_p=params.top_p, top_k=params.top_k or None)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        if params.stop:
            kwargs.update(stop_strings=list(params.stop), tokenizer=self.tokenizer)
        if params.length_penalty != 1.0:
            kwargs["length_penalty"] = params.length_penalty
        was_training = self.model.training
        self.model.eval()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            output = self.model.generate(input_ids=input_ids.to(self.device),
                                         attention_mask=attention_mask.to(self.device), **kwargs)
        if was_training:
            self.model.train()
        generations: list[Generation] = []
        for row in output[:, width:].tolist():
            generations.append(self._finish(row, params))
        return generations

    def _finish(self, row: list[int], params: GenerationParams) -> Generation:
        """Cuts a generated row at its first stop token; records whether it stopped."""
        pad_id = self.tokenizer.pad_token_id
        stop_set = set(self.stop_ids)
        ids: list[int] = []
        stopped = False
        for token in row:
            ids.append(token)
            if token in stop_set:
                stopped = True
                break
        if not stopped and pad_id is not None and pad_id not in stop_set:
            while ids and ids[-1] == pad_id:
                ids.pop()
        text_ids = ids[:-1] if stopped else ids
        text = self.tokenizer.decode(text_ids, skip_special_tokens=False)
        if not stopped:
            for stop in params.stop:
                if stop in text:
                    text, stopped = text[: text.index(stop)], True
                    break
        if not stopped and len(ids) < params.max_new_tokens:
            stopped = True  # ended early through a stop string matched by generate()
        return Generation(text=text, token_ids=ids, stopped=stopped, finish_reason="stop" if stopped else "length")
