"""``dora-zenoh topic list|echo|hz|bw|info|pub``: ``ros2 topic`` for dora-zenoh dataflows.

Works on any running dataflow (started by ``run`` or by the coordinator) through its
Zenoh keys; every command is a passive observer (see :mod:`dora_zenoh.introspect.watch`).
"""
from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from dora_zenoh.cli.errors import CliError
from dora_zenoh.cli.format import table
from dora_zenoh.cli.options import CONTEXT, Duration, Rate, endpoint_option

dataflow_option = click.option("-d", "--dataflow", help="Only this dataflow (its name).")
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


@contextmanager
def observer(endpoint: str | None, dataflow: str | None = None, member: bool = False,
             names: tuple[str, ...] = ()) -> Iterator[Any]:
    """The sessions for watching (see ``Observer``); 'nothing runs there' and bad names become ``error: ...``.

    With ``dataflow``, a closed dataflow of the coordinator is reached on its own network
    (``client.join``; ``member``: with the credentials that may publish)."""
    from dora_zenoh.cli._common import closed_default
    from dora_zenoh.introspect.discovery import IntrospectError, Observer
    from dora_zenoh.security.ctl_client import join

    if dataflow is None:
        dataflow = closed_default(endpoint, names)
    try:
        session = Observer(join(endpoint, dataflow, member))
    except IntrospectError as exc:
        raise CliError(str(exc)) from None
    try:
        yield session
    except IntrospectError as exc:
        raise CliError(str(exc)) from None
    finally:
        session.close()


def quiet_interrupt() -> None:
    """Ctrl-C ends a watching command without a traceback."""
    def stop(*_: Any) -> None:
        raise KeyboardInterrupt
    signal.signal(signal.SIGINT, stop)


def _resolve_all(session: Any, names: tuple[str, ...], dataflow: str | None) -> list[Any]:
    from dora_zenoh.introspect.discovery import resolve, wait_snapshot

    snap = wait_snapshot(session.client, dataflow)
    return [resolve(snap, n, dataflow) for n in names]


@click.group(context_settings=CONTEXT)
def topic() -> None:
    """Watch and inject the outputs of running dataflows (like `ros2 topic`)."""


@topic.command("list", context_settings=CONTEXT)
@dataflow_option
@click.option("-v", "--verbose", is_flag=True, help="Also watch each topic for --window: rate, type, size.")
@click.option("--window", type=Duration(positive=True), default="1s", show_default=True, help="How long -v watches.")
@json_option
@endpoint_option
def list_(dataflow: str | None, verbose: bool, window: float, as_json: bool, endpoint: str | None) -> None:
    """Every output of every running dataflow (or one): key, publisher, subscribers, messages sent."""
    from dora_zenoh.introspect import decode
    from dora_zenoh.introspect.discovery import wait_snapshot
    from dora_zenoh.introspect.rate import Meter
    from dora_zenoh.introspect.watch import Watch, attachment_bytes

    with observer(endpoint, dataflow) as session:
        snap = wait_snapshot(session.client, dataflow)
        topics = snap.topics(dataflow)
        extra: dict[str, dict[str, Any]] = {t.key: {} for t in topics}
        if verbose and topics:
            meters = {t.key: Meter(window=window + 1) for t in topics}
            watch = Watch(session.peer, [t.key for t in topics])
            for sample in watch.samples(until=time.monotonic() + window):
                key = str(sample.key_expr)
                if key not in meters:
                    continue
                raw = attachment_bytes(sample)
                d = decode.parse_attachment(raw)
                meters[key].add(time.monotonic(), len(sample.payload), d.get("seq"))
                if "encoding" not in extra[key]:
                    dec = decode.decode(sample.payload.to_bytes(), str(sample.encoding), raw)
                    extra[key].update(encoding=dec.encoding, type=dec.arrow_type or dec.kind)
            watch.close()
            for key, meter in meters.items():
                rep = meter.report(time.monotonic())
                extra[key]["rate"] = round(rep.rate, 3) if rep else 0.0
    rows = [{"dataflow": t.dataflow, "topic": t.name, "key": t.key, "publisher": t.node, "sent": t.sent,
             "subscribers": [{"node": n, "input": i.id, "queue_size": i.queue_size, "policy": i.policy}
                             for n, i in t.subscribers], **extra[t.key]} for t in topics]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        where = f"dataflow '{dataflow}'" if dataflow else "any running dataflow"
        click.echo(f"no outputs in {where}")
        return
    headers = ["DATAFLOW", "TOPIC", "KEY", "SUBSCRIBERS", "SENT"]
    if verbose:
        headers += ["TYPE", "RATE"]
    out = []
    for r in rows:
        line = [r["dataflow"], r["topic"], r["key"],
                ", ".join(f"{s['node']}/{s['input']}" for s in r["subscribers"]) or "-", str(r["sent"])]
        if verbose:
            line += [r.get("type", "?"), f"{r.get('rate', 0.0):.1f}/s"]
        out.append(line)
    click.echo(table(headers, out))


@topic.command(context_settings=CONTEXT)
@click.argument("names", nargs=-1, required=True, metavar="NODE/OUTPUT|KEY...")
@dataflow_option
@click.option("--count", "-n", type=click.IntRange(min=1), help="Stop after N messages.")
@click.option("--once", "count", flag_value=1, help="Stop after one message (`ros2 topic echo --once`; -n 1).")
@click.option("--timeout", type=Duration(positive=True),
              help="Stop after this long (exit 1 if --count was not reached).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "raw"]), default="text", show_default=True,
              help="text: decoded with metadata; json: one object per line; raw: the payload bytes.")
@click.option("--no-arrays", is_flag=True, help="Show arrays as type and length only.")
@endpoint_option
def echo(names: tuple[str, ...], dataflow: str | None, count: int | None, timeout: float | None, fmt: str,
         no_arrays: bool, endpoint: str | None) -> None:
    """Print the messages of one or more outputs, decoded (a slow terminal skips messages, never slows the robot)."""
    from dora_zenoh.introspect import decode
    from dora_zenoh.introspect.watch import Watch, attachment_bytes

    quiet_interrupt()
    shown = 0
    with observer(endpoint, dataflow, names=names) as session:
        topics = _resolve_all(session, names, dataflow)
        watch = Watch(session.peer, [t.key for t in topics])
        until = time.monotonic() + timeout if timeout else None
        try:
            for sample in watch.samples(until=until):
                payload = sample.payload.to_bytes()
                if fmt == "raw":
                    sys.stdout.buffer.write(payload)
                    sys.stdout.buffer.flush()
                else:
                    d = decode.decode(payload, str(sample.encoding), attachment_bytes(sample), str(sample.key_expr))
                    click.echo(json.dumps(decode.to_json(d, no_arrays)) if fmt == "json"
                               else decode.to_text(d, no_arrays))
                shown += 1
                if count and shown >= count:
                    break
        except KeyboardInterrupt:
            pass
        finally:
            watch.close()
    if count and shown < count and timeout:
        raise CliError(f"only {shown} of {count} message(s) within {timeout:g} s")


class Window(Duration):
    """``-w``: a bare number is a count of messages, as in ``ros2 topic hz/bw`` (returned as an
    int); with a unit, a duration in seconds (a float)."""

    name = "window"

    def __init__(self) -> None:
        super().__init__(positive=True)

    def convert(self, value: Any, param: Any, ctx: Any) -> float | int:
        if isinstance(value, str) and value.strip().isdigit():
            if int(value) < 2:
                self.fail(f"'{value}' message(s): a rate needs 2 at least", param, ctx)
            return int(value)
        return super().convert(value, param, ctx)


def _meter(window: float | int) -> Any:
    """A window of the last N messages (an int) or of the last seconds (a float)."""
    from dora_zenoh.introspect.rate import Meter

    return Meter(window=float("inf"), max_samples=window) if isinstance(window, int) else Meter(window=window)


def _measure(names: tuple[str, ...], dataflow: str | None, window: float | int, duration: float | None,
             as_json: bool, endpoint: str | None, line: Any) -> None:
    from dora_zenoh.introspect import decode
    from dora_zenoh.introspect.watch import Watch, attachment_bytes

    quiet_interrupt()
    with observer(endpoint, dataflow, names=names) as session:
        topics = _resolve_all(session, names, dataflow)
        meters = {t.key: _meter(window) for t in topics}
        watch = Watch(session.peer, list(meters))
        start = time.monotonic()
        end = start + duration if duration else None
        next_print = start + 1.0
        try:
            for sample in watch.samples(until=end):
                now = time.monotonic()
                meter = meters.get(str(sample.key_expr))
                if meter is not None:
                    meter.add(now, len(sample.payload), decode.seq_of(attachment_bytes(sample)))
                if now >= next_print:
                    next_print = now + 1.0
                    _print_reports(meters, now, as_json, line, final=False)
        except KeyboardInterrupt:
            pass
        finally:
            watch.close()
        _print_reports(meters, time.monotonic(), as_json, line, final=True)


def _print_reports(meters: dict[str, Any], now: float, as_json: bool, line: Any, final: bool) -> None:
    for key, meter in meters.items():
        rep = meter.report(now)
        if as_json:
            if final:
                click.echo(json.dumps({"key": key, **(rep.as_dict() if rep else {"rate": 0.0, "seen": 0})}))
            continue
        if rep is None:
            if final:
                click.echo(f"{key}: no messages", err=False)
            continue
        click.echo((f"{key}: " if len(meters) > 1 else "") + line(rep))


_measure_options = [
    click.argument("names", nargs=-1, required=True, metavar="NODE/OUTPUT|KEY..."),
    dataflow_option,
    click.option("--window", "-w", type=Window(), default="10s", show_default=True,
                 help="Statistics over the last WINDOW: a number of messages (as `ros2 topic hz -w 100`), "
                      "or a duration with its unit (10s, 500ms)."),
    click.option("--duration", type=Duration(positive=True), help="Stop after this long and print the final figures."),
    click.option("--json", "as_json", is_flag=True, help="One JSON object per topic at the end."),
    endpoint_option,
]


def _with_measure_options(fn: Any) -> Any:
    for option in reversed(_measure_options):
        fn = option(fn)
    return fn


@topic.command(context_settings=CONTEXT)
@_with_measure_options
def hz(names: tuple[str, ...], dataflow: str | None, window: float, duration: float | None, as_json: bool,
       endpoint: str | None) -> None:
    """Publishing rate (and min/max/std of the period), counted from sequence numbers."""
    from dora_zenoh.introspect.rate import fmt_rate_line

    _measure(names, dataflow, window, duration, as_json, endpoint, fmt_rate_line)


@topic.command(context_settings=CONTEXT)
@_with_measure_options
def bw(names: tuple[str, ...], dataflow: str | None, window: float, duration: float | None, as_json: bool,
       endpoint: str | None) -> None:
    """Bandwidth (bytes/s) and mean message size."""
    from dora_zenoh.introspect.rate import fmt_bw_line

    _measure(names, dataflow, window, duration, as_json, endpoint, fmt_bw_line)


@topic.command(context_settings=CONTEXT)
@click.argument("name", metavar="NODE/OUTPUT|KEY")
@dataflow_option
@click.option("--wait", type=Duration(), default="1s", show_default=True,
              help="How long to wait for one message (for its encoding and type).")
@json_option
@endpoint_option
def info(name: str, dataflow: str | None, wait: float, as_json: bool, endpoint: str | None) -> None:
    """Publisher, subscribers (queue size, policy, received, dropped), encoding and type of one output."""
    from dora_zenoh.introspect import decode
    from dora_zenoh.introspect.watch import Watch, attachment_bytes

    with observer(endpoint, dataflow, names=(name,)) as session:
        (t,) = _resolve_all(session, (name,), dataflow)
        out: dict[str, Any] = {"dataflow": t.dataflow, "topic": t.name, "key": t.key,
                               "publisher": t.node or None, "sent": t.sent,
                               "subscribers": [{"node": n, **vars(i)} for n, i in t.subscribers],
                               "encoding": None, "type": None}
        watch = Watch(session.peer, [t.key])
        for sample in watch.samples(until=time.monotonic() + wait):
            d = decode.decode(sample.payload.to_bytes(), str(sample.encoding), attachment_bytes(sample))
            out.update(encoding=d.encoding, type=d.arrow_type or d.kind, size=d.size)
            break
        watch.close()
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    click.echo(f"Topic: {t.key}" + (f"  (dataflow {t.dataflow}, {t.name})" if t.dataflow else ""))
    click.echo(f"Type: {out['type'] or '? (no message within ' + format(wait, 'g') + ' s)'}"
               + (f"  encoding {out['encoding']}" if out["encoding"] else ""))
    click.echo(f"Publisher: {out['publisher'] or '?'}  ({out['sent']} message(s) sent)")
    click.echo(f"Subscription count: {len(out['subscribers'])}")
    for s in out["subscribers"]:
        click.echo(f"  {s['node']}/{s['id']}: queue_size {s['queue_size']}, {s['policy']}, "
                   f"received {s['received']}, dropped {s['dropped']}, queued {s['queued']}")


@topic.command(context_settings=CONTEXT)
@click.argument("name", metavar="NODE/OUTPUT|KEY")
@click.argument("value")
@dataflow_option
@click.option("--type", "arrow_type", help="Send VALUE (JSON scalar or list) as an Arrow array of this type "
              "(float64, int32, uint8, string, bool, ...).")
@click.option("--rate", "-r", type=Rate(), help="Messages per second.")
@click.option("--count", "-n", type=click.IntRange(min=1), default=1, show_default=True,
              help="How many messages to send.")
@click.option("--once", "-1", "count", flag_value=1, help="One message (`ros2 topic pub --once`; the default).")
@click.option("--param", "params", multiple=True, metavar="K=V", help="Metadata parameter (repeatable).")
@endpoint_option
def pub(name: str, value: str, dataflow: str | None, arrow_type: str | None, rate: float | None, count: int,
        params: tuple[str, ...], endpoint: str | None) -> None:
    """Inject VALUE on an output (JSON numbers/lists/objects as Arrow, other text as text)."""
    from dora_zenoh.introspect.watch import injected_attachment, parse_value, publisher

    try:
        payload, encoding = parse_value(value, arrow_type)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    meta: dict[str, Any] = {}
    for p in params:
        k, sep, v = p.partition("=")
        if not sep:
            raise CliError(f"--param '{p}': write KEY=VALUE")
        try:
            meta[k] = json.loads(v)
        except ValueError:
            meta[k] = v
    quiet_interrupt()
    with observer(endpoint, dataflow, member=True, names=(name,)) as session:
        (t,) = _resolve_all(session, (name,), dataflow)
        pub_ = publisher(session.peer, t.key, encoding)
        time.sleep(0.3)  # let the subscribers' interest reach us, or the first message has no route
        sent = 0
        try:
            while sent < count:
                pub_.put(payload, attachment=injected_attachment(meta))
                sent += 1
                if sent < count and rate:
                    time.sleep(1.0 / rate)
        except KeyboardInterrupt:
            pass
        time.sleep(0.1)
        pub_.undeclare()
    click.echo(f"published {sent} message(s) on {t.key}", err=True)


COMMANDS = [topic]
