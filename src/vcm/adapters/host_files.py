"""Provisioner sources on the daemon's host, confined to one allowed directory."""

from __future__ import annotations

import os
from pathlib import Path

from vcm.domain.errors import InvalidRequest


class FilesRoot:
    def __init__(self, root: Path | None) -> None:
        self.root = root.resolve() if root is not None else None

    def check(self, path: str) -> None:
        self.resolve(path)

    def resolve(self, path: str) -> Path:
        """The real file `path` names, refused unless it lies inside the root."""
        if self.root is None:
            raise InvalidRequest(
                f"cannot read {path!r}: this daemon has no files directory (VCM_FILES_ROOT); "
                "send the text as 'content', 'inline' or 'manifest' instead"
            )
        if not path or "\x00" in path:
            raise InvalidRequest("a host path must be non-empty and must not contain NUL")
        try:
            real = (self.root / path).resolve(strict=True)
        except (OSError, RuntimeError) as error:
            raise InvalidRequest(f"no file {path!r} in the files directory") from error
        if not real.is_relative_to(self.root):
            raise InvalidRequest(f"{path!r} lies outside the files directory, refused")
        if not real.is_file() or not os.access(real, os.R_OK):
            raise InvalidRequest(f"{path!r} is not a readable file in the files directory")
        return real
