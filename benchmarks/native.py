"""librdkafka's own C load generator, ``rdkafka_performance``, as the benchmarks' client when
a Python client would set the pace instead of the broker.

Its source is an example program of librdkafka's source tree, and it includes headers internal
to that tree (``rd.h``, ``rdtime.h`` and the ``config.h`` that ``configure`` writes), so it is
not built from a ``-dev`` package's headers alone. ``tool()`` fetches Debian's source tarball of
librdkafka (``SOURCE``, its SHA-256 pinned), runs ``configure`` for ``config.h``, and compiles only
``examples/rdkafka_performance.c``, linked against the librdkafka that the confluent-kafka wheel
bundles: the library the Python clients use, and one that speaks every broker here (Debian
bookworm's librdkafka 2.0.2 misreads Tansu's ApiVersions answer). Needs gcc. The binary is kept
in ``build/rdkafka_performance/`` and built once (~5 s).

``produce`` and ``consume`` run one instance and return what it measured: the seconds between
its first record and its last delivery report (produce) or from its first record to its last
(consume), and the client's CPU seconds.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import threading
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import confluent_kafka
import psutil

#: Debian's upstream tarball of librdkafka (trixie's 2.8.0-1) and its SHA-256 (from its .dsc)
SOURCE = "https://deb.debian.org/debian/pool/main/libr/librdkafka/librdkafka_2.8.0.orig.tar.gz"
SOURCE_SHA256 = "5bd1c46f63265f31c6bfcedcde78703f77d28238eadf23821c2b43fc30be3e25"
BUILD = Path(__file__).resolve().parent.parent / "build" / "rdkafka_performance"


class Unavailable(RuntimeError):
    """rdkafka_performance cannot be built here (the reason is the message)."""


def bundled_library() -> Path:
    """The librdkafka shared library inside the installed confluent-kafka wheel."""
    libs = Path(confluent_kafka.__file__).resolve().parent.parent / "confluent_kafka.libs"
    found = sorted(libs.glob("librdkafka*.so*"))
    if not found:
        raise Unavailable(f"no librdkafka in {libs} (confluent-kafka not installed from its wheel)")
    return found[0]


def version() -> str:
    """The librdkafka version the tool runs with."""
    return str(confluent_kafka.libversion()[0])


#: one build at a time, however many runs start at once (at_once)
_building = threading.Lock()


def tool() -> Path:
    """The path of ``rdkafka_performance``, built on first use."""
    library = bundled_library()
    binary = BUILD / f"{version()}-{library.name}" / "rdkafka_performance"
    with _building:
        if not binary.exists():
            _build(library, binary)
    return binary


def _build(library: Path, binary: Path) -> None:
    if shutil.which("gcc") is None:
        raise Unavailable("needs gcc")
    with urllib.request.urlopen(SOURCE, timeout=120) as r:
        data = bytes(r.read())
    if hashlib.sha256(data).hexdigest() != SOURCE_SHA256:
        raise Unavailable(f"{SOURCE} does not match its pinned SHA-256")
    with tempfile.TemporaryDirectory() as d:
        archive = Path(d) / "librdkafka.tar.gz"
        archive.write_bytes(data)
        with tarfile.open(archive) as tar:
            tar.extractall(d, filter="data")
        tree = next(p for p in Path(d).iterdir() if p.is_dir())
        subprocess.run(["./configure", "--disable-ssl", "--disable-gssapi", "--disable-zstd", "--disable-lz4-ext"],
                       cwd=tree, check=True, capture_output=True, timeout=300)
        binary.parent.mkdir(parents=True, exist_ok=True)
        built = binary.with_suffix(".tmp")
        subprocess.run(["gcc", "-O2", "-Isrc", "-I.", "examples/rdkafka_performance.c", "-o", str(built),
                        str(library), f"-Wl,-rpath,{library.parent}", "-lm", "-lpthread"],
                       cwd=tree, check=True, capture_output=True, timeout=300)
        built.rename(binary)


def client_or_python(client: str) -> str:
    """``client`` (``native`` or ``python``), or ``python`` when the native tool cannot be built
    here (it says why)."""
    if client == "native":
        try:
            print(f"load generator: {tool()}", flush=True)
        except (Unavailable, OSError, subprocess.CalledProcessError) as e:
            print(f"rdkafka_performance cannot be built ({e}): the Python client generates the load", flush=True)
            return "python"
    return client


@dataclass
class Run:
    records: int
    seconds: float
    client_cpu: float


#: the summary line's count and milliseconds: "% 500000 messages produced (...) ... in 154ms:"
#: and "% 500000 messages (50000000 bytes) consumed in 110ms:"
_PRODUCED = re.compile(r"% (\d+) messages produced .*?(\d+) delivered .*?\((?:offset -?\d+, )?(\d+) failed\) "
                       r"in (\d+)ms")
_CONSUMED = re.compile(r"% (\d+) messages \(\d+ bytes\) consumed in (\d+)ms")


def _run(args: list[str], timeout: float) -> str:
    """Run ``args`` to its end; its output. Raises when it fails or overruns. Its CPU time is in
    this process's children's times once it has been waited for (``_children_cpu``)."""
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
            raise
        finally:
            out.seek(0)
            text = out.read().decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{args[0]} exited with {proc.returncode}:\n{text[-2000:]}")
    return text


def _seconds(ms: str) -> float:
    """The tool's whole milliseconds as seconds; a run it measured as 0 ms counts as 1 ms (a
    lower bound for the rate, and never a division by zero)."""
    return max(int(ms), 1) / 1000


def _children_cpu() -> float:
    ru = os.times()
    return ru.children_user + ru.children_system


def produce(bootstrap: str, topic: str, value_bytes: int, count: int, *, partition: int | None = None,
            acks: str = "all", conf: dict[str, str] | None = None, timeout: float = 300) -> Run:
    """One rdkafka_performance producer sends ``count`` values of ``value_bytes`` to ``topic``
    (to ``partition``, else spread by librdkafka's partitioner); ``conf``: librdkafka settings."""
    args = [str(tool()), "-P", "-q", "-t", topic, "-b", bootstrap, "-s", str(value_bytes), "-c", str(count),
            "-a", "-1" if acks == "all" else acks]
    if partition is not None:
        args += ["-p", str(partition)]
    for key, value in {"enable.idempotence": "false", **(conf or {})}.items():
        args += ["-X", f"{key}={value}"]
    c0 = _children_cpu()
    text = _run(args, timeout)
    m = _PRODUCED.search(text)
    if m is None or int(m[2]) != count or int(m[3]) != 0:
        raise RuntimeError(f"rdkafka_performance did not deliver {count} records:\n{text[-2000:]}")
    return Run(count, _seconds(m[4]), _children_cpu() - c0)


def consume(bootstrap: str, topic: str, partitions: int, count: int, *, conf: dict[str, str] | None = None,
            timeout: float = 300) -> Run:
    """One rdkafka_performance consumer (no group) reads ``count`` records of ``topic``'s
    ``partitions`` from the start."""
    # its callback mode: the batch mode (-B) reads several partitions at a third of the rate
    args = [str(tool()), "-C", "-q", "-t", topic, "-b", bootstrap, "-c", str(count), "-o", "beginning"]
    for p in range(partitions):
        args += ["-p", str(p)]
    for key, value in (conf or {}).items():
        args += ["-X", f"{key}={value}"]
    c0 = _children_cpu()
    text = _run(args, timeout)
    m = _CONSUMED.search(text)
    if m is None or int(m[1]) != count:
        raise RuntimeError(f"rdkafka_performance did not read {count} records:\n{text[-2000:]}")
    return Run(count, _seconds(m[2]), _children_cpu() - c0)


def at_once(counts: list[int], run: Callable[[int], Run], pid: int) -> tuple[float, float, float]:
    """``run(count)`` for each of ``counts``, all at once (one instance each); (the longest one's
    measured seconds, their CPU s summed, the CPU s of the broker process ``pid`` meanwhile)."""
    broker = psutil.Process(pid)
    b0 = sum(broker.cpu_times()[:2])
    with ThreadPoolExecutor(len(counts)) as pool:
        runs = list(pool.map(run, counts))
    return max(r.seconds for r in runs), sum(r.client_cpu for r in runs), sum(broker.cpu_times()[:2]) - b0


if __name__ == "__main__":
    print(tool())
