"""Fetch a model repository from the Hugging Face Hub into `<home>/models`.

huggingface_hub does the transfer: listing, ETags, progress bars, a broken
transfer continued with a Range request, and a cache where every completed
file stays, so an interrupted download run again fetches only the rest. This module
picks the files inference needs and turns the Hub's failures, told apart by
exception type and HTTP status, into messages that say what to do.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import httpx2
from huggingface_hub import constants, get_cached_repo_tree, get_token, snapshot_download
from huggingface_hub.errors import (CachedRepoTreeNotFoundError, GatedRepoError, HfHubHTTPError,
                                    IncompleteSnapshotError, LocalEntryNotFoundError, OfflineModeIsEnabled,
                                    RemoteEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError)
from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

from ..errors import (HubAuthError, HubConnectionError, HubError, HubNotFoundError, InvalidRequestError,
                      ModelNotFoundError, OpenTransformerError, UnsupportedModelError)
from ..settings import Settings, load_settings
from .cache import downloaded_repo_ids, incomplete_files, looks_like_repo_id

# Everything a Llama-family or ViT model needs to run; GGUF files only when `include` names them, since
# GGUF repositories hold one file per quantization and nobody wants all of them.
INFERENCE_FILES = (
    "config.json", "*.safetensors", "model.safetensors.index.json", "tokenizer.json", "tokenizer_config.json",
    "chat_template.jinja", "generation_config.json", "preprocessor_config.json", "special_tokens_map.json",
)
# Mistral repositories carry their original checkpoint beside the HF shards: the same weights again.
SKIPPED_FILES = ("consolidated*.safetensors",)
_PICKLE_SUFFIXES = (".bin", ".pth", ".pt", ".ckpt")
_LISTED = 8  # file names to quote in a message before "…"


def download(repo_id: str, revision: str | None = None, token: str | None = None,
             include: list[str] | None = None, progress: bool = True) -> Path:
    """Download (or finish downloading) `repo_id` and return its snapshot directory.

    In offline mode nothing is requested: a complete cached copy is returned, anything else is an error."""
    if not looks_like_repo_id(repo_id):
        raise InvalidRequestError(f"{repo_id!r} is not a Hugging Face model id (expected ORG/NAME, e.g. "
                                  "TinyLlama/TinyLlama-1.1B-Chat-v1.0)")
    settings = load_settings()
    if not settings.offline:
        _remove_dead_partials(settings.models_dir, repo_id)
    allow = [*INFERENCE_FILES, *(include or [])]
    try:
        with _progress_bars(progress):
            snapshot = Path(snapshot_download(
                repo_id, revision=revision, cache_dir=settings.models_dir, token=token or settings.hf_token,
                allow_patterns=allow, ignore_patterns=list(SKIPPED_FILES), local_files_only=settings.offline))
    except (HfHubHTTPError, LocalEntryNotFoundError, httpx2.TransportError) as exc:
        raise _explain(exc, repo_id, revision, token, settings) from None
    _check_weights(repo_id, revision, snapshot, settings.models_dir)
    return snapshot


def _remove_dead_partials(models_dir: Path, repo_id: str) -> None:
    """huggingface_hub continues a broken transfer within one run (a Range request), but names each partial
    file after the process writing it and never reuses one: partial files left by an interrupted run are
    dead weight. Files that completed are kept, so a rerun fetches only the rest."""
    for partial in incomplete_files(models_dir, repo_id):
        partial.unlink(missing_ok=True)


@contextmanager
def _progress_bars(show: bool):
    if show or are_progress_bars_disabled():
        yield
        return
    disable_progress_bars()
    try:
        yield
    finally:
        enable_progress_bars()


def _token_origin(explicit: str | None, settings: Settings) -> str | None:
    if explicit:
        return "--token"
    if settings.hf_token:
        return f"HF_TOKEN, {settings.sources['hf_token']}"
    if get_token():
        return "the token saved by `hf auth login`"
    return None


def _cached_list(models_dir: Path) -> str:
    cached = downloaded_repo_ids(models_dir)
    return f"cached models: {', '.join(cached)}" if cached else f"no models are cached in {models_dir}"


def _explain(exc: Exception, repo_id: str, revision: str | None, explicit_token: str | None,
             settings: Settings) -> OpenTransformerError:
    origin = _token_origin(explicit_token, settings)
    set_token = "set HF_TOKEN (in the environment or a .env file) or pass --token"
    page = f"{constants.ENDPOINT}/{repo_id}"
    if isinstance(exc, GatedRepoError):
        who = (f"the token ({origin}) must belong to an account that has" if origin
               else f"{set_token}, from an account that has")
        return HubAuthError(f"{repo_id} is a gated model: {who} accepted its terms at {page}")
    if isinstance(exc, RepositoryNotFoundError):
        if origin:
            return HubNotFoundError(f"{repo_id}: no such model on the Hub, or a private one that the token "
                                    f"({origin}) cannot see")
        return HubNotFoundError(f"{repo_id}: no such model on the Hub, or a private one: to read private "
                                f"models, {set_token}")
    if isinstance(exc, RevisionNotFoundError):
        return HubNotFoundError(f"{repo_id} has no revision {revision!r} (expected a branch, tag or commit)")
    if isinstance(exc, RemoteEntryNotFoundError):
        return HubNotFoundError(f"{repo_id}: a file the Hub listed is missing at revision {revision or 'main'}")
    if isinstance(exc, IncompleteSnapshotError):
        return HubConnectionError(f"the cached copy of {repo_id} is incomplete and the Hub cannot be reached"
                                  f"{_offline_note(settings)}: run the download again when online")
    if isinstance(exc, LocalEntryNotFoundError):
        cause = exc.__cause__
        if settings.offline or isinstance(cause, OfflineModeIsEnabled):
            return HubConnectionError(f"{repo_id} is not downloaded and offline mode is on"
                                      f"{_offline_note(settings)}; {_cached_list(settings.models_dir)}")
        if isinstance(cause, HfHubHTTPError):
            return _explain(cause, repo_id, revision, explicit_token, settings)
        return _no_network(repo_id, settings)
    if isinstance(exc, HfHubHTTPError):
        status = exc.response.status_code
        if status == 401:
            if origin:
                return HubAuthError(f"the Hub rejected the token ({origin}): it is wrong, expired or revoked; "
                                    f"create a read token at {constants.ENDPOINT}/settings/tokens")
            return HubAuthError(f"{repo_id} needs a Hugging Face token: {set_token}")
        if status == 403:
            if origin:
                return HubAuthError(f"the token ({origin}) is not allowed to read {repo_id}: give it read access "
                                    f"at {constants.ENDPOINT}/settings/tokens")
            return HubAuthError(f"the Hub refused access to {repo_id}: {set_token}")
        if status == 404:
            return HubNotFoundError(f"{repo_id}: not found on the Hub (HTTP 404)")
        return HubError(f"the Hub answered HTTP {status} for {repo_id}; try again later")
    return _no_network(repo_id, settings)


def _offline_note(settings: Settings) -> str:
    return f" ({settings.sources['offline']}: unset it to download)" if settings.offline else ""


def _no_network(repo_id: str, settings: Settings) -> HubConnectionError:
    return HubConnectionError(f"cannot reach the Hub at {constants.ENDPOINT} to download {repo_id}: check the "
                              "network connection; files already downloaded are kept, so running the same "
                              f"command again fetches only the rest; {_cached_list(settings.models_dir)}")


def _check_weights(repo_id: str, revision: str | None, snapshot: Path, models_dir: Path) -> None:
    """A repository can hold only files we did not fetch (GGUF quantizations, pickles): say so now rather
    than when loading fails."""
    if any(snapshot.rglob("*.safetensors")) or any(snapshot.rglob("*.gguf")):
        return
    try:
        remote = [f.path for f in get_cached_repo_tree(repo_id, revision=revision, cache_dir=models_dir)]
    except CachedRepoTreeNotFoundError:
        remote = []
    ggufs = [p for p in remote if p.endswith(".gguf")]
    if ggufs:
        raise InvalidRequestError(f"{repo_id} holds GGUF files, not safetensors: choose one with --include, "
                                  f"e.g. --include '{ggufs[0]}' (files: {_names(ggufs)})")
    pickles = [p for p in remote if p.endswith(_PICKLE_SUFFIXES)]
    if pickles:
        raise UnsupportedModelError(f"{repo_id} ships its weights only as PyTorch pickle files ({_names(pickles)}), "
                                    "which can run code when loaded and are not read here; use a safetensors "
                                    "or GGUF version of the model")
    raise ModelNotFoundError(f"{repo_id} has no weight files (safetensors or GGUF) at revision "
                             f"{revision or 'main'}")


def _names(paths: list[str]) -> str:
    return ", ".join(paths[:_LISTED]) + (", …" if len(paths) > _LISTED else "")
