"""A real llama.cpp, for checking exported GGUF files: the CPU build shipped in the ``llama-cpp-cffi`` wheel.

Why this wheel: llama-cpp-python has no binary wheel (a CMake build), llama-cpp-py-sync's library needs
glibc 2.38 (this machine has 2.36), and llama-cpp-cffi 0.4.42's CPU extension loads here but for one
symbol: it was built with GCC 14, whose ``__cxa_call_terminate`` (reached only when an exception
leaves a ``noexcept`` function) this machine's libstdc++ (GCC 12) lacks. We compile that one function
(it aborts the process; GCC 14's calls std::terminate, which aborts too) into a small shared library
and load it first.

Install (its metadata pins transformers < 5, so without dependencies; scripts/setup.sh does it with
ALIGNKIT_LLAMA_CPP=1): ``pip install --no-deps "llama-cpp-cffi==0.4.42"``. Tests skip when it is absent.

The extension is loaded directly (its package ``__init__`` imports transformers 4 helpers) and driven
through llama.cpp's C API: tokenize, decode, read the last position's logits, greedy next token.
"""

from __future__ import annotations

import ctypes
import importlib.machinery
import importlib.util
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

_SHIM = 'extern "C" void __cxa_call_terminate(void*) noexcept { __builtin_trap(); }\n'
_LIB: tuple[Any, Any] | None = None
_UNAVAILABLE: list[str] = []


def unavailable_reason() -> str | None:
    """Why llama.cpp cannot run here, or None when it can (the first answer is kept)."""
    if _LIB is None and not _UNAVAILABLE:
        try:
            _load()
        except (ImportError, OSError, RuntimeError, subprocess.CalledProcessError) as exc:
            _UNAVAILABLE.append(f"llama.cpp runtime unavailable: {exc}")
    return _UNAVAILABLE[0] if _UNAVAILABLE else None


def _load() -> tuple[Any, Any]:
    global _LIB
    if _LIB is not None:
        return _LIB
    spec = importlib.util.find_spec("llama")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("llama-cpp-cffi is not installed (pip install --no-deps llama-cpp-cffi==0.4.42)")
    extension = next(Path(list(spec.submodule_search_locations)[0]).glob("_llama_cpp_cpu*.so"), None)
    if extension is None:
        raise ImportError("llama-cpp-cffi has no CPU extension")
    compiler = shutil.which("g++") or shutil.which("c++")
    if compiler is None:
        raise RuntimeError("no C++ compiler to build the __cxa_call_terminate shim")
    build = Path(tempfile.mkdtemp(prefix="alignkit-llama-shim-"))
    (build / "shim.cc").write_text(_SHIM)
    subprocess.run([compiler, "-shared", "-fPIC", "-o", str(build / "libshim.so"), str(build / "shim.cc")],
                   check=True, capture_output=True)
    ctypes.CDLL(str(build / "libshim.so"), mode=ctypes.RTLD_GLOBAL)
    shutil.rmtree(build)  # the loaded library stays mapped
    loader = importlib.machinery.ExtensionFileLoader("_llama_cpp_cpu", str(extension))
    module_spec = importlib.util.spec_from_file_location("_llama_cpp_cpu", extension, loader=loader)
    assert module_spec is not None
    module = importlib.util.module_from_spec(module_spec)
    loader.exec_module(module)
    lib, ffi = module.lib, module.ffi

    @ffi.def_extern(name="llama_cpp_cffi_ggml_log_callback")
    def _quiet(level: int, text: Any, user_data: Any) -> None:
        del level, text, user_data  # llama.cpp's load log is long; errors surface as NULL returns

    lib.llama_log_set(lib.llama_cpp_cffi_ggml_log_callback, ffi.NULL)
    lib.llama_backend_init()
    _LIB = (lib, ffi)
    return _LIB


class LlamaCpp:
    """One GGUF loaded by llama.cpp, with a context of ``n_ctx`` tokens on one thread."""

    def __init__(self, path: str | Path, n_ctx: int = 512) -> None:
        self.lib, self.ffi = _load()
        self.model = self.lib.llama_model_load_from_file(str(path).encode(), self.lib.llama_model_default_params())
        if self.model == self.ffi.NULL:
            raise RuntimeError(f"llama.cpp could not load {path}")
        self.vocab = self.lib.llama_model_get_vocab(self.model)
        self.n_vocab = self.lib.llama_vocab_n_tokens(self.vocab)
        params = self.lib.llama_context_default_params()
        params.n_ctx = params.n_batch = n_ctx
        params.n_threads = params.n_threads_batch = 1
        self.ctx = self.lib.llama_init_from_model(self.model, params)

    def close(self) -> None:
        self.lib.llama_free(self.ctx)
        self.lib.llama_model_free(self.model)

    def tokenize(self, text: str) -> list[int]:
        """Special tokens in ``text`` are parsed (as a chat prompt needs); BOS is added only if the file says so."""
        data = text.encode()
        buffer = self.ffi.new(f"llama_token[{len(data) + 8}]")
        count = self.lib.llama_tokenize(self.vocab, data, len(data), buffer, len(data) + 8, True, True)
        return [buffer[i] for i in range(count)]

    def is_end_of_generation(self, token_id: int) -> bool:
        return bool(self.lib.llama_vocab_is_eog(self.vocab, token_id))

    def _decode(self, token_ids: list[int]) -> np.ndarray:
        tokens = self.ffi.new(f"llama_token[{len(token_ids)}]", token_ids)
        if self.lib.llama_decode(self.ctx, self.lib.llama_batch_get_one(tokens, len(token_ids))) != 0:
            raise RuntimeError("llama_decode failed")
        logits = self.lib.llama_get_logits_ith(self.ctx, -1)
        return np.frombuffer(self.ffi.buffer(logits, self.n_vocab * 4), dtype=np.float32).copy()

    def _reset(self) -> None:
        self.lib.llama_kv_self_clear(self.ctx)  # this build's name for emptying the KV cache

    def last_logits(self, token_ids: list[int]) -> np.ndarray:
        """The logits after the last of ``token_ids`` (a fresh sequence)."""
        self._reset()
        return self._decode(token_ids)

    def greedy(self, token_ids: list[int], max_new_tokens: int) -> list[int]:
        """Argmax decoding until an end-of-generation token (included) or ``max_new_tokens``."""
        self._reset()
        logits = self._decode(token_ids)
        reply: list[int] = []
        while len(reply) < max_new_tokens:
            token = int(logits.argmax())
            reply.append(token)
            if self.is_end_of_generation(token):
                break
            logits = self._decode([token])
        return reply
