"""Git LFS pointer files: what a clone made without Git LFS holds instead of the media."""

from __future__ import annotations

from pathlib import Path

LFS_POINTER_PREFIX = b"version https://git-lfs.github.com/spec/v1"
LFS_POINTER_MAX_BYTES = 1024  # the Git LFS spec keeps pointer files under 1 KiB
LFS_FIX = "run `git lfs pull` in the clone, or `crema-tools fetch`"


def read_lfs_pointer(path: Path) -> dict[str, str] | None:
    """The key/value lines of a Git LFS pointer file (`oid`, `size`), or None if it is not one."""
    try:
        with open(path, "rb") as f:
            head = f.read(LFS_POINTER_MAX_BYTES + 1)
    except OSError:
        return None
    if not head.startswith(LFS_POINTER_PREFIX) or len(head) > LFS_POINTER_MAX_BYTES:
        return None
    fields = {}
    for line in head.decode("utf-8", "replace").splitlines():
        key, _, value = line.partition(" ")
        fields[key] = value.strip()
    return fields
