"""A data dir has one owner at a time and one identity: meta.properties names its cluster and
node, and a broker of another refuses it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tomyum.errors import StorageError
from tomyum.metadata import DataDirLock, check_meta_properties
from tomyum.metadata.properties import DataDirLocked


def test_the_lock_is_exclusive_names_its_holder_and_goes_with_it(tmp_path: Path) -> None:
    first = DataDirLock(tmp_path / "d")
    first.acquire()
    with pytest.raises(DataDirLocked, match=f"in use by another broker \\(pid {os.getpid()}\\)"):
        DataDirLock(tmp_path / "d").acquire()
    first.release()
    again = DataDirLock(tmp_path / "d")
    again.acquire()  # released: free again
    again.release()


def test_meta_properties_are_written_once_and_checked_after(tmp_path: Path) -> None:
    cluster = check_meta_properties(tmp_path, None, 1)
    text = (tmp_path / "meta.properties").read_text()
    assert f"cluster.id={cluster}" in text and "node.id=1" in text and "version=1" in text
    assert check_meta_properties(tmp_path, None, 1) == cluster
    assert check_meta_properties(tmp_path, cluster, 1) == cluster
    with pytest.raises(StorageError, match="belongs to node 1, not 2"):
        check_meta_properties(tmp_path, None, 2)
    with pytest.raises(StorageError, match=f"belongs to cluster {cluster}, not other"):
        check_meta_properties(tmp_path, "other", 1)
    assert (tmp_path / "meta.properties").read_text() == text  # refusals change nothing
