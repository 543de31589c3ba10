from __future__ import annotations

from pathlib import Path

import pytest

from vcm.adapters.host_files import FilesRoot
from vcm.domain.errors import InvalidRequest


@pytest.fixture
def root(tmp_path: Path) -> Path:
    files = tmp_path / "files"
    (files / "sub").mkdir(parents=True)
    (files / "sub" / "ok.txt").write_text("ok")
    (tmp_path / "secret").write_text("secret")
    (files / "out").symlink_to(tmp_path / "secret")
    (files / "in").symlink_to(files / "sub" / "ok.txt")
    return files


def test_files_inside_the_root_resolve(root: Path) -> None:
    assert FilesRoot(root).resolve("sub/ok.txt") == root / "sub" / "ok.txt"
    assert FilesRoot(root).resolve("in") == root / "sub" / "ok.txt"
    assert FilesRoot(root).resolve(str(root / "sub" / "ok.txt")) == root / "sub" / "ok.txt"


@pytest.mark.parametrize(
    "path",
    ["../secret", "out", "sub/../../secret", "/etc/passwd", "sub", "missing.txt", "", "a\x00b"],
)
def test_anything_escaping_or_not_a_file_is_refused(root: Path, path: str) -> None:
    with pytest.raises(InvalidRequest):
        FilesRoot(root).check(path)


def test_without_a_root_every_path_is_refused_with_advice(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="content"):
        FilesRoot(None).check("a.txt")
