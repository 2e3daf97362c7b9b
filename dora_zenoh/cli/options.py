"""What several commands share: click settings, option types and the descriptor loader."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from dora_zenoh import settings
from dora_zenoh.cli.errors import ProblemsError
from dora_zenoh.tuning.cpulatency import MAX_US
from dora_zenoh.units import MAX_SECONDS, parse_duration, parse_size

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class Duration(click.ParamType):
    """``10s``, ``500ms``, ``2m``, ``1h`` or plain seconds; ``positive``: more than 0."""

    name = "duration"

    def __init__(self, positive: bool = False) -> None:
        self.positive = positive

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        if isinstance(value, (int, float)):
            return float(value)
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        if self.positive and seconds <= 0:
            self.fail(f"'{value}' is no time at all: give more than 0, e.g. 500ms", param, ctx)
        return seconds


class Rate(click.ParamType):
    """Messages per second: more than 0, and not so few that the wait between two overflows (nor nan)."""

    name = "rate"

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        try:
            rate = float(value)
        except ValueError:
            self.fail(f"{value!r} is not a number of messages per second, e.g. 10 or 0.5", param, ctx)
        if not rate * MAX_SECONDS >= 1:  # nan, 0, negative, or one message in more than ~31 years
            self.fail(f"{value!r} must be a number of messages per second above 0, e.g. 10 or 0.5", param, ctx)
        return rate


class Endpoint(click.ParamType):
    """A Zenoh endpoint (``tcp/HOST:PORT``...): a bad one is a usage error naming the option."""

    name = "endpoint"

    def convert(self, value: Any, param: Any, ctx: Any) -> str:
        try:
            return settings.parse_endpoint(str(value))
        except ValueError as exc:
            self.fail(f"{value!r} {exc}", param, ctx)


class Size(click.ParamType):
    """``4096``, ``500kB``, ``16MiB``, ``1GB``: bytes."""

    name = "size"

    def convert(self, value: Any, param: Any, ctx: Any) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_size(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


cpu_latency_option = click.option(
    "--cpu-latency-us", type=click.IntRange(0, MAX_US), envvar=settings.CPU_LATENCY_US.name, show_envvar=True,
    help="While the dataflow runs, keep idle CPUs able to wake within this many µs (Linux PM QoS, "
         "/dev/cpu_dma_latency; 0: idle CPUs poll). Cuts message latency where waking an idle CPU is "
         "slow (virtual machines, deep C-states), at the cost of power. Needs write access to that file.")


def load_or_exit(path: Path) -> Any:
    """The validated descriptor; ProblemsError (every problem, exit 1) if it has any."""
    from dora_zenoh.descriptor import DescriptorError, load_descriptor

    try:
        desc = load_descriptor(path)
    except DescriptorError as exc:
        raise ProblemsError(str(exc)) from None
    return desc


secure_option = click.option(
    "--secure/--open", default=None, envvar=settings.SECURE.name, show_envvar=True,
    help="Closed dataflow: every Zenoh link needs credentials made for this run, handed to the processes it "
         "starts; anyone else can neither read, publish nor forge its stop/exit facts (docs/security.md). "
         "Default: the YAML's `secure:`, else open for `run` and closed for `start`.")


endpoint_option = click.option(
    "--endpoint", envvar=settings.ENDPOINT.name, show_envvar=True, type=Endpoint(),
    help="The Zenoh endpoint of the coordinator or of a `run` (its hub)  [default: tcp/127.0.0.1:7447].")
