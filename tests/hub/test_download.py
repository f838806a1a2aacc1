"""`opentransformer download` with the real huggingface_hub client against a fake Hub on loopback."""
from __future__ import annotations

import re
import signal
import time
from pathlib import Path

from hub_cli import CLI, GATED, GGUF_REPO, GOOD_TOKEN, HF_WRITE_CHUNK, LLAMA, assert_clean_error

INFERENCE_FILES = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                   "generation_config.json"}


def snapshot_of(proc) -> Path:
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return Path(proc.stdout.split("→")[-1].strip())


def table_rows(stdout: str) -> dict[str, str]:
    """The `models` table's first line of each row, by model name."""
    return {line.split("│")[1].strip(): line for line in stdout.splitlines() if "│ test-org/" in line}


def test_full_download_fetches_only_inference_files(cli, hub):
    snapshot = snapshot_of(cli("download", LLAMA))
    files = {p.name for p in snapshot.iterdir()}
    assert files == INFERENCE_FILES
    for name in files:
        assert (snapshot / name).read_bytes() == hub.repos[LLAMA].files[name]
    assert snapshot.is_relative_to(cli.models_dir)
    assert not hub.requests(contains="README.md") and not hub.requests(contains="pytorch_model.bin")
    assert not hub.requests(contains="consolidated")


def test_dropped_connection_is_resumed_with_a_range_request(cli, hub):
    hub.drop = {"model.safetensors"}
    hub.cut_at = HF_WRITE_CHUNK + 4096
    snapshot = snapshot_of(cli("download", LLAMA))
    assert (snapshot / "model.safetensors").read_bytes() == hub.repos[LLAMA].files["model.safetensors"]
    gets = hub.requests("GET", "model.safetensors")
    assert [g.headers.get("Range") for g in gets] == [None, f"bytes={HF_WRITE_CHUNK}-"]


def test_interrupted_download_keeps_finished_files_and_the_rerun_fetches_the_rest(cli, hub):
    hub.stall = {"model.safetensors"}
    hub.cut_at = HF_WRITE_CHUNK + 4096
    first = cli.popen("download", LLAMA)
    assert hub.stalled.wait(30)
    snapshots = cli.models_dir / "models--test-org--tiny-llama" / "snapshots"
    small_files = INFERENCE_FILES - {"model.safetensors"}
    deadline = time.monotonic() + 15
    while {p.name for p in snapshots.glob("*/*")} != small_files:
        assert time.monotonic() < deadline, "the small files never reached the cache"
        time.sleep(0.05)
    first.send_signal(signal.SIGINT)  # Ctrl-C: must stop now, not after the stalled file
    _, stderr = first.communicate(timeout=10)
    hub.release.set()
    assert first.returncode == 130 and "Traceback" not in stderr
    assert "run the same command again to fetch the rest" in " ".join(stderr.split())

    assert "incomplete" in cli("models").stdout
    assert_clean_error(cli("info", LLAMA), "interrupted", f"opentransformer download {LLAMA}")

    snapshot = snapshot_of(cli("download", LLAMA))
    assert (snapshot / "model.safetensors").read_bytes() == hub.repos[LLAMA].files["model.safetensors"]
    for name in small_files:
        assert len(hub.requests("GET", f"/{name}")) == 1, name
    # huggingface_hub 2.x names each partial file after the process writing it and never reuses another's
    # (huggingface_hub PR #4228): across runs the unit of resumption is the file, within a run the byte
    # (the Range request above). The interrupted file is fetched whole, once more, and nothing else is.
    gets = hub.requests("GET", "model.safetensors")
    assert [g.headers.get("Range") for g in gets] == [None, None]
    assert not list(cli.models_dir.rglob("*.incomplete"))
    assert "incomplete" not in cli("models").stdout


def test_wrong_token_is_rejected_with_401(cli, hub):
    token = "hf_wrongtoken000000000wxyz"
    proc = cli("download", LLAMA, HF_TOKEN=token)
    assert_clean_error(proc, "rejected the token (HF_TOKEN, environment)", "wrong, expired or revoked")
    assert token not in proc.stderr
    assert hub.requests()[0].headers["authorization"] == f"Bearer {token}"


def test_gated_model_without_token_says_how_to_get_access(cli, hub):
    assert_clean_error(cli("download", GATED), f"{GATED} is a gated model", "set HF_TOKEN",
                       f"{hub.url}/{GATED}")


def test_gated_model_with_a_token_that_has_access(cli):
    snapshot = snapshot_of(cli("download", GATED, "--token", GOOD_TOKEN))
    assert (snapshot / "config.json").is_file()


def test_unknown_repo_is_404(cli):
    assert_clean_error(cli("download", "test-org/no-such-model"), "test-org/no-such-model: no such model on the Hub")


def test_unknown_revision_is_404(cli):
    assert_clean_error(cli("download", LLAMA, "--revision", "v9"), f"{LLAMA} has no revision 'v9'")


def test_not_a_repo_id(cli, hub):
    assert_clean_error(cli("download", "../etc"), "is not a Hugging Face model id")
    assert not hub.log


def test_no_network(tmp_path, closed_port):
    cli = CLI(tmp_path, f"http://127.0.0.1:{closed_port}")
    assert_clean_error(cli("download", LLAMA), f"cannot reach the Hub at http://127.0.0.1:{closed_port}",
                       "no models are cached")


def test_offline_without_a_cached_copy(cli, hub):
    assert_clean_error(cli("download", LLAMA, OPENTRANSFORMER_OFFLINE="1"),
                       f"{LLAMA} is not downloaded and offline mode is on", "OPENTRANSFORMER_OFFLINE, environment",
                       "no models are cached")
    assert_clean_error(cli("download", LLAMA, HF_HUB_OFFLINE="1"), "offline mode is on (HF_HUB_OFFLINE")
    assert_clean_error(cli("info", LLAMA, HF_HUB_OFFLINE="1"), f"run `opentransformer download {LLAMA}`",
                       "offline mode is on: HF_HUB_OFFLINE")
    assert not hub.log


def test_offline_with_a_cached_copy_loads_without_the_network(cli, hub):
    snapshot = snapshot_of(cli("download", GGUF_REPO, "--include", "*Q8_0.gguf"))
    assert {p.name for p in snapshot.iterdir()} == {"tiny-llama.Q8_0.gguf"}
    requests = len(hub.log)
    again = cli("download", GGUF_REPO, "--include", "*Q8_0.gguf", OPENTRANSFORMER_OFFLINE="1")
    assert snapshot_of(again) == snapshot
    assert_clean_error(cli("download", LLAMA, OPENTRANSFORMER_OFFLINE="1"), f"cached models: {GGUF_REPO}")
    info = cli("info", GGUF_REPO, OPENTRANSFORMER_OFFLINE="1")
    assert info.returncode == 0, info.stderr
    assert "tiny llama" in info.stdout and "Q8_0" in info.stdout
    assert len(hub.log) == requests


def test_gguf_repo_without_include_names_the_files(cli):
    assert_clean_error(cli("download", GGUF_REPO), "holds GGUF files", "--include",
                       "tiny-llama.Q8_0.gguf")


def test_models_lists_and_removes(cli):
    snapshot = snapshot_of(cli("download", LLAMA))
    snapshot_of(cli("download", GGUF_REPO, "--include", "*Q8_0.gguf"))
    listed = cli("models")
    assert listed.returncode == 0, listed.stderr
    rows = table_rows(listed.stdout)
    assert set(rows) == {LLAMA, GGUF_REPO}
    assert "LlamaForCausalLM" in rows[LLAMA]
    assert str(snapshot) in re.sub(r"[\s│]", "", listed.stdout)  # the path column folds long paths
    assert {"F16", "F32"} <= set(rows[LLAMA].split("│")[4].replace(",", " ").split())
    assert "12.0 MiB" in rows[LLAMA]
    assert "llama" in rows[GGUF_REPO] and "Q8_0" in rows[GGUF_REPO]

    removed = cli("models", "rm", LLAMA)
    assert removed.returncode == 0, removed.stderr
    assert not (cli.models_dir / "models--test-org--tiny-llama").exists()
    assert set(table_rows(cli("models").stdout)) == {GGUF_REPO}
    assert_clean_error(cli("models", "rm", LLAMA), f"{LLAMA}: no downloaded model of that name",
                       f"downloaded: {GGUF_REPO}")
    assert_clean_error(cli("info", LLAMA), f"{LLAMA} is not downloaded", f"opentransformer download {LLAMA}")
