"""``tomyum top``: a live view of a broker, refreshed once a second — throughput in and out
(bytes and records a second, per topic), requests a second per API, connections per listener,
and consumer groups with their lag.

Kafka clients cannot see request rates, so the rates come from the broker's own counters on its
metrics listener (``GET /metrics``, Prometheus' text format, ``metrics.listener``; see
``broker/metrics.py``), read twice and compared; ``--metrics`` names it, or the broker's own
``metrics.listener`` config says where it is. Groups and lag come over the Kafka protocol, as
``groups describe`` reads them (ListGroups, DescribeGroups, OffsetFetch, ListOffsets), so that
part works against any Kafka. ``--once`` prints one frame (rates over one interval) and exits.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated

import typer
from rich.console import Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from tomyum.cli.common import DEFAULT_BOOTSTRAP, DEFAULT_TIMEOUT, Admin, Bootstrap, CliError, CommandConfig, Timeout
from tomyum.cli.common import console
from tomyum.cli.groups import _committed, _lag, _name

Sample = dict[tuple[str, tuple[tuple[str, str], ...]], float]
METRICS_TIMEOUT_S = 5.0
MAX_ROWS = 12  # per table: the busiest first


@dataclass(frozen=True, slots=True)
class Scrape:
    at: float
    values: Sample

    def series(self, name: str) -> dict[str, float]:
        """The samples of ``name`` by their one label's value ('' for an unlabelled one)."""
        return {(labels[0][1] if labels else ""): v for (n, labels), v in self.values.items() if n == name}


def scrape(url: str) -> Scrape:
    """One read of ``url``; a failure is a CliError in words."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        with urllib.request.urlopen(url, timeout=METRICS_TIMEOUT_S) as response:  # noqa: S310 - the user's URL
            text = response.read().decode()
    except urllib.error.HTTPError as e:
        raise CliError(f"cannot read metrics from {url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        words = getattr(reason, "strerror", None) or str(reason)
        raise CliError(f"cannot read metrics from {url}: {words.lower()}") from None
    values: Sample = {}
    try:
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                values[(s.name, tuple(sorted(s.labels.items())))] = s.value
    except ValueError as e:
        raise CliError(f"{url} does not answer Prometheus' text format: {e}") from None
    return Scrape(time.monotonic(), values)


def metrics_url(admin: Admin, given: str | None) -> str | None:
    """``given`` (HOST:PORT or a URL), or where the broker's ``metrics.listener`` says it
    listens; None when it has none (or a port chosen at start, which only its log names)."""
    if given:
        url = given if "://" in given else f"http://{given}"
        return url if url.rstrip("/").endswith("/metrics") else url.rstrip("/") + "/metrics"
    from confluent_kafka.admin import ConfigResource, ResourceType

    brokers = admin.metadata().brokers
    if not brokers:
        return None
    resource = ConfigResource(ResourceType.BROKER, str(min(brokers)))
    future = admin.client.describe_configs([resource], request_timeout=admin.timeout)[resource]
    entry = admin.wait(future, "cannot read the broker's configs").get("metrics.listener")
    value = (entry.value or "") if entry is not None else ""  # Apache Kafka has no such key
    address = value.removeprefix("http://").rstrip("/")
    if not address or address.endswith(":0"):
        return None
    host, _, port = address.rpartition(":")
    if host in ("", "0.0.0.0", "::", "[::]"):
        host = admin.bootstrap.rpartition(":")[0] or "localhost"
    return f"http://{host}:{port}/metrics"


@dataclass(frozen=True, slots=True)
class GroupRow:
    group: str
    state: str
    protocol: str
    members: int
    lag: int | None


def group_rows(admin: Admin) -> list[GroupRow]:
    listing = admin.wait(admin.client.list_consumer_groups(request_timeout=admin.timeout), "cannot list groups")
    ids = sorted(g.group_id for g in listing.valid)
    if not ids:
        return []
    futures = admin.client.describe_consumer_groups(ids, request_timeout=admin.timeout)
    descriptions = {g: admin.wait(futures[g], f"cannot describe group {g!r}") for g in ids}
    committed = {g: _committed(admin, g) for g in ids}
    high = {k: marks[1] for k, marks in admin.watermarks({k for c in committed.values() for k in c}).items()}
    rows = []
    for g in ids:
        lags = [_lag(offset, high.get(k)) for k, offset in committed[g].items()]
        known = [lag for lag in lags if lag is not None]
        d = descriptions[g]
        rows.append(GroupRow(g, _name(d.state), _name(d.type), len(d.members), sum(known) if known else None))
    return sorted(rows, key=lambda r: (-(r.lag or 0), r.group))


def rates(before: Scrape, after: Scrape, name: str) -> dict[str, float]:
    """Per label, the counter ``name``'s increase a second between two scrapes."""
    seconds = max(after.at - before.at, 1e-6)
    old = before.series(name)
    return {k: max(v - old.get(k, 0.0), 0.0) / seconds for k, v in after.series(name).items()}


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def _table(*headers: str) -> Table:
    table = Table(box=None, show_edge=False, pad_edge=False, header_style="bold", padding=(0, 2, 0, 0))
    for i, header in enumerate(headers):
        table.add_column(header, justify="left" if i == 0 else "right", overflow="fold")
    return table


def _busiest(values: dict[str, float], limit: int = MAX_ROWS) -> list[tuple[str, float]]:
    return sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]


def frame(bootstrap: str, url: str | None, before: Scrape | None, after: Scrape | None,
          groups: Iterable[GroupRow], interval: float) -> RenderableType:
    """One screen: the header line, throughput, requests, connections, groups."""
    parts: list[RenderableType] = []
    head = Text.assemble(("tomyum top", "bold"), f" · {bootstrap}")
    if after is not None:
        uptime = int(after.series("tomyum_uptime_seconds").get("", 0))
        head.append(f" · up {uptime // 3600}h{uptime // 60 % 60:02d}m{uptime % 60:02d}s · every {interval:g}s")
    parts.append(head)
    if url is not None and (before is None or after is None):
        parts.append(Text("measuring…", style="dim"))
    elif before is None or after is None:
        parts.append(Text("no metrics listener: throughput and requests need the broker's metrics.listener "
                          "(--set metrics.listener=127.0.0.1:9644, then --metrics 127.0.0.1:9644)", style="yellow"))
    else:
        bytes_in = rates(before, after, "tomyum_topic_bytes_in_total")
        records_in = rates(before, after, "tomyum_topic_records_in_total")
        bytes_out = rates(before, after, "tomyum_topic_bytes_out_total")
        connections = after.series("tomyum_connections")
        parts.append(Text(f"in {human_bytes(sum(bytes_in.values()))}/s, {sum(records_in.values()):.0f} records/s"
                          f" · out {human_bytes(sum(bytes_out.values()))}/s · connections "
                          f"{sum(connections.values()):.0f} ("
                          + ", ".join(f"{k} {v:.0f}" for k, v in sorted(connections.items())) + ")", style="bold"))
        topics = _table("TOPIC", "IN/S", "RECORDS/S", "OUT/S")
        busy = {t: bytes_in.get(t, 0.0) + bytes_out.get(t, 0.0) for t in set(bytes_in) | set(bytes_out)}
        for topic, _ in _busiest(busy):
            topics.add_row(topic, human_bytes(bytes_in.get(topic, 0.0)), f"{records_in.get(topic, 0.0):.0f}",
                           human_bytes(bytes_out.get(topic, 0.0)))
        requests = _table("REQUEST", "PER SECOND", "TOTAL")
        totals = after.series("tomyum_requests_total")
        for request, rate in _busiest(rates(before, after, "tomyum_requests_total")):
            requests.add_row(request, f"{rate:.1f}", f"{totals.get(request, 0):.0f}")
        parts += [Text(""), topics if topics.row_count else Text("no topic traffic"), Text(""), requests]
    table = _table("GROUP", "STATE", "TYPE", "MEMBERS", "LAG")
    rows = list(groups)
    for g in rows[:MAX_ROWS]:
        table.add_row(g.group, g.state, g.protocol, str(g.members), "-" if g.lag is None else str(g.lag))
    parts += [Text(""), table if table.row_count else Text("no consumer groups")]
    if len(rows) > MAX_ROWS:
        parts.append(Text(f"and {len(rows) - MAX_ROWS} more groups with less lag"))
    return Group(*parts)


def top(
    metrics: Annotated[str | None, typer.Option(
        "--metrics", metavar="HOST:PORT", help="the broker's metrics listener (default: its metrics.listener)")]
    = None,
    interval: Annotated[float, typer.Option("--interval", min=0.2, help="seconds between refreshes")] = 1.0,
    once: Annotated[bool, typer.Option("--once", help="print one frame (rates over one interval) and exit")]
    = False,
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
    timeout: Timeout = DEFAULT_TIMEOUT,
    command_config: CommandConfig = None,
) -> None:
    """A live view of a broker: throughput, requests per API, connections, groups and lag."""
    admin = Admin(bootstrap, timeout, command_config)
    url = metrics_url(admin, metrics)
    before = scrape(url) if url else None
    if once:
        time.sleep(interval)  # the interval the rates are measured over
        console().print(frame(bootstrap, url, before, scrape(url) if url else None, group_rows(admin), interval))
        return
    out = console()
    try:
        with Live(frame(bootstrap, url, None, None, [], interval), console=out, auto_refresh=False,
                  screen=False, transient=False) as live:
            while True:
                time.sleep(interval)
                try:
                    after = scrape(url) if url else None
                    live.update(frame(bootstrap, url, before, after, group_rows(admin), interval), refresh=True)
                except CliError as e:  # the broker went away, say: say so, and keep looking
                    after = None
                    live.update(Text(f"{e} (looking again every {interval:g}s; Ctrl-C to stop)", style="red"),
                                refresh=True)
                before = after
    except KeyboardInterrupt:
        return
