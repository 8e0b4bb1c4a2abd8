"""The files of the Prometheus client's multiprocess mode (core/metrics.py), kept tidy: gunicorn's
master removes, when it starts, those of processes no longer running (another server's or a task
worker's that still run are left alone, since they share the directory)."""

import os
import re
from pathlib import Path

FILE_OF_PROCESS = re.compile(r"_(\d+)\.db$")  # counter_1234.db, gauge_livesum_1234.db, ...


def is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def remove_dead_processes_files(directory: str) -> None:
    for path in Path(directory).glob("*.db"):
        found = FILE_OF_PROCESS.search(path.name)
        if found and not is_running(int(found.group(1))):
            path.unlink(missing_ok=True)
