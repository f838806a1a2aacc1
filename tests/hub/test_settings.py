"""Settings precedence (environment, then ./.env, then ~/.env), validation, and `opentransformer env`."""
from __future__ import annotations

import pytest

from hub_cli import CLI, LLAMA, assert_clean_error
from opentransformer.errors import InvalidRequestError, ModelNotFoundError
from opentransformer.hub.resolve import resolve_model
from opentransformer.settings import load_settings, mask_token


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    """(home, cwd) with the process environment cleared of every setting."""
    home, cwd = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    cwd.mkdir()
    for key in ("OPENTRANSFORMER_HOME", "OPENTRANSFORMER_THREADS", "OPENTRANSFORMER_OFFLINE", "HF_HUB_OFFLINE",
                "HF_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)
    return home, cwd


def test_environment_over_cwd_dotenv_over_home_dotenv(dirs, monkeypatch):
    home, cwd = dirs
    (home / ".env").write_text("OPENTRANSFORMER_THREADS=2\nHF_TOKEN=hf_fromhomehomehome1111\n")
    (cwd / ".env").write_text("# comment\nexport OPENTRANSFORMER_THREADS='3'\n")
    monkeypatch.setenv("OPENTRANSFORMER_THREADS", "4")

    s = load_settings()
    assert s.threads == 4 and s.sources["threads"] == "environment"
    assert s.hf_token == "hf_fromhomehomehome1111" and s.sources["hf_token"] == f".env ({home / '.env'})"
    monkeypatch.delenv("OPENTRANSFORMER_THREADS")
    s = load_settings()
    assert s.threads == 3 and s.sources["threads"] == f".env ({cwd / '.env'})"
    (cwd / ".env").unlink()
    assert load_settings().threads == 2
    (home / ".env").unlink()
    s = load_settings()
    assert s.threads is None and s.hf_token is None and s.sources["threads"] == "default"
    assert s.home == home / ".cache" / "opentransformer" and s.models_dir == s.home / "models"


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_bad_threads_names_the_variable_and_its_source(dirs, value):
    _, cwd = dirs
    (cwd / ".env").write_text(f"OPENTRANSFORMER_THREADS={value}\n")
    with pytest.raises(InvalidRequestError, match=rf"OPENTRANSFORMER_THREADS must be a positive integer, "
                                                  rf"got '{value}' \(from \.env \({cwd / '.env'}\)\)"):
        load_settings()


@pytest.mark.parametrize("flag", ["OPENTRANSFORMER_OFFLINE", "HF_HUB_OFFLINE"])
def test_either_offline_flag_turns_offline_mode_on(dirs, monkeypatch, flag):
    assert not load_settings().offline
    monkeypatch.setenv(flag, "1")
    s = load_settings()
    assert s.offline and s.offline_flag == flag and s.sources["offline"] == f"{flag}, environment"


def test_mask_token():
    assert mask_token("hf_abcdefghijklmnopqrstuvwxyz") == "hf_…wxyz"
    assert "short" not in mask_token("short")


def test_resolve_repo_id_that_is_not_downloaded(dirs, monkeypatch):
    with pytest.raises(ModelNotFoundError, match=f"run `opentransformer download {LLAMA}`$"):
        resolve_model(LLAMA)
    monkeypatch.setenv("OPENTRANSFORMER_OFFLINE", "true")
    with pytest.raises(ModelNotFoundError, match="offline mode is on: OPENTRANSFORMER_OFFLINE"):
        resolve_model(LLAMA)


def test_resolve_downloaded_snapshot(dirs, monkeypatch):
    home, _ = dirs
    monkeypatch.setenv("OPENTRANSFORMER_HOME", str(home / "ot"))
    repo = home / "ot" / "models" / "models--test-org--tiny-llama"
    snapshot = repo / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    (snapshot / "config.json").write_text("{}")
    source = resolve_model(LLAMA)
    assert (source.kind, source.path) == ("hf_dir", snapshot)
    (snapshot / "model.Q4_K_M.gguf").write_bytes(b"GGUF")  # fetched on purpose with --include: it wins
    source = resolve_model(LLAMA)
    assert (source.kind, source.path) == ("gguf", snapshot / "model.Q4_K_M.gguf")


def test_env_command_masks_the_token(tmp_path, closed_port):
    cli = CLI(tmp_path, f"http://127.0.0.1:{closed_port}")
    token = "hf_secretsecretsecret9876"
    (tmp_path / ".env").write_text(f"HF_TOKEN={token}\nOPENTRANSFORMER_THREADS=3\n")
    proc = cli("env", OPENTRANSFORMER_HOME=str(tmp_path / "ot"), HF_HUB_OFFLINE="1")
    assert proc.returncode == 0, proc.stderr
    out = " ".join(proc.stdout.split())
    assert token not in proc.stdout and "hf_…9876" in out
    for fragment in ("OPENTRANSFORMER_HOME", str(tmp_path / "ot"), "threads", "HF_HUB_OFFLINE, environment",
                     f".env ({tmp_path / '.env'})", "kernels"):
        assert fragment in out, proc.stdout


def test_env_command_with_bad_threads(tmp_path, closed_port):
    cli = CLI(tmp_path, f"http://127.0.0.1:{closed_port}")
    assert_clean_error(cli("env", OPENTRANSFORMER_THREADS="lots"),
                       "OPENTRANSFORMER_THREADS must be a positive integer, got 'lots' (from environment)")
