"""Which verifier produced a record: eqprop-verify's version (package metadata) and, when it
runs from a git checkout, the commit (with `+dirty` when tracked files differ from it).

Every record's `environment` carries both (`tracks.context.environment`), the manifest's
`verifier` field and the certificate's header name them, so a certificate can be traced to the
code that measured it.
"""

from __future__ import annotations

import functools
import subprocess
from importlib import metadata
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent


@functools.lru_cache(maxsize=1)
def version() -> str:
    """The installed distribution's version, "unknown" when it is not installed."""
    try:
        return metadata.version("eqprop-verify")
    except metadata.PackageNotFoundError:
        return "unknown"


@functools.lru_cache(maxsize=1)
def commit() -> str | None:
    """HEAD of the checkout the code runs from (+dirty when tracked files are modified), or
    None outside a git checkout (an installed wheel) or without git."""
    if not (CHECKOUT / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(CHECKOUT), "rev-parse", "HEAD"],
                              capture_output=True, text=True, timeout=10, check=True)
        status = subprocess.run(["git", "-C", str(CHECKOUT), "status", "--porcelain",
                                 "--untracked-files=no"], capture_output=True, text=True,
                                timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if status.stdout.strip() else "")


def provenance() -> dict[str, str]:
    """{"eqprop_verify": version, "eqprop_verify_commit": commit (only when known)}."""
    found = {"eqprop_verify": version()}
    if (sha := commit()) is not None:
        found["eqprop_verify_commit"] = sha
    return found


def describe() -> str:
    """'0.1.0 (commit 4bc8b38…)' or '0.1.0'."""
    sha = commit()
    return version() if sha is None else f"{version()} (commit {sha})"
