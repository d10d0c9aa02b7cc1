"""A real local TAXII 2.1 server for tests: medallion (the OASIS reference
server, memory backend) on a free loopback port, as a subprocess."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.request
from base64 import b64encode
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

COLLECTION = "91a7b528-80eb-42ed-a74d-c6fbd5a26116"
USER, PASSWORD = "sharer", "medallion-test-pass"


@contextmanager
def medallion(tmp: Path) -> Iterator[str]:
    """Yields the API root URL (``http://127.0.0.1:PORT/api1/``)."""
    from streams.broker.embedded import free_port

    exe = shutil.which("medallion", path=str(Path(sys.executable).parent))
    if exe is None:
        raise RuntimeError("medallion is not installed: pip install -e '.[dev]'")
    port = free_port()
    root = f"http://127.0.0.1:{port}/api1/"
    data = {
        "/discovery": {"title": "test", "default": root, "api_roots": [root]},
        "api1": {
            "information": {"title": "api1", "versions": ["application/taxii+json;version=2.1"],
                            "max_content_length": 9765625},
            "status": [],
            "collections": [{"id": COLLECTION, "title": "distillation indicators",
                             "can_read": True, "can_write": True,
                             "media_types": ["application/stix+json;version=2.1"],
                             "objects": [], "manifest": []}],
        },
    }
    (tmp / "taxii-data.json").write_text(json.dumps(data))
    (tmp / "taxii-config.json").write_text(json.dumps({
        "backend": {"module": "medallion.backends.memory_backend",
                    "module_class": "MemoryBackend", "filename": str(tmp / "taxii-data.json")},
        "users": {USER: PASSWORD}, "taxii": {"max_page_size": 100}}))
    log = open(tmp / "medallion.log", "wb")  # noqa: SIM115 - the child owns it
    proc = subprocess.Popen([exe, "--host", "127.0.0.1", "--port", str(port),
                             str(tmp / "taxii-config.json")], stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        auth = b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        deadline = time.monotonic() + 30
        while True:
            try:
                req = urllib.request.Request(
                    f"http://127.0.0.1:{port}/taxii2/",
                    headers={"Accept": "application/taxii+json;version=2.1",
                             "Authorization": f"Basic {auth}"})
                with urllib.request.urlopen(req, timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("medallion did not start: "
                                       + (tmp / "medallion.log").read_text()[-2000:]) from None
                time.sleep(0.2)
        yield root
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
