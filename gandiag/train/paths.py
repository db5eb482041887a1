"""Where a run writes: the checks that a run name and an output folder will work, made
before training so that a bad path never costs a run.

A run name becomes a file name (`<name>.pt`, `<name>-report.html`, `<name>-last.pt`), so it
must be one safe path component: no separators, not `.` or `..`, not absolute, and short
enough that the longest of those files still fits the usual 255-byte limit on a name.
An output folder must be a folder (or creatable as one) that this process may write in.

    >>> check_run_name("ring-pack2")
    'ring-pack2'
    >>> check_run_name("../x")
    Traceback (most recent call last):
    ...
    ValueError: run name: expected a plain file name, got '../x' (it contains '/'); use letters, digits, '-', '_', '.', e.g. ring-pack2
"""

from __future__ import annotations

import os
from typing import Any

# The longest suffix a run's files get: the checkpoint written beside the last one
# (`<name>-last.pt` + ".partial") while it is renamed into place.
LONGEST_SUFFIX = "-last.pt.partial"
NAME_LIMIT = 255  # bytes in one file name on ext4, APFS, NTFS, ...
MAX_NAME_BYTES = NAME_LIMIT - len(LONGEST_SUFFIX)
_FIX = "use letters, digits, '-', '_', '.', e.g. ring-pack2"


def check_run_name(name: Any, *, what: str = "run name") -> str:
    """Return `name` if it is safe as a file name in the output folder, else raise ValueError."""
    if not isinstance(name, str):
        raise ValueError(f"{what}: expected a string, got {type(name).__name__} {name!r}; {_FIX}")
    if not name.strip():
        raise ValueError(f"{what}: expected a non-empty name, got {name!r}; {_FIX}")
    bad = next((c for c in name if c in "/\\" or c == os.sep or ord(c) < 32 or c == "\x7f"), None)
    if bad is not None:
        raise ValueError(f"{what}: expected a plain file name, got {name!r} (it contains "
                         f"{bad!r}); {_FIX}")
    if set(name) == {"."} or os.path.isabs(name) or os.path.splitdrive(name)[0]:
        raise ValueError(f"{what}: expected a plain file name, got {name!r} (a path, not a "
                         f"name); {_FIX}")
    size = len(name.encode("utf-8", "surrogatepass"))
    if size > MAX_NAME_BYTES:
        raise ValueError(f"{what}: expected at most {MAX_NAME_BYTES} bytes (the run's file "
                         f"names, such as '<name>-report.html', must fit the {NAME_LIMIT}-byte "
                         f"limit), got {size}: {name[:40]!r}...; choose a shorter name")
    return name


def check_folder_path(path: Any, *, what: str) -> str:
    """`path` (str or os.PathLike) as a str, if it names a folder this process can create or
    write in; else ValueError. Nothing is created."""
    if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"{what}: expected a folder path (str or os.PathLike), got "
                         f"{type(path).__name__} {path!r}; pass e.g. 'runs'")
    path = os.fspath(path)
    if not path:
        raise ValueError(f"{what}: expected a folder path, got an empty string; pass e.g. 'runs' "
                         "(or '.' for the current folder)")
    existing = _nearest_existing(path)
    if not os.path.isdir(existing):
        which = "which is a file" if existing == path else f"but {existing!r} on its way is a file"
        raise ValueError(f"{what}: expected a folder, got {path!r}, {which}; pass a folder "
                         "path (it is created if missing)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{what}: expected a folder this process may write in, got {path!r} "
                         f"({existing!r} is not writable); pass another folder or fix its "
                         "permissions")
    return path


def check_not_folders(folder: str, file_names: tuple[str, ...], *, what: str) -> None:
    """Each `folder/<file name>` must be free for a file: missing, or a file (overwritten)."""
    for file_name in file_names:
        target = os.path.join(folder, file_name)
        if os.path.isdir(target):
            raise ValueError(f"{what}: {target!r} would be written as a file but is a folder; "
                             "pick another run name or output folder")


def _nearest_existing(path: str) -> str:
    """`path` itself if it exists, else its closest existing ancestor (the one that a
    makedirs would have to write into), written as the user wrote it (relative stays so)."""
    current = os.path.normpath(path)
    while not os.path.lexists(current):
        parent = os.path.dirname(current) or os.curdir
        if parent == current:
            break
        current = parent
    return path if current == os.path.normpath(path) else current
