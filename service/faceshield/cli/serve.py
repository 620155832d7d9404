"""`faceshield serve`: run the gRPC service until SIGTERM, then drain.

Settings come from FACESHIELD_* environment variables (see faceshield.service.settings), and
flags override them. The models: --models (or FACESHIELD_MODEL_SET), a model set's directory or
installed name; --generator, an official checkpoint; neither: the embedded demonstration models.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from .common import add_model_options, load_models, resolve_device

MODEL_SET_ENV = "FACESHIELD_MODEL_SET"  # default for --models: a set's directory or installed name


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the gRPC service", description=__doc__)
    p.add_argument("--host", help="address to listen on (default [::], all interfaces)")
    p.add_argument("--port", type=int, help="gRPC port (default 50051; 0 picks a free one)")
    p.add_argument(
        "--metrics-port",
        type=int,
        help="Prometheus /metrics port (default 9464, or a free one when --port is 0; 0 any free; -1 off)",
    )
    p.add_argument(
        "--metrics-host",
        help="address metrics listen on (default 127.0.0.1: they have no authentication; 0.0.0.0 opens them)",
    )
    p.add_argument("--max-batch", type=int, help="images per engine batch (default 16)")
    p.add_argument("--batch-wait-ms", type=float, help="longest wait for batch-mates (default 5)")
    p.add_argument("--queue-length", type=int, help="images waiting before RESOURCE_EXHAUSTED (default 64)")
    p.add_argument(
        "--queue-bytes", type=int, help="decoded image bytes waiting before RESOURCE_EXHAUSTED (default 1 GiB)"
    )
    p.add_argument("--stream-window", type=int, help="images in flight per stream (default 16)")
    p.add_argument("--max-pixels", type=int, help="largest image accepted, in pixels")
    p.add_argument("--max-steps", type=int, help="most I-FGSM steps a request may ask for")
    p.add_argument("--max-message-bytes", type=int, help="largest gRPC message, both directions (default 64 MiB)")
    p.add_argument(
        "--grace", type=float, dest="grace_seconds", help="seconds in-flight calls get on SIGTERM (default 30)"
    )
    p.add_argument(
        "--drain",
        type=float,
        dest="drain_seconds",
        help="seconds between NOT_SERVING and closing the listener, new calls get UNAVAILABLE meanwhile (default 1)",
    )
    p.add_argument("--tls-cert", help="server certificate (PEM); with --tls-key turns TLS on")
    p.add_argument("--tls-key", help="server private key (PEM)")
    p.add_argument("--tls-client-ca", help="CA (PEM) that client certificates must chain to: mutual TLS")
    p.add_argument("--auth-token-file", help="file of accepted bearer tokens, one a line (turns auth on)")
    p.add_argument(
        "--no-saliency",
        action="store_true",
        help="run without the saliency model (saliency methods then need the caller's mask)",
    )
    p.add_argument("--no-warm-up", action="store_true", help="report SERVING without a warm-up batch")
    p.add_argument(
        "--policy",
        choices=["ensure", "fixed"],
        help="what a request that names no policy gets (default ensure: verified protection; fixed: the paper's)",
    )
    p.add_argument("--budget-steps", type=int, help="default I-FGSM budget under ensure (default 60)")
    p.add_argument(
        "--margin",
        type=float,
        help="default margin: aim at distance >= 0.6 x (1 + margin) (identity verdict), output MSE > 0.05 x (1 + margin) (disruption verdict); default 0.2",
    )
    p.add_argument("--log-format", choices=["json", "text"])
    add_model_options(p)
    p.set_defaults(func=run)


def settings_from(args: argparse.Namespace):
    from faceshield.service.settings import Settings, read_token_file

    return Settings.from_env().replace(
        host=args.host,
        port=args.port,
        metrics_port=args.metrics_port,
        metrics_host=args.metrics_host,
        max_batch=args.max_batch,
        batch_wait_ms=args.batch_wait_ms,
        queue_length=args.queue_length,
        queue_bytes=args.queue_bytes,
        stream_window=args.stream_window,
        max_pixels=args.max_pixels,
        max_steps=args.max_steps,
        max_message_bytes=args.max_message_bytes,
        grace_seconds=args.grace_seconds,
        drain_seconds=args.drain_seconds,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_client_ca=args.tls_client_ca,
        log_format=args.log_format,
        auth_tokens=read_token_file(args.auth_token_file) if args.auth_token_file else None,
        warm_up=False if args.no_warm_up else None,
        policy=args.policy,
        budget_steps=args.budget_steps,
        margin=args.margin,
    )


def engine_loader(args: argparse.Namespace, settings):
    """Loads the models on the server's engine thread, after it starts listening."""

    def load():
        from faceshield.engine import FaceShieldEngine
        from faceshield.engine.pipeline import Limits

        with_saliency = not args.no_saliency
        if args.models:
            from faceshield.engine.modelsets import load_model_set

            models = load_model_set(
                args.models,
                with_saliency=with_saliency,
                device=resolve_device(args.device),
                saliency_runtime=args.saliency_runtime,
            )
        elif args.generator:
            models = load_models(args)
        else:
            from faceshield.engine.modelsets.defaults import build_default_models

            models = build_default_models(with_saliency=with_saliency)
        if not with_saliency:
            models.saliency, models.saliency_name, models.providers = None, "none", []
        limits = Limits(max_pixels=settings.max_pixels, max_steps=settings.max_steps, max_batch=settings.max_batch)
        return FaceShieldEngine(
            models,
            device=resolve_device(args.device),
            limits=limits,
            compile=args.compile,
            precision=args.precision,
            verdict="identity",
        )

    return load


def run(args: argparse.Namespace) -> int:
    from faceshield.service import logs
    from faceshield.service.server import serve

    settings = settings_from(args)
    if not args.models and not args.generator:
        args.models = os.environ.get(MODEL_SET_ENV) or None  # containers name their set this way
    logs.configure(settings.log_format, "INFO" if args.verbose else settings.log_level)

    def listening(server) -> None:
        # Two lines on stdout that scripts (and the tests) read: the ports at bind, then "ready".
        metrics = "off" if server.metrics_port is None else str(server.metrics_port)
        print(f"faceshield listening on port {server.port} metrics {metrics}", flush=True)
        if sys.stdout.isatty():
            print("loading the models; health says NOT_SERVING until they are warm", flush=True)

    def ready(server, seconds: float) -> None:
        m = server.backend.models
        print(f"faceshield ready on port {server.port} ({m.name} {m.version}, warm after {seconds:.1f} s)", flush=True)

    return asyncio.run(serve(settings, engine_loader(args, settings), on_listening=listening, on_ready=ready))
