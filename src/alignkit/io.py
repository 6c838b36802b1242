"""Atomic folders with checksummed manifests: used by the model cache, checkpoints and stages.

A folder is written under a temporary name, every file fsynced, a ``manifest.json`` listing each
file's sha256 written last, then the folder is renamed into place. A reader trusts a folder only
when its manifest exists and every checksum matches, so a crash mid-write can never leave
something that looks complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"


def sha256_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


def _fsync_tree(folder: Path) -> None:
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_manifest(folder: Path, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Checksums every file in ``folder`` (except the manifest) and writes ``manifest.json``."""
    files = {
        str(path.relative_to(folder)): sha256_file(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != MANIFEST
    }
    manifest = {**(extra or {}), "files": files}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return manifest


def verify_manifest(folder: Path) -> dict[str, Any] | None:
    """The manifest when every listed file exists with its checksum; None otherwise."""
    manifest_path = Path(folder) / MANIFEST
    if not manifest_path.is_file():
        return None
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        return None
    for name, expected in files.items():
        path = Path(folder) / name
        if not path.is_file() or sha256_file(path) != expected:
            return None
    return manifest


def first_mismatch(folder: Path) -> str | None:
    """Names the first problem with a folder's manifest (for error messages), or None."""
    manifest_path = Path(folder) / MANIFEST
    if not manifest_path.is_file():
        return "no manifest.json (partial or foreign folder)"
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return "manifest.json is not valid JSON"
    for name, expected in manifest.get("files", {}).items():
        path = Path(folder) / name
        if not path.is_file():
            return f"{name} is missing"
        if sha256_file(path) != expected:
            return f"{name} does not match its sha256 (corrupt)"
    return None


def current_umask() -> int:
    """The process umask (reading it means setting it: set it back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def honour_umask(path: str | Path) -> None:
    """Gives ``path`` (and everything under a folder) the permissions ``open``/``mkdir`` would under the
    umask: 0644 files and 0755 folders under umask 022. Some writers (``mkdtemp``, safetensors) make
    private files, which another user or a container could not read."""
    mask = current_umask()
    path = Path(path)
    for entry in [path, *path.rglob("*")] if path.is_dir() else [path]:
        entry.chmod((0o777 if entry.is_dir() else 0o666) & ~mask)


@contextlib.contextmanager
def atomic_folder(target: str | Path, extra_manifest: dict[str, Any] | None = None) -> Iterator[Path]:
    """Yields a temporary folder; on success writes its manifest and renames it to ``target``.

    An existing ``target`` is replaced only after the new folder is complete. On an exception the
    temporary folder is removed and ``target`` is left as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
        write_manifest(tmp, extra_manifest)
        # mkdtemp makes the folder private (0700), and writers such as safetensors make files 0600.
        honour_umask(tmp)
        _fsync_tree(tmp)
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """The one atomic file write: ``write`` creates a temporary file beside ``path``, which is fsynced and
    renamed into place. A crash leaves the old file or the new one, never half a file.

    The file gets the umask's permissions even when ``write`` makes it private (safetensors does).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        write(tmp)
        honour_umask(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Writes a text file atomically (``atomic_write``)."""

    def write(tmp: Path) -> None:
        with open(tmp, "x", encoding="utf-8") as handle:
            handle.write(text)

    atomic_write(path, write)
