"""``tomyum start | stop | status``: a broker in the background, found through files in its
data dir.

- ``tomyum.pid``: the broker's process id; created exclusively, so two ``start``s cannot both run
  a broker on one data dir. A pid file whose process is gone (or is not a tomyum broker) is
  stale: ``start`` and ``stop`` remove it, ``status`` reports it.
- ``tomyum.log``: the broker's stdout and stderr, appended to across starts.
- ``tomyum.state.json``: written once the broker accepts connections: pid, address, version
  and start time, for ``status``.

``status`` exits 0 when the broker runs and answers, 1 when it runs but does not answer, and 3
when it is not running (the LSB convention for init scripts).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated

import typer

from tomyum.cli.common import CliError, client_config, console, metadata, os_error, say
from tomyum.cli.parsing import format_bytes, format_duration
from tomyum.testing.broker import wait_until

PID_FILE = "tomyum.pid"
LOG_FILE = "tomyum.log"
STATE_FILE = "tomyum.state.json"
NOT_RUNNING = 3
READY = re.compile(r"tomyum (?P<version>\S+) accepting connections on \w+://(?P<host>[^\s,]*):(?P<port>\d+)")
REBALANCE_DELAY = "group.initial.rebalance.delay.ms"
DEFAULT_ADDRESS = "127.0.0.1:9092"  # where `tomyum start` and `make serve` listen
LOCAL_HOSTS = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "[::]": "[::1]"}

DataDir = Annotated[Path, typer.Option("--data-dir", help="the broker's data dir, where its pid and log files are")]
Wait = Annotated[float, typer.Option("--timeout", min=0.1, metavar="SECONDS", help="how long to wait")]


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokerState:
    """What ``start`` learnt from the broker's ready line."""

    pid: int
    address: str
    version: str
    started_at: float
    log_file: str


def start(
    listen: Annotated[str | None, typer.Option("--listen", metavar="HOST:PORT",
                                               help="where to accept connections [default: 127.0.0.1:9092]",
                                               show_default=False)] = None,
    data_dir: DataDir = Path("data"),
    config_file: Annotated[Path | None, typer.Option("--config", help="a server.properties file")] = None,
    settings: Annotated[list[str], typer.Option("--set", metavar="KEY=VALUE",
                                                help="a Kafka broker config (repeatable)")] = [],  # noqa: B006
    advertised: Annotated[str | None, typer.Option("--advertised", metavar="HOST:PORT",
                                                   help="where clients are told to connect")] = None,
    create_topics: Annotated[list[str], typer.Option("--create-topic", metavar="NAME:PARTITIONS[:RF]",
                                                     help="a topic to create at start if missing (repeatable)")]
    = [],  # noqa: B006
    log_level: Annotated[str, typer.Option("--log-level", metavar="LEVEL",
                                           help="the broker log's level: DEBUG, INFO, WARNING, ERROR")] = "INFO",
    timeout: Wait = 30.0,
    secure_dev: Annotated[bool, typer.Option("--secure-dev", help="TLS, SCRAM and ACLs for development "
                                             "(see 'tomyum serve --help')")] = False,
) -> None:
    """Start a broker in the background (pid and log files in its data dir).

    As `make serve` does, and Kafka's config/server.properties for development, it sets
    group.initial.rebalance.delay.ms=0 (a new group forms at once) unless --set or --config
    says otherwise."""
    data_dir = data_dir.resolve()
    created = not data_dir.exists()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CliError(os_error(e, f"cannot use data dir {data_dir}")) from None
    if not data_dir.is_dir():
        raise CliError(f"cannot use data dir {data_dir}: it is not a directory")
    stale = _claim_pid_file(data_dir)
    log_path = data_dir / LOG_FILE
    command = [sys.executable, "-m", "tomyum", "serve", "--data-dir", str(data_dir)]
    command += ["--listen", listen] if listen else []
    command += ["--config", str(config_file.resolve())] if config_file else []
    command += ["--advertised", advertised] if advertised else []
    command += ["--log-level", log_level]
    command += ["--secure-dev"] if secure_dev else []
    for spec in create_topics:
        command += ["--create-topic", spec]
    if not _mentions(REBALANCE_DELAY, settings, config_file):
        command += ["--set", f"{REBALANCE_DELAY}=0"]
    for setting in settings:
        command += ["--set", setting]
    proc: subprocess.Popen[bytes] | None = None
    try:
        with open(log_path, "ab") as log:
            log_offset = log.tell()
            proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
        (data_dir / PID_FILE).write_text(f"{proc.pid}\n")
        ready = _wait_ready(proc, log_path, log_offset, timeout, keep_log=not created)
    except BaseException:  # a broker that failed, hung or was interrupted in its start leaves nothing behind
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)
        _remove(data_dir)
        if created:  # not even the data dir it made for the broker
            shutil.rmtree(data_dir, ignore_errors=True)
        raise
    host = LOCAL_HOSTS.get(ready["host"], ready["host"])
    state = BrokerState(pid=proc.pid, address=f"{host}:{ready['port']}", version=ready["version"],
                        started_at=time.time(), log_file=str(log_path))
    (data_dir / STATE_FILE).write_text(json.dumps(asdict(state)) + "\n")
    if stale:
        say(f"removed a stale pid file (pid {stale})")
    say(f"tomyum {state.version} started (pid {state.pid}), accepting connections on {state.address}; "
        f"data in {data_dir}, log in {log_path}")
    if secure_dev:
        _say_secure_dev(log_path, log_offset)


def _say_secure_dev(log_path: Path, log_offset: int) -> None:
    """The lines of a --secure-dev start a user needs: the admin password (first start only)
    and the SASL_SSL address."""
    with open(log_path, "rb") as log:
        log.seek(log_offset)
        lines = log.read().decode(errors="replace").splitlines()
    for line in lines:
        if line.startswith("created the super user"):
            say(line)
        elif "accepting connections on" in line and (secure := re.search(r"SASL_SSL://(\S+?),? ", line)):
            say(f"SASL_SSL (SCRAM) on {secure[1]}: tomyum topics list --bootstrap {secure[1]} "
                f"--command-config {log_path.parent / 'client.properties'}")


def stop(
    data_dir: DataDir = Path("data"),
    timeout: Wait = 30.0,
    force: Annotated[bool, typer.Option("--force", help="SIGKILL the broker if it has not stopped in time")]
    = False,
) -> None:
    """Stop the background broker gracefully (SIGTERM), waiting until it has exited."""
    data_dir = data_dir.resolve()
    pid = _read_pid(data_dir)
    if pid is None:
        raise CliError(f"no tomyum broker is running from {data_dir}")
    if not _is_broker(pid):
        _remove(data_dir)
        raise CliError(f"no tomyum broker is running from {data_dir} (removed a stale pid file for pid {pid})")
    began = time.monotonic()
    os.kill(pid, signal.SIGTERM)
    try:
        wait_until(lambda: not _is_alive(pid), timeout, interval=0.05, what=f"pid {pid} to exit")
    except TimeoutError:
        if not force:
            raise CliError(f"the broker (pid {pid}) did not stop within {timeout:g}s; "
                           "it is still running (--force kills it)") from None
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not _is_alive(pid), 10, interval=0.05, what=f"pid {pid} to be killed")
        _remove(data_dir)
        say(f"killed the broker (pid {pid}) after {timeout:g}s")
        return
    _remove(data_dir)
    say(f"stopped the broker (pid {pid}) in {time.monotonic() - began:.1f}s")


def status(
    data_dir: DataDir = Path("data"),
    timeout: Annotated[float, typer.Option("--timeout", min=0.1, metavar="SECONDS",
                                           help="how long to wait for the broker to answer")] = 5.0,
) -> None:
    """Whether the background broker runs; its address, version, uptime, topics and disk use."""
    data_dir = data_dir.resolve()
    pid = _read_pid(data_dir)
    if pid is None or not _is_broker(pid):
        stale = f" (a stale pid file names pid {pid}; start or stop removes it)" if pid is not None else ""
        elsewhere = "" if stale or not _answers(DEFAULT_ADDRESS) else \
            f"; a broker answers on {DEFAULT_ADDRESS} (started from another directory? --data-dir names it)"
        say(f"tomyum is not running from {data_dir}{stale}{elsewhere}")
        raise typer.Exit(NOT_RUNNING)
    state = _read_state(data_dir, pid)
    if state is None:
        raise CliError(f"starting (pid {pid}): not yet accepting connections", 1)
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(client_config(state.address, timeout))
    try:
        cluster = metadata(admin, state.address, timeout)
    except CliError as e:
        raise CliError(f"running (pid {pid}) but not answering: {e}") from None
    topics = sorted(t for t in cluster.topics if not t.startswith("__"))
    shown = ", ".join(topics[:10]) + (f", ... ({len(topics) - 10} more)" if len(topics) > 10 else "")
    out = console()
    out.print(f"tomyum {state.version} is running (pid {pid})", markup=False)
    for name, value in [("address", state.address), ("uptime", format_duration(time.time() - state.started_at)),
                        ("cluster", cluster.cluster_id), ("topics", f"{len(topics)}" + (f": {shown}" if topics else "")),
                        ("data dir", f"{data_dir} ({format_bytes(_disk_use(data_dir))})"), ("log", state.log_file)]:
        out.print(f"  {name:<9} {value}", markup=False)


def _mentions(key: str, settings: list[str], config_file: Path | None) -> bool:
    """Whether the user set ``key`` with --set or in the --config file."""
    if any(s.partition("=")[0].strip() == key for s in settings):
        return True
    try:
        return config_file is not None and re.search(rf"^\s*{re.escape(key)}\s*[=:]", config_file.read_text(),
                                                     flags=re.M) is not None
    except OSError:
        return False


def _answers(address: str) -> bool:
    """Whether something accepts connections on ``address`` (a quick look, not a Kafka request)."""
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=0.5).close()
    except OSError:
        return False
    return True


def _claim_pid_file(data_dir: Path) -> int | None:
    """Creates the pid file exclusively; returns the pid of a stale one it replaced, if any."""
    path = data_dir / PID_FILE
    stale = None
    for _ in range(2):
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            return stale
        except FileExistsError:
            pid = _read_pid(data_dir)
            if pid is None:
                raise CliError(f"another tomyum start is under way in {data_dir}") from None
            if _is_broker(pid):
                state = _read_state(data_dir, pid)
                where = f" on {state.address}" if state else ""
                raise CliError(f"a broker is already running from {data_dir} (pid {pid}{where})") from None
            stale = pid
            _remove(data_dir)
    raise CliError(f"cannot claim {path}")


def _wait_ready(proc: subprocess.Popen[bytes], log_path: Path, offset: int, timeout: float,
                keep_log: bool) -> re.Match[str]:
    where = f" (log: {log_path})" if keep_log else ""

    def ready() -> re.Match[str] | None:
        output = _read_from(log_path, offset)
        if proc.poll() is not None:
            lines = [line for line in output.splitlines() if line.strip()]
            errors = [line for line in lines if line.startswith("error:")]
            reason = (errors or lines or [f"exit code {proc.returncode}"])[-1].removeprefix("error: ")
            raise CliError(f"the broker did not start: {reason}{where}")
        return READY.search(output)

    try:
        return wait_until(ready, timeout, interval=0.05, what="the broker to accept connections")
    except TimeoutError:
        raise CliError(f"the broker did not accept connections within {timeout:g}s and was killed{where}") from None


def _read_from(path: Path, offset: int) -> str:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


def _read_pid(data_dir: Path) -> int | None:
    try:
        text = (data_dir / PID_FILE).read_text().strip()
    except OSError:  # none, or the data dir is not a directory
        return None
    return int(text) if text.isdigit() else None


def _read_state(data_dir: Path, pid: int) -> BrokerState | None:
    try:
        state = BrokerState(**json.loads((data_dir / STATE_FILE).read_text()))
    except (FileNotFoundError, ValueError, TypeError):
        return None
    return state if state.pid == pid else None


def _remove(data_dir: Path) -> None:
    for name in (PID_FILE, STATE_FILE):
        (data_dir / name).unlink(missing_ok=True)


def _is_alive(pid: int) -> bool:
    """Whether ``pid`` runs: a zombie (exited, not yet reaped by its new parent) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): the signal check is all there is
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def _is_broker(pid: int) -> bool:
    """Whether ``pid`` is a running tomyum broker, not another process that reused the id."""
    if not _is_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True
    return b"serve" in cmdline and any(b"tomyum" in arg for arg in cmdline)


def _disk_use(directory: Path) -> int:
    """Bytes allocated to the files under ``directory``, as ``du`` counts them."""
    total = 0
    for root, _dirs, files in os.walk(directory):
        for name in files:
            try:
                st = os.stat(os.path.join(root, name))
            except OSError:
                continue  # removed while we walked (a segment deleted by retention)
            total += getattr(st, "st_blocks", 0) * 512 or st.st_size
    return total
