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
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from alignkit.commands import COMMANDS, Command, flag_values, resolve_config
from alignkit.config.base import config_to_yaml
from alignkit.errors import AlignkitError

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Align a language model to a use case, end to end.")
# Unknown options reach the command as words, so that it can say what was meant instead of click's
# generic "No such option".
EXTRA = {"allow_extra_args": True, "ignore_unknown_options": True}


def run_guarded(debug: bool, body: Callable[[], int]) -> None:
    """Runs a command body; user mistakes become one line on stderr and exit code 2."""
    logging.basicConfig(level=logging.INFO if os.environ.get("ALIGNKIT_VERBOSE") else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
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


def _progress(message: str) -> None:
    typer.echo(message, err=True)


def dispatch(command: Command, words: list[str], flags: dict[str, Any], config: Path | None,
             print_config: bool) -> int:
    cfg = resolve_config(command, words, flags, config)
    if print_config:
        typer.echo(config_to_yaml(cfg), nl=False)
        return 0
    result = command.run_function()(cfg, _progress)
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
        target.command(name, context_settings=EXTRA, help=command.help)(_typer_function(command))
    return app


GROUP_HELP = {"synth": "Synthetic data: self-instruct, grounded dialogs, distillation."}
build_app()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
