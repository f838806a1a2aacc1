"""The `opentransformer` command line."""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from rich.console import Console
from rich.markup import escape

from .errors import OpenTransformerError
from .finance.cli import register_finance_commands
from .medical.cli import register_xray_commands

err = Console(stderr=True, highlight=False)


def _add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", "-m", default="default",
                   help="'default' (SmolLM2-135M-Instruct), a .gguf file, a model directory, or a downloaded repo id "
                        "(default: %(default)s)")
    p.add_argument("--threads", "-t", type=int, default=None, help="compute threads (default: physical cores)")
    p.add_argument("--ctx", type=int, default=None, help="context size in tokens (default: the model's)")
    _add_arithmetic_option(p)


def _add_arithmetic_option(p: argparse.ArgumentParser) -> None:
    from .llm.config import ARITHMETICS

    p.add_argument("--arithmetic", choices=ARITHMETICS, default="own",
                   help="'own': our kernels; 'llama.cpp': its float operations in its order, so the logits are "
                        "its CPU backend's bit for bit (slower; Q4_1, Q8_0 and F16 models) (default: %(default)s)")


def _add_sampling_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("sampling")
    g.add_argument("--max-tokens", "-n", type=int, default=256, help="most tokens to generate (default: %(default)s)")
    g.add_argument("--temperature", type=float, default=0.8, help="0 for greedy (default: %(default)s)")
    g.add_argument("--top-k", type=int, default=40, help="0 disables (default: %(default)s)")
    g.add_argument("--top-p", type=float, default=0.95, help="1 disables (default: %(default)s)")
    g.add_argument("--min-p", type=float, default=0.05, help="0 disables (default: %(default)s)")
    g.add_argument("--repeat-penalty", type=float, default=1.0, help="1 disables (default: %(default)s)")
    g.add_argument("--seed", type=int, default=None, help="same seed, same text (default: random)")
    g.add_argument("--stop", action="append", default=None, help="stop string; repeat for several")
    p.add_argument("--verbose", "-v", action="store_true", help="print prompt and generation speed")


def _sampling_kwargs(a: argparse.Namespace) -> dict:
    return dict(max_tokens=a.max_tokens, temperature=a.temperature, top_k=a.top_k, top_p=a.top_p, min_p=a.min_p,
                repeat_penalty=a.repeat_penalty, seed=a.seed, stop=a.stop)


def _load(a: argparse.Namespace):
    from . import load_llm

    with err.status(f"loading {a.model} …"):
        return load_llm(a.model, threads=a.threads, n_ctx=a.ctx, arithmetic=a.arithmetic)


def _stream(gen, verbose: bool) -> None:
    for piece in gen:
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")
    sys.stdout.flush()
    if verbose:
        s = gen.stats
        err.print(f"[dim]prompt {s.prompt_tokens} tokens ({s.cached_tokens} cached) at "
                  f"{s.prefill_tokens_per_second:.1f} tok/s · generated {s.generated_tokens} tokens at "
                  f"{s.decode_tokens_per_second:.1f} tok/s · finish: {s.finish_reason}[/dim]")


def cmd_chat(a: argparse.Namespace) -> int:
    llm = _load(a)
    messages: list[dict] = [{"role": "system", "content": a.system}] if a.system else []
    opts = _sampling_kwargs(a)
    if a.prompt is not None:
        messages.append({"role": "user", "content": a.prompt})
        _stream(llm.chat(messages, stream=True, **opts), a.verbose)
        return 0
    err.print(f"[bold]{llm.config.name}[/bold] · {llm.isa} · type /reset to start over, /exit to quit")
    while True:
        try:
            line = input("> ")
        except EOFError:
            break
        if line.strip() in ("/exit", "/quit"):
            break
        if line.strip() == "/reset":
            messages = messages[:1] if a.system else []
            err.print("[dim]conversation cleared[/dim]")
            continue
        if not line.strip():
            continue
        messages.append({"role": "user", "content": line})
        gen = llm.chat(messages, stream=True, **opts)
        pieces = []
        for piece in gen:
            pieces.append(piece)
            sys.stdout.write(piece)
            sys.stdout.flush()
        sys.stdout.write("\n")
        messages.append({"role": "assistant", "content": "".join(pieces)})
        if a.verbose:
            s = gen.stats
            err.print(f"[dim]{s.prefill_tokens_per_second:.1f} tok/s prompt · "
                      f"{s.decode_tokens_per_second:.1f} tok/s generation[/dim]")
    return 0


def cmd_generate(a: argparse.Namespace) -> int:
    llm = _load(a)
    prompt = a.prompt if a.prompt is not None else sys.stdin.read()
    if a.verbose:
        err.print(f"[dim]prompt: {len(llm.tokenize(prompt))} tokens[/dim]")
    sys.stdout.write(prompt if a.echo else "")
    _stream(llm.generate(prompt, stream=True, **_sampling_kwargs(a)), a.verbose)
    return 0


def cmd_info(a: argparse.Namespace) -> int:
    from .llm.info import describe

    from rich.table import Table

    table = Table(show_header=False, box=None)
    for key, value in describe(a.model):
        table.add_row(f"[bold]{key}[/bold]", value)
    Console(highlight=False).print(table)
    return 0


def cmd_classify(a: argparse.Namespace) -> int:
    import csv
    import json

    import numpy as np
    from rich.progress import Progress

    from . import load_classifier
    from .errors import InvalidRequestError
    from .vision.image_files import collect_images

    if a.batch_size < 1:
        raise InvalidRequestError("--batch-size must be >= 1")
    if a.top_k < 1:
        raise InvalidRequestError("--top-k must be >= 1")
    files = collect_images(a.images)
    with err.status(f"loading {a.model} …"):
        clf = load_classifier(a.model, threads=a.threads, weight_type=a.weight_type)
    out = Console(highlight=False)
    csv_file = open(a.csv, "w", newline="", encoding="utf-8") if a.csv else None
    writer = csv.writer(csv_file) if csv_file else None
    if writer:
        writer.writerow(["image", "rank", "label", "probability"])
    classified = 0
    try:
        with Progress(console=err, transient=True, disable=not any(f.from_directory for f in files)) as progress:
            task = progress.add_task("classifying", total=len(files))
            for start in range(0, len(files), a.batch_size):
                names, pixels = [], []
                for f in files[start:start + a.batch_size]:
                    try:
                        pixels.append(clf.preprocess(f.path))
                        names.append(str(f.path))
                    except InvalidRequestError as exc:
                        if not f.from_directory:
                            raise
                        progress.console.print(f"[yellow]warning:[/yellow] skipped {escape(str(exc))}")
                    progress.advance(task)
                if not pixels:
                    continue
                for name, preds in zip(names, clf.top_k(clf.logits(np.concatenate(pixels)), a.top_k)):
                    classified += 1
                    if a.json:
                        print(json.dumps({"image": name, "predictions": [{"label": label, "probability": prob}
                                                                          for label, prob in preds]}))
                    else:
                        out.print(f"[bold]{escape(name)}[/bold]")
                        for label, prob in preds:
                            out.print(f"  {prob:7.2%}  {escape(label)}")
                    if writer:
                        writer.writerows([name, rank, label, f"{prob:.6f}"]
                                         for rank, (label, prob) in enumerate(preds, 1))
    finally:
        if csv_file:
            csv_file.close()
    if not classified:
        raise InvalidRequestError("none of the images could be read")
    return 0


def _human_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{int(n)} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def cmd_env(a: argparse.Namespace) -> int:
    import os

    from rich.table import Table

    from .kernels import ops
    from .settings import load_settings, mask_token

    s = load_settings()
    table = Table("setting", "value", "from")
    table.columns[1].overflow = "fold"  # paths must stay whole: users copy them
    table.add_row("home (OPENTRANSFORMER_HOME)", escape(str(s.home)), escape(s.sources["home"]))
    table.add_row("models", escape(str(s.models_dir)), escape(s.sources["home"]))
    table.add_row("token (HF_TOKEN)", escape(mask_token(s.hf_token)) if s.hf_token else "not set",
                  escape(s.sources["hf_token"]))
    table.add_row("threads (OPENTRANSFORMER_THREADS)", str(s.threads) if s.threads else "all physical cores",
                  escape(s.sources["threads"]))
    table.add_row("offline (OPENTRANSFORMER_OFFLINE, HF_HUB_OFFLINE)", "on" if s.offline else "off",
                  escape(s.sources["offline"]))
    table.add_row("kernels (OPENTRANSFORMER_ISA)", ops.isa(),
                  "environment" if os.environ.get("OPENTRANSFORMER_ISA") else "detected from the CPU")
    Console(highlight=False).print(table)
    return 0


def cmd_download(a: argparse.Namespace) -> int:
    import os
    from concurrent.futures import ThreadPoolExecutor

    from .hub.download import download
    from .settings import load_settings

    if load_settings().offline:
        err.print("[dim]offline mode: looking in the local cache only[/dim]")
    pool = ThreadPoolExecutor(max_workers=1)
    job = pool.submit(download, a.repo_id, revision=a.revision, token=a.token, include=a.include)
    pool.shutdown(wait=False)
    try:
        path = job.result()
    except KeyboardInterrupt:
        # The Hub client's worker threads would finish their files, gigabytes maybe, before the process could
        # exit. Completed files are already in the cache; the next run clears the partial ones.
        err.print("[dim]interrupted: files already downloaded are kept; run the same command again to fetch "
                  "the rest[/dim]")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    Console(highlight=False, soft_wrap=True).print(f"[green]✓[/green] {escape(a.repo_id)} → {escape(str(path))}")
    return 0


def cmd_models(a: argparse.Namespace) -> int:
    from rich.table import Table

    from .hub.registry import list_models, remove_model
    from .settings import load_settings

    out = Console(highlight=False)
    if a.models_command == "rm":
        folder = remove_model(a.name)
        out.print(f"removed {escape(a.name)} ({escape(str(folder))})")
        return 0
    models = list_models()
    if not models:
        out.print(f"no models downloaded yet (in {escape(str(load_settings().models_dir))}); "
                  "fetch one with `opentransformer download REPO_ID`")
        return 0
    table = Table("name", "architecture", "size", "tensor types", "path")
    table.columns[4].overflow = "fold"  # paths must stay whole: users copy them
    for m in models:
        name = escape(m.name) + (" [yellow](incomplete: download again)[/yellow]" if m.incomplete else "")
        table.add_row(name, escape(m.architecture), _human_size(m.size_bytes),
                      escape(", ".join(m.tensor_types) or "none"), escape(str(m.path)))
    out.print(table)
    return 0


def cmd_serve(a: argparse.Namespace) -> int:
    import uvicorn

    from .errors import InvalidRequestError
    from .serve import ServeSettings, create_app
    from .serve.settings import api_key_from_env

    try:
        settings = ServeSettings(model=a.model, vision_model=a.vision_model, xray_model=a.xray_model,
                                 finance=a.finance, host=a.host, port=a.port,
                                 api_key=api_key_from_env(a.api_key), max_sequences=a.max_sequences,
                                 max_queue=a.max_queue, ctx=a.ctx, threads=a.threads,
                                 arithmetic=a.arithmetic, max_body_bytes=a.max_body_bytes, cors_origins=tuple(a.cors_origin or ()))
    except ValueError as exc:
        raise InvalidRequestError(str(exc)) from None
    if settings.api_key is None and settings.host not in ("127.0.0.1", "localhost", "::1"):
        err.print(f"[yellow]warning:[/yellow] serving on {escape(settings.host)} without an API key")
    err.print(f"loading {escape(a.model)} …")
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")
    return 0


def cmd_convert(a: argparse.Namespace) -> int:
    from pathlib import Path

    from .convert import convert_hf_to_gguf
    from .errors import InvalidRequestError
    from .hub.resolve import resolve_model
    from .kernels import ops

    source = resolve_model(a.src)
    if source.kind != "hf_dir":
        raise InvalidRequestError(f"{source.path}: already a GGUF file; convert reads Hugging Face model "
                                  "directories (config.json, *.safetensors, tokenizer.json)")
    out = Path(a.output) if a.output else Path(f"{source.path.resolve().name}.{a.type}.gguf")
    if out.exists() and not a.force:
        raise InvalidRequestError(f"{out}: already exists; pass --force to replace it")
    if a.threads is not None:
        if a.threads < 1:
            raise InvalidRequestError("threads must be >= 1")
        ops.set_threads(a.threads)
    path = convert_hf_to_gguf(source.path, out, a.type, progress=err.is_terminal)
    Console(highlight=False, soft_wrap=True).print(
        f"[green]✓[/green] {escape(str(path))} ({_human_size(path.stat().st_size)}, {escape(a.type)})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="opentransformer",
                                     description="Run transformer models on the CPU from quantized files.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("chat", help="chat with a model (interactive, or one shot with --prompt)")
    _add_model_options(p)
    p.add_argument("--prompt", "-p", default=None, help="one message; print the reply and exit")
    p.add_argument("--system", "-s", default=None, help="system message")
    _add_sampling_options(p)
    p.set_defaults(func=cmd_chat)

    p = sub.add_parser("generate", help="continue a raw prompt (no chat template)")
    _add_model_options(p)
    p.add_argument("--prompt", "-p", default=None, help="the prompt (default: read stdin)")
    p.add_argument("--echo", action="store_true", help="print the prompt before the continuation")
    _add_sampling_options(p)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("info", help="describe a model file or Hugging Face directory: architecture, parameters, "
                                    "tensor types, tokenizer")
    p.add_argument("model", nargs="?", default="default", help="'default', a .gguf file or a model directory")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("classify", help="classify images with a ViT image classifier",
                       description="Classify images with a Hugging Face ViTForImageClassification directory. "
                                   "An image named on the command line that cannot be read is an error "
                                   "(exit 1); in a directory argument, unreadable images are skipped with a "
                                   "warning.")
    p.add_argument("images", nargs="+", metavar="IMAGE",
                   help="an image file, or a directory: every image file in it is classified")
    p.add_argument("--model", "-m", required=True,
                   help="model directory (config.json, model.safetensors, preprocessor_config.json)")
    p.add_argument("--top-k", "-k", type=int, default=5, help="labels to show per image (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="one JSON object per image on stdout (JSON Lines)")
    p.add_argument("--batch-size", "-b", type=int, default=8, help="images per forward pass (default: %(default)s)")
    p.add_argument("--csv", metavar="OUT", default=None, help="also write image,rank,label,probability rows to OUT")
    p.add_argument("--weight-type", choices=["f32", "q8_0"], default="f32",
                   help="linear-layer weights: float32, or 8-bit q8_0 (default: %(default)s)")
    p.add_argument("--threads", "-t", type=int, default=None, help="compute threads (default: physical cores)")
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser("env", help="show the resolved settings and where each came from")
    p.set_defaults(func=cmd_env)

    p = sub.add_parser("download", help="download a model from the Hugging Face Hub (the files inference needs)")
    p.add_argument("repo_id", metavar="REPO_ID",
                   help="a Hugging Face model id, e.g. TinyLlama/TinyLlama-1.1B-Chat-v1.0")
    p.add_argument("--revision", "-r", default=None, help="branch, tag or commit (default: main)")
    p.add_argument("--token", default=None, help="Hugging Face token (default: HF_TOKEN from the environment or .env)")
    p.add_argument("--include", "-i", action="append", default=None, metavar="PATTERN",
                   help="also fetch files matching this glob, e.g. '*Q4_K_M.gguf'; repeat for several")
    p.set_defaults(func=cmd_download)

    p = sub.add_parser("models", help="list downloaded models; `models rm NAME` removes one")
    models_sub = p.add_subparsers(dest="models_command", metavar="ACTION")
    rm = models_sub.add_parser("rm", help="remove a downloaded model")
    rm.add_argument("name", metavar="NAME", help="the model's repo id, as `opentransformer models` lists it")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("convert", help="convert a Hugging Face model directory to one GGUF file, quantized")
    p.add_argument("src", metavar="SRC", help="a model directory (config.json, *.safetensors, tokenizer.json) or a "
                                              "downloaded repo id")
    p.add_argument("--output", "-o", default=None, metavar="OUT.gguf",
                   help="file to write (default: DIRNAME.TYPE.gguf in the current directory)")
    p.add_argument("--type", default="f32", metavar="TYPE",
                   help="f32, f16, bf16, q8_0, q4_0, q4_1, q4_k, q6_k or q4_k_m (llama.cpp's mixture) "
                        "(default: %(default)s)")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    p.add_argument("--threads", "-t", type=int, default=None, help="quantization threads (default: all cores)")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("serve", help="serve OpenAI-compatible HTTP APIs and a chat page")
    p.add_argument("--model", "-m", default="default",
                   help="'default' (SmolLM2-135M-Instruct), a .gguf file, or a model directory (default: %(default)s)")
    p.add_argument("--vision-model", default=None, help="also serve /v1/images/classify with this ViT model")
    p.add_argument("--xray-model", default=None,
                   help="also serve POST /v1/medical/xray with this chest X-ray ViT (a model directory or a "
                        "downloaded repo id, e.g. lxyuan/vit-xray-pneumonia-classification)")
    p.add_argument("--finance", action="store_true",
                   help="also serve /v1/finance/ (quotes, history, analysis); price requests go to the providers")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s, loopback)")
    p.add_argument("--port", type=int, default=8000, help="(default: %(default)s)")
    p.add_argument("--api-key", default=None,
                   help="require 'Authorization: Bearer KEY' (default: $OPENTRANSFORMER_API_KEY, else none)")
    p.add_argument("--max-sequences", type=int, default=8, help="sequences decoded at once (default: %(default)s)")
    p.add_argument("--max-queue", type=int, default=64,
                   help="requests waiting beyond those before 429 (default: %(default)s)")
    p.add_argument("--ctx", type=int, default=None, help="context per sequence in tokens (default: the model's)")
    p.add_argument("--threads", "-t", type=int, default=None, help="compute threads (default: physical cores)")
    _add_arithmetic_option(p)
    p.add_argument("--max-body-bytes", type=int, default=4 * 1024 * 1024,
                   help="largest request body (default: %(default)s)")
    p.add_argument("--cors-origin", action="append", default=None,
                   help="allow browser requests from this origin; repeat for several (default: CORS off)")
    p.set_defaults(func=cmd_serve)

    register_xray_commands(sub)
    register_finance_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except OpenTransformerError as exc:
        err.print("[bold red]error:[/bold red]", escape(str(exc)), soft_wrap=True)
        return 1
    except KeyboardInterrupt:
        err.print("[dim]interrupted[/dim]")
        return 130
