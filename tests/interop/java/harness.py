"""Run the Java programs of ``src/`` (compiled once per session) and read what they print.

Every program prints one JSON object per line on stdout; the clients' own logging goes to
stderr (warnings and errors only), kept in a file beside the test's other output. Every
subprocess runs under a timeout and is killed when its test ends.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

from tomyum.testing.kafka_peer import fetch_jars

JAVA_DIR = Path(__file__).resolve().parent
POM = JAVA_DIR / "pom.xml"
SOURCES = JAVA_DIR / "src"
JVM_FLAGS = ["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
             "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-Dorg.slf4j.simpleLogger.logFile=System.err"]

Event = dict[str, Any]


def build(classes: Path, timeout: float = 180.0) -> str:
    """Fetch kafka-clients and kafka-streams (first time; cached by the pom's digest), compile
    ``src/*.java`` into ``classes``; return the class path."""
    libs = fetch_jars(pom=POM, timeout=600.0)
    javac = shutil.which("javac")
    if javac is None:
        raise RuntimeError("a JDK (javac) is needed for the Java client tests")
    classpath = f"{classes}:{libs}/*"
    done = subprocess.run(
        [javac, "-Xlint:all", "-Werror", "-d", str(classes), "-cp", classpath, *map(str, sorted(SOURCES.glob("*.java")))],
        capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        raise RuntimeError(f"javac exited with {done.returncode}:\n{done.stdout}{done.stderr}")
    return classpath


def parse(lines: str) -> list[Event]:
    return [json.loads(line) for line in lines.splitlines() if line.startswith("{")]


class Java:
    """The compiled programs: ``run`` one to its end, or ``start`` one that runs until closed."""

    def __init__(self, classpath: str, log_dir: Path) -> None:
        self.classpath = classpath
        self.log_dir = log_dir
        self._count = 0

    def command(self, main: str, *args: object) -> list[str]:
        java = shutil.which("java")
        assert java is not None, "java is needed for the Java client tests"
        return [java, *JVM_FLAGS, "-cp", self.classpath, main, *map(str, args)]

    def _stderr(self, main: str) -> Path:
        self._count += 1
        return self.log_dir / f"{self._count:02d}-{main}.stderr"

    def run(self, main: str, *args: object, timeout: float = 90.0) -> list[Event]:
        """Run ``main`` to its end; its events, or an AssertionError that shows its stderr."""
        stderr = self._stderr(main)
        with open(stderr, "w") as err:
            done = subprocess.run(self.command(main, *args), stdout=subprocess.PIPE, stderr=err, text=True,
                                  timeout=timeout, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, f"{main} exited with {done.returncode}:\n{stderr.read_text()[-4000:]}"
        return parse(done.stdout)

    def start(self, main: str, *args: object) -> JavaProcess:
        return JavaProcess(self.command(main, *args), self._stderr(main))


class JavaProcess:
    """A Java program running beside the test: its events collected as they come, stdin
    held open (its end, or the line "close", asks the program to stop)."""

    def __init__(self, command: list[str], stderr: Path) -> None:
        self.stderr_path = stderr
        self._err = open(stderr, "w")
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._err,
                                     text=True, bufsize=1)
        self.events: list[Event] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                event = json.loads(line)
                with self._lock:
                    self.events.append(event)

    def snapshot(self) -> list[Event]:
        with self._lock:
            return list(self.events)

    def stderr(self) -> str:
        self._err.flush()
        return self.stderr_path.read_text(errors="replace")[-4000:]

    def close(self, timeout: float = 30.0) -> int:
        """Ask the program to stop (stdin's end) and wait; SIGKILL if it takes longer."""
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            try:
                self.proc.stdin.write("close\n")
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"did not stop within {timeout}s:\n{self.stderr()}") from None
        self._finish()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, no leaving the group, no aborting the transaction."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self._finish()

    def _finish(self) -> None:
        self._reader.join(timeout=5)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None and not stream.closed:
                try:
                    stream.close()
                except BrokenPipeError:
                    pass
        self._err.close()
