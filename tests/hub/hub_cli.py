"""Running the `opentransformer` CLI in isolation, and the repositories the fake Hub serves.

The CLI runs in a subprocess because huggingface_hub reads HF_ENDPOINT when it is imported. Every
subprocess gets HF_ENDPOINT pointing at loopback, a fresh HOME and no proxy, so nothing can reach the
real network, and bounded timeouts so nothing can hang."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from helpers.package_env import PACKAGE_ROOT

LLAMA = "test-org/tiny-llama"
GGUF_REPO = "test-org/tiny-llama-gguf"
GATED = "test-org/gated-llama"
GOOD_TOKEN = "hf_goodtoken0123456789abcd"
WEIGHTS_BYTES = 12 * 1024 * 1024  # over huggingface_hub's 10 MiB write chunk, so a cut leaves bytes on disk
HF_WRITE_CHUNK = 10 * 1024 * 1024  # huggingface_hub writes a download to disk in pieces of this size


class CLI:
    """Runs `opentransformer` with an isolated HOME (settings, cache) against a given endpoint."""

    def __init__(self, home: Path, endpoint: str):
        self.home = home
        self.endpoint = endpoint
        self.models_dir = home / ".cache" / "opentransformer" / "models"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("HF_", "HUGGING_FACE_", "OPENTRANSFORMER_")) and "proxy" not in k.lower()}
        path = [PACKAGE_ROOT, *filter(None, [os.environ.get("PYTHONPATH")])]
        env.update(PYTHONPATH=os.pathsep.join(path), HOME=str(self.home), HF_ENDPOINT=self.endpoint, NO_PROXY="127.0.0.1,localhost", COLUMNS="250",
                   HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_ETAG_TIMEOUT="5", HF_HUB_DOWNLOAD_TIMEOUT="5")
        env.update(extra)
        return env

    def popen(self, *args: str, **extra: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "opentransformer", *args], cwd=self.home,
                                env=self.env(**extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def __call__(self, *args: str, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "opentransformer", *args], cwd=self.home,
                              env=self.env(**extra), capture_output=True, text=True, timeout=60)


def assert_clean_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    message = " ".join(proc.stderr.split())
    assert "error:" in message, proc.stderr
    for fragment in fragments:
        assert fragment in message, proc.stderr
