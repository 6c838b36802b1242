"""``alignkit <command> [--config FILE] [--print-config] [key=value ...]``: built from the registry.

Every command in ``commands.COMMANDS`` becomes a typer command with the same options: ``--config``,
``--print-config``, ``--debug`` and the entry's short flags. A word the command does not understand
is an error, never silently dropped.

Exit codes: 0 success; 1 the command ran and found problems (lint, probes); 2 bad input or config,
printed as one line ``error: <file>:<line>: <field>: <what was expected>`` (``--debug`` shows the
traceback instead).
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperCommand

from alignkit import __version__
from alignkit.commands import COMMANDS, Command, flag_values, resolve_config
from alignkit.config.base import config_reference, config_to_commented_yaml
from alignkit.errors import AlignkitError
from alignkit.threads import thread_defaults

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Align a language model to a use case, end to end.")
# Unknown options reach the command as words, so that it can say what was meant instead of click's
# generic "No such option".
EXTRA = {"allow_extra_args": True, "ignore_unknown_options": True}


def run_guarded(debug: bool, body: Callable[[], int]) -> None:
    """Runs a command body; user mistakes become one line on stderr and exit code 2."""
    verbose = bool(os.environ.get("ALIGNKIT_VERBOSE"))
    # alignkit never downloads at run time: the Hub client reads only its local cache (read at its import).
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not verbose:
        _silence_loading_bars()
    # Progress a person waits for ("loading model ... in 37.2 s"): plain lines on stderr.
    progress = logging.getLogger("alignkit.progress")
    if not progress.handlers:
        handler = _CurrentStderr()
        handler.setFormatter(logging.Formatter("%(message)s"))
        progress.addHandler(handler)
        progress.setLevel(logging.INFO)
        progress.propagate = False
    if debug or os.environ.get("ALIGNKIT_DEBUG"):
        raise typer.Exit(body())
    try:
        code = body()
    except AlignkitError as error:
        typer.echo(f"error: {error.one_line()}", err=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(130) from None
    raise typer.Exit(code)


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a line is logged, not the stream it was made with: a
    caller that swaps stderr (a test runner capturing one command) would otherwise leave the handler
    writing to a closed stream for every later command in the process."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def _silence_loading_bars() -> None:
    """transformers' and the Hub's loading bars, which would leak into every command's output. The variables
    are read when huggingface_hub and tqdm are first imported (the command body does that); already
    imported, by a caller or a test, the Hub's and transformers' own bars are switched off directly.
    ``TQDM_DISABLE`` covers the bars transformers draws with plain tqdm, which its switch does not reach
    (the GGUF conversion of the embedded model's first use); alignkit's own progress is log lines."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")
    if "huggingface_hub" in sys.modules:
        sys.modules["huggingface_hub"].utils.disable_progress_bars()
    if "transformers" in sys.modules:
        sys.modules["transformers"].utils.logging.disable_progress_bar()


def _progress(message: str) -> None:
    typer.echo(message, err=True)


def dispatch(command: Command, words: list[str], flags: dict[str, Any], config: Path | None,
             print_config: bool) -> int:
    cfg = resolve_config(command, words, flags, config)
    if print_config:
        typer.echo(config_to_commented_yaml(cfg), nl=False)
        return 0
    result = command.execute(cfg, _progress)
    if result.show is not None:
        result.show()
    return result.code


def _parameters(command: Command) -> list[inspect.Parameter]:
    def option(name: str, default: Any, annotation: Any) -> inspect.Parameter:
        return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)

    params = [option("words", typer.Argument(None, metavar="ARGS", help=command.positional_help, show_default=False),
                     list[str] | None)]
    for flag in command.flags:
        if flag.value is not None:
            params.append(option(flag.param, typer.Option(False, flag.option, help=flag.help), bool))
        elif flag.multiple:
            params.append(option(flag.param, typer.Option(None, flag.option, help=flag.help), list[str] | None))
        else:
            params.append(option(flag.param, typer.Option(None, flag.option, help=flag.help), flag.type | None))
    params += [
        option("config", typer.Option(None, "--config", "-c", help="YAML config file"), Path | None),
        option("print_config", typer.Option(False, "--print-config", help="print the resolved config and exit"),
               bool),
        option("debug", typer.Option(False, "--debug", help="show tracebacks"), bool),
    ]
    return params


def _typer_function(command: Command) -> Callable[..., None]:
    """A function whose signature typer reads as the command's arguments and options."""

    def handler(**given: Any) -> None:
        words = list(given.pop("words") or [])
        config, print_config, debug = given.pop("config"), given.pop("print_config"), given.pop("debug")
        flags = flag_values(command, given)
        run_guarded(debug, lambda: dispatch(command, words, flags, config, print_config))

    params = _parameters(command)
    handler.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    handler.__annotations__ = {param.name: param.annotation for param in params}
    handler.__doc__ = command.help
    handler.__name__ = command.name.replace(" ", "_").replace("-", "_")
    return handler


def config_keys_help(command: Command) -> str:
    """The epilog of ``alignkit CMD --help``: every config key with its type, default and description, from
    the config class (``\b`` keeps click from rewrapping the table)."""
    rows = [(key, kind, json.dumps(default), text) for key, kind, default, text in config_reference(command.config)]
    width = max(len(key) for key, *_ in rows)
    lines = [f"  {key:<{width}}  {kind} = {default}" + (f"  {text}" if text else "") for key, kind, default, text in rows]
    table = "\n".join(lines).replace("[", "\\[")  # typer renders help as rich markup: "[int]" is no tag
    return "Config keys (key=value on the command line, or in --config FILE):\n\n\b\n" + table


def _with_key_table(command: Command) -> type[TyperCommand]:
    """A typer command class whose epilog (the key table) is built when ``--help`` shows it: building it
    instantiates every config section, which at start-up would cost time and apply checks (an RL config's
    refusal of an FSDP launch's environment) to commands that were not asked for."""

    class KeyTableCommand(TyperCommand):
        @property  # type: ignore[override]
        def epilog(self) -> str:
            return config_keys_help(command)

        @epilog.setter
        def epilog(self, _value: str | None) -> None:
            pass

    return KeyTableCommand


def _version(value: bool) -> None:
    if value:
        typer.echo(f"alignkit {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="print the version and exit")) -> None:
    """Align a language model to a use case, end to end."""


def build_app() -> typer.Typer:
    """Adds every registry command to ``app`` (``synth self-instruct`` goes into a ``synth`` group)."""
    groups: dict[str, typer.Typer] = {}
    for command in COMMANDS:
        *group, name = command.name.split(" ")
        target = app
        if group:
            if group[0] not in groups:
                groups[group[0]] = typer.Typer(no_args_is_help=True, help=GROUP_HELP.get(group[0]))
                app.add_typer(groups[group[0]], name=group[0])
            target = groups[group[0]]
        target.command(name, cls=_with_key_table(command), context_settings=EXTRA,
                       help=command.help)(_typer_function(command))
    return app


GROUP_HELP = {
    "synth": "Synthetic data: self-instruct, grounded dialogs, distillation.",
    "rag": "Retrieval (RAG): index documents, query, evaluate.",
    "guard": "Guardrails: train classifiers, check texts, probe a guard file.",
}
build_app()


def main() -> None:
    thread_defaults()
    app()


if __name__ == "__main__":
    main()
