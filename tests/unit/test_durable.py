"""The durable-write primitives: a file is replaced whole, its bytes on disk before its name."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import tomyum.durable as durable
from tomyum.durable import write_files_atomically


def test_many_files_are_each_fsynced_before_any_is_renamed_and_no_temporary_is_left(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append("fsync")
        real_fsync(fd)

    def replace(src: Any, dst: Any) -> None:
        events.append("rename")
        real_replace(src, dst)

    monkeypatch.setattr(durable.os, "fsync", fsync)
    monkeypatch.setattr(durable.os, "replace", replace)
    dirs = [tmp_path / "a", tmp_path / "b"]
    for d in dirs:
        d.mkdir()
    files = [(dirs[i % 2] / f"f{i}", f"data {i}".encode()) for i in range(40)]
    (dirs[0] / "f0").write_bytes(b"old")
    write_files_atomically(files)
    assert [p.read_bytes() for p, _ in files] == [data for _, data in files]
    assert sorted(p.name for d in dirs for p in d.iterdir()) == sorted(p.name for p, _ in files)
    # 40 file fsyncs, then 40 renames, then one fsync of each directory
    assert events == ["fsync"] * 40 + ["rename"] * 40 + ["fsync"] * 2


def test_when_one_file_cannot_be_written_no_file_is_replaced(tmp_path: Path) -> None:
    kept = tmp_path / "kept"
    kept.write_bytes(b"old")
    with pytest.raises(OSError):
        write_files_atomically([(kept, b"new"), (tmp_path / "missing-dir" / "f", b"x")])
    assert kept.read_bytes() == b"old"
