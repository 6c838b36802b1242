"""Batched generation with a local transformers model, stopping on the template's end-of-turn token.

Prompts are rendered with the same chat template (and BOS rule) as training, left-padded, and
generated together; ``Generation.stopped`` says whether the reply ended with an end-of-turn token
(or a stop string) before the token limit.

For serving, ``generate_ids`` also hands each new token to a callback as it is generated (for every
row of the batch: transformers' own streamers take one row only), stops single rows on request (a
client that went away, a deadline) and records log-probabilities.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

import torch
from transformers import LogitsProcessor, LogitsProcessorList, StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

from alignkit.data.formatting import generation_prompt_ids, stop_token_ids
from alignkit.generation.types import Chat, Generation, GenerationParams, TokenLogprob
from alignkit.models.attention import PACKED_ATTENTION
from alignkit.models.unwrap import base_causal_lm

# The default ``min_shared_prefix``: a prompt prefix shared by a whole batch (a system prompt, the samples
# of one prompt) shorter than this is recomputed per row: the extra forward pass would cost more than it saves.
MIN_SHARED_PREFIX = 16
_MASKED_ATTENTION = {"sdpa", "eager", PACKED_ATTENTION}

# (prompt index, sample index, token id), called on the generating thread for each new token of a row.
TokenCallback = Callable[[int, int, int], None]
# prompt index -> True when that prompt's rows should stop now (its client went away, a deadline passed).
CancelCheck = Callable[[int], bool]


class _CancelRows(StoppingCriteria):
    """Stops the rows whose prompt ``cancelled`` names, leaving the rest of the batch running.

    ``stopped_at[prompt]`` is the number of generated tokens its rows keep: transformers appends the
    step's token before asking, and fills the row with pad ids afterwards.
    """

    def __init__(self, owners: list[tuple[int, int]], cancelled: CancelCheck, prompt_width: int) -> None:
        self.owners = owners
        self.cancelled = cancelled
        self.prompt_width = prompt_width
        self.stopped_at: dict[int, int] = {}

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        flags = []
        for prompt_index, _ in self.owners:
            if prompt_index not in self.stopped_at and self.cancelled(prompt_index):
                self.stopped_at[prompt_index] = input_ids.shape[-1] - self.prompt_width
            flags.append(prompt_index in self.stopped_at)
        return torch.tensor(flags, dtype=torch.bool, device=input_ids.device)


class _RowStreamer(BaseStreamer):
    """Passes each row's new token to ``on_token`` until the row emits a stop token or is cancelled.

    ``generate`` calls ``put`` once with the prompt ids (skipped) and then once per step with one
    token per row (pad for a row that has finished).
    """

    def __init__(self, owners: list[tuple[int, int]], stop_ids: set[int], on_token: TokenCallback,
                 cancel: _CancelRows | None) -> None:
        self.owners = owners
        self.stop_ids = stop_ids
        self.on_token = on_token
        self.cancel = cancel
        self.seen_prompt = False
        self.emitted = [0] * len(owners)
        self.finished = [False] * len(owners)

    def put(self, value: torch.Tensor) -> None:
        if not self.seen_prompt:
            self.seen_prompt = True
            return
        for row, token in enumerate(value.reshape(-1).tolist()):
            prompt_index, sample_index = self.owners[row]
            limit = self.cancel.stopped_at.get(prompt_index) if self.cancel is not None else None
            if self.finished[row] or (limit is not None and self.emitted[row] >= limit):
                continue
            self.on_token(prompt_index, sample_index, token)
            self.emitted[row] += 1
            self.finished[row] = token in self.stop_ids

    def end(self) -> None:
        pass


class _LogprobRecorder(LogitsProcessor):
    """Records each step's log-probabilities of the chosen token and the ``top_k`` most likely ones.

    transformers runs processors passed to ``generate`` after its own penalties (repetition) and
    before the sampling warpers (temperature, top-k, top-p): the recorded distribution is the
    model's, with the repetition penalty applied, independent of the sampling settings. The token
    chosen at a step is only known at the next call (or from the output), so one step's
    log-probabilities wait in ``pending``.
    """

    def __init__(self, top_k: int) -> None:
        self.top_k = top_k
        self.pending: torch.Tensor | None = None
        self.steps: list[tuple[list[int], list[float], list[list[int]], list[list[float]]]] = []

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if self.pending is not None:
            self._settle(input_ids[:, -1])
        self.pending = torch.log_softmax(scores.float(), dim=-1)
        return scores

    def _settle(self, chosen: torch.Tensor) -> None:
        assert self.pending is not None
        chosen_logps = self.pending.gather(1, chosen[:, None].to(self.pending.device)).squeeze(1)
        top_logps, top_ids = self.pending.topk(self.top_k, dim=-1) if self.top_k else (chosen_logps[:, None][:, :0],) * 2
        self.steps.append((chosen.tolist(), chosen_logps.tolist(), top_ids.tolist(), top_logps.tolist()))
        self.pending = None

    def finish(self, generated: torch.Tensor) -> None:
        """``generated``: (rows, steps) new token ids; settles the last step."""
        if self.pending is not None:
            self._settle(generated[:, len(self.steps)])

    def row(self, row: int, length: int) -> list[TokenLogprob]:
        return [
            TokenLogprob(token_id=chosen[row], logprob=logps[row],
                         top=tuple(zip(top_ids[row], top_logps[row], strict=True)))
            for chosen, logps, top_ids, top_logps in self.steps[:length]
        ]


class LocalGenerator:
    """The ``Generator`` protocol over a transformers causal LM (PEFT-wrapped or not)."""

    def __init__(self, model: Any, tokenizer: Any, *, batch_size: int = 16, chat_template: str | None = None,
                 stop_on_eot: bool = True, segment_tokens: int = 32,
                 min_shared_prefix: int = MIN_SHARED_PREFIX) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.chat_template = chat_template
        # Rows that stopped leave the batch every ``segment_tokens`` new tokens (0 = never); see
        # ``_generate_in_segments``. Streaming, cancellation and log-probs use one generate call.
        self.segment_tokens = segment_tokens
        # A batch's common prompt prefix of at least this many tokens runs once (0 = never); see
        # ``_shared_prefix_length``.
        self.min_shared_prefix = min_shared_prefix
        # transformers 5.x renames the cache argument ``past_key_values`` to ``cache`` (the old name
        # warns until 6.0): the name this version's models take.
        self._cache_argument = ("cache" if "cache" in inspect.signature(base_causal_lm(model).forward).parameters
                                else "past_key_values")
        # stop_on_eot=False shows what a model does when serving ignores end-of-turn (diagnosis only).
        self.stop_ids = stop_token_ids(tokenizer, model.generation_config, chat_template) if stop_on_eot else []

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def chat(self, chats: list[Chat], params: GenerationParams) -> list[list[Generation]]:
        prompts = [generation_prompt_ids(self.tokenizer, chat, chat_template=self.chat_template) for chat in chats]
        return self.generate_ids(prompts, params)

    def generate_ids(self, prompts: list[list[int]], params: GenerationParams, *,
                     on_token: TokenCallback | None = None,
                     cancelled: CancelCheck | None = None) -> list[list[Generation]]:
        """Generates ``params.num_samples`` replies for each prompt (token ids).

        ``on_token(prompt, sample, token_id)`` sees every generated token as it comes, up to and
        including a stop token (a row cut by a stop string may pass pad ids after it: the caller
        cuts at the stop string). ``cancelled(prompt)`` returning True stops that prompt's rows at
        the next step; they come back with ``finish_reason="cancelled"``.
        """
        expanded = [(i, p) for i, p in enumerate(prompts) for _ in range(params.num_samples)]
        # Similar lengths share a batch: less left padding to run through the model. The sort is
        # stable, so each prompt's samples keep their order.
        expanded.sort(key=lambda item: len(item[1]))
        results: list[list[Generation]] = [[] for _ in prompts]
        generator = torch.Generator(device="cpu").manual_seed(params.seed)
        next_sample = [0] * len(prompts)
        for start in range(0, len(expanded), self.batch_size):
            batch = expanded[start : start + self.batch_size]
            # A seed per batch from one stream: results do not depend on what ran before in-process.
            batch_seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
            owners: list[tuple[int, int]] = []  # (prompt, sample) of each row
            for owner, _ in batch:
                owners.append((owner, next_sample[owner]))
                next_sample[owner] += 1
            one_call = (on_token is not None or cancelled is not None or params.logprobs is not None
                        or not self.segment_tokens or params.max_new_tokens <= self.segment_tokens)
            if one_call:
                generations = self._generate_batch([p for _, p in batch], params, batch_seed, owners=owners,
                                                   on_token=on_token, cancelled=cancelled)
            else:
                generations = self._generate_in_segments([p for _, p in batch], params, batch_seed)
            for (owner, _), generation in zip(batch, generations, strict=True):
                results[owner].append(generation)
        return results

    def _generate_in_segments(self, prompts: list[list[int]], params: GenerationParams, seed: int) -> list[Generation]:
        """Generates in segments of ``segment_tokens``; rows that stopped leave the batch between them.

        ``generate`` keeps a finished row in the batch, computing pad tokens for it, until the last row
        stops: one rambling reply makes a whole batch pay for ``max_new_tokens``. Here each segment
        continues only the unfinished rows (prompt + what they generated so far, as a new prompt). A
        segment in which no row stopped doubles the next one, so a batch that never stops pays few
        re-prefills. Greedy replies equal one long ``generate`` call up to floating-point rounding;
        sampled ones follow the same distribution with another random stream (each segment draws its
        seed from one stream seeded by ``seed``).
        """
        stop_set = set(self.stop_ids)
        pad_id = self.tokenizer.pad_token_id
        generated: list[list[int]] = [[] for _ in prompts]
        active = list(range(len(prompts)))
        seeds = torch.Generator(device="cpu").manual_seed(seed)
        segment = self.segment_tokens
        while active:
            step = min(segment, params.max_new_tokens - len(generated[active[0]]))
            segment_seed = int(torch.randint(0, 2**31 - 1, (1,), generator=seeds))
            rows = self._generate_tokens([prompts[i] + generated[i] for i in active],
                                         dataclasses.replace(params, max_new_tokens=step), segment_seed, {})
            still: list[int] = []
            for index, row in zip(active, rows.tolist(), strict=True):
                new = next((row[: k + 1] for k, token in enumerate(row) if token in stop_set), row)
                finished = len(new) < len(row) or (bool(new) and new[-1] in stop_set)
                if not finished and pad_id is not None and pad_id not in stop_set:
                    while new and new[-1] == pad_id:  # generate() pads a row a stop string ended
                        new.pop()
                    finished = len(new) < step
                generated[index] += new
                if params.stop and not finished:
                    # generate() may have ended the row on the segment's last token; its stop-string
                    # check reads the end of the whole sequence, prompt included: read the same tail.
                    tail = (prompts[index] + generated[index])[-max(len(stop) for stop in params.stop) - 4 :]
                    text = self.tokenizer.decode(tail, skip_special_tokens=False)
                    finished = any(text.endswith(stop) for stop in params.stop)
                if not finished and len(generated[index]) < params.max_new_tokens:
                    still.append(index)
            segment = segment * 2 if len(still) == len(active) else segment
            active = still
        return [self._finish(row, params) for row in generated]

    @torch.no_grad()
    def _generate_tokens(self, prompts: list[list[int]], params: GenerationParams, seed: int,
                         hooks: dict[str, Any]) -> torch.Tensor:
        """One ``generate`` call on left-padded prompts: (rows, new tokens), pad after a row's end.

        ``hooks``: extra ``generate`` keyword arguments (streamer, stopping criteria, logits processors).
        """
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        width = max(len(p) for p in prompts)
        shared = self._shared_prefix_length(prompts)
        # Rows are [shared prefix | left padding | own suffix]: the prefix is one run of positions for
        # every row, so its keys and values are computed once (``_prefix_cache``) instead of per row.
        # With no shared prefix this is plain left padding.
        input_ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(prompts), width), dtype=torch.long)
        input_ids[:, :shared] = torch.tensor(prompts[0][:shared])
        attention_mask[:, :shared] = 1
        for row, prompt in enumerate(prompts):
            input_ids[row, width - len(prompt) + shared:] = torch.tensor(prompt[shared:])
            attention_mask[row, width - len(prompt) + shared:] = 1
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
        if shared:
            kwargs.update(self._prefix_cache(input_ids[:1, :shared], len(prompts)))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            output = self.model.generate(input_ids=input_ids.to(self.device),
                                         attention_mask=attention_mask.to(self.device), **kwargs, **hooks)
        if was_training:
            self.model.train()
        return output[:, width:]

    def _shared_prefix_length(self, prompts: list[list[int]]) -> int:
        """Tokens every prompt of the batch starts with, when worth computing once; else 0.

        At least one token of each prompt stays outside the prefix (generation starts from a
        forward pass over new tokens). Only attention implementations that take an arbitrary padding
        mask with a cache (SDPA, eager, and ``alignkit_packed``, which hands generation to SDPA):
        flash attention's unpadding assumes padding at the start of a row.
        """
        if len(prompts) < 2 or self.model.config._attn_implementation not in _MASKED_ATTENTION:
            return 0
        first = prompts[0]
        shared = min(len(p) for p in prompts) - 1
        for prompt in prompts[1:]:
            shared = next((k for k in range(shared) if prompt[k] != first[k]), shared)
        return shared if self.min_shared_prefix and shared >= self.min_shared_prefix else 0

    def _prefix_cache(self, prefix_ids: torch.Tensor, rows: int) -> dict[str, Any]:
        """``generate``'s cache argument: the keys and values of ``prefix_ids`` (1, P), computed once
        and repeated for ``rows`` rows."""
        output = self.model(input_ids=prefix_ids.to(self.device), use_cache=True, logits_to_keep=1)
        cache = getattr(output, self._cache_argument)
        cache.batch_repeat_interleave(rows)
        return {self._cache_argument: cache}

    def _generate_batch(self, prompts: list[list[int]], params: GenerationParams, seed: int, *,
                        owners: list[tuple[int, int]], on_token: TokenCallback | None = None,
                        cancelled: CancelCheck | None = None) -> list[Generation]:
        hooks: dict[str, Any] = {}
        width = max(len(p) for p in prompts)
        cancel = _CancelRows(owners, cancelled, width) if cancelled is not None else None
        if on_token is not None:
            hooks["streamer"] = _RowStreamer(owners, set(self.stop_ids), on_token, cancel)
        if cancel is not None:
            hooks["stopping_criteria"] = StoppingCriteriaList([cancel])
        recorder = _LogprobRecorder(params.logprobs) if params.logprobs is not None else None
        if recorder is not None:
            hooks["logits_processor"] = LogitsProcessorList([recorder])
        generated = self._generate_tokens(prompts, params, seed, hooks)
        if recorder is not None:
            recorder.finish(generated)
        generations: list[Generation] = []
        for index, row in enumerate(generated.tolist()):
            kept = cancel.stopped_at.get(owners[index][0]) if cancel is not None else None
            generation = self._finish(row if kept is None else row[:kept], params, cancelled=kept is not None)
            if recorder is not None:
                generation.logprobs = recorder.row(index, len(generation.token_ids))
            generations.append(generation)
        return generations

    def _finish(self, row: list[int], params: GenerationParams, *, cancelled: bool = False) -> Generation:
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
        if not stopped and cancelled:
            return Generation(text=text, token_ids=ids, stopped=False, finish_reason="cancelled")
        if not stopped and len(ids) < params.max_new_tokens:
            stopped = True  # ended early through a stop string matched by generate()
        return Generation(text=text, token_ids=ids, stopped=stopped, finish_reason="stop" if stopped else "length")
