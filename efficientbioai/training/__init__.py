"""The trainers behind ``efficientbioai train`` (one per family, registered by name) and
``train-denoiser``: each checks that the config is its family's, then writes the weights to a
new file with a JSON record of the command, the settings and the validation curve."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from efficientbioai.config import Config, load_config
from efficientbioai.errors import ConfigError
from efficientbioai.parsers.base import BaseParser, create_parser
from efficientbioai.parsers.checkpoint import training_output


class Start(NamedTuple):
    config: Config
    source: str  # the config file, for the record's command line
    parser: BaseParser
    output: Path


def start_training(
    config: Config | str | Path, output: str | Path | None, task: str, family: str, simulated: bool
) -> Start:
    """The config, its parser and the output file — or a :class:`ConfigError` before anything is
    written when the config is another family's (or lacks the ``simulation`` it trains on)."""
    cfg = config if isinstance(config, Config) else load_config(config)
    if simulated and cfg.simulation is None:
        raise ConfigError("training needs a 'simulation' section (the microscope to simulate)")
    parser = create_parser(cfg)
    if parser.task_name != task:
        raise ConfigError(
            f"model.parser {cfg.model.parser!r} is a {parser.task_name} model, not {family}; nothing was trained"
        )
    source = str(config) if not isinstance(config, Config) else "<config>.yaml"
    return Start(cfg, source, parser, training_output(cfg.model.checkpoint, output))


def train_command(source: str, output: Path, resume: bool = False) -> str:
    """The ``efficientbioai train`` command that reproduces a run, for its record."""
    return f"efficientbioai train --config {source}" + (" --resume" if resume else "") + f" --output {output}"
