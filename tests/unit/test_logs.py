"""The JSON log stays one document per line when several processes share one stderr
(the worker's processes under `worker.supervisor` inherit the same file or pipe)."""

import subprocess
import sys
from pathlib import Path

import orjson

WRITER = """
import threading
import structlog
from vwbase.logs import configure_logging

configure_logging("INFO", "json")
log = structlog.get_logger()

def write(thread: int) -> None:
    for n in range(400):
        log.info("interleaving_probe", thread=thread, n=n, pad="x" * 80)

threads = [threading.Thread(target=write, args=(i,)) for i in range(3)]
for t in threads:
    t.start()
for t in threads:
    t.join()
"""


def test_lines_from_processes_sharing_stderr_never_merge(tmp_path: Path) -> None:
    log = tmp_path / "shared.log"
    with log.open("ab") as out:  # as the worker's log: one O_APPEND file, non-interactive
        writers = [
            subprocess.Popen([sys.executable, "-c", WRITER], stdout=out, stderr=out)
            for _ in range(3)
        ]
        for writer in writers:
            assert writer.wait(timeout=120) == 0
    lines = log.read_bytes().splitlines()
    docs = [orjson.loads(line) for line in lines]  # raises on two documents on one line
    assert len(docs) == 3 * 3 * 400
    assert {doc["event"] for doc in docs} == {"interleaving_probe"}
