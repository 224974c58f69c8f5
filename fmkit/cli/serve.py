"""`fmkit serve MODEL_DIR [--host] [--port] [--workers] [--backend] [--api-key] [--allowed-hosts]`: the HTTP server.

Access rules (fmkit.inference.http_guard): beyond localhost the server does not start without a key, and it
answers only to the host names it is bound to.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from fmkit.errors import ConfigError


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from fmkit.config import load_config, parse_override
    from fmkit.inference.http_guard import HOSTS_ENV, AllowedHosts, install_host_guard, parse_host_list, resolve_key

    overrides: dict[str, Any] = {"serve.host": args.host, "serve.port": args.port, "serve.workers": args.workers,
                                 "serve.backend": args.backend, "serve.precision": args.precision}
    if args.no_batching:
        overrides["serve.batching"] = False
    for text in args.set or []:
        key, value = parse_override(text)
        if not key.startswith("serve."):
            raise ConfigError(f"--set {text}: fmkit serve only takes serve.* keys (see `fmkit init-config`).")
        overrides[key] = value
    settings = load_config(args.config, overrides).serve
    api_key = resolve_key(settings.host, args.api_key, kind="api")  # ConfigError (exit 2) beyond localhost without one
    allowed_hosts = AllowedHosts.for_bind(settings.host, parse_host_list(args.allowed_hosts))
    model_dir = Path(args.model_dir)
    shutdown_s = int(settings.request_timeout_s) + 5  # in-flight requests may take up to the request timeout
    if settings.workers > 1:
        # Each worker process loads its own model; split the cores so they do not oversubscribe.
        from fmkit.inference.backends import cpu_threads
        from fmkit.models.meta import read_meta, saved_model_dir

        read_meta(saved_model_dir(model_dir))  # fail here, with a clear message, not in every worker
        os.environ["FMKIT_THREADS"] = str(max(1, cpu_threads() // settings.workers))
        os.environ["FMKIT_SERVE_MODEL"] = str(model_dir)
        os.environ["FMKIT_SERVE_SETTINGS"] = settings.model_dump_json()
        if api_key:
            os.environ["FMKIT_API_KEY"] = api_key
        os.environ[HOSTS_ENV] = args.allowed_hosts or ""
        print(f"serving {model_dir} with {settings.workers} worker processes on http://{settings.host}:{settings.port}"
              f"  (each loads the model; {os.environ['FMKIT_THREADS']} threads each; metrics per worker)", file=sys.stderr)
        uvicorn.run("fmkit.cli.serve:worker_app", factory=True, host=settings.host, port=settings.port,
                    workers=settings.workers, timeout_graceful_shutdown=shutdown_s, log_level=args.log_level)
        return 0
    from fmkit.inference import load_predictor
    from fmkit.inference.server import create_app

    predictor = load_predictor(model_dir, batch_size=settings.max_batch_size, backend=settings.backend,
                               precision=settings.precision)
    print(f"serving {model_dir} ({getattr(getattr(predictor, 'backend', None), 'name', 'torch')} backend) on "
          f"http://{settings.host}:{settings.port}  docs: /docs", file=sys.stderr)
    app = install_host_guard(create_app(predictor, settings, api_key=api_key), allowed_hosts)
    uvicorn.run(app, host=settings.host, port=settings.port, timeout_graceful_shutdown=shutdown_s,
                log_level=args.log_level)
    return 0


def worker_app() -> Any:
    """Factory for `uvicorn --workers N`: each worker's model server, behind the same Host check."""
    from fmkit.config.schema import ServeConfig
    from fmkit.inference.http_guard import HOSTS_ENV, AllowedHosts, install_host_guard, parse_host_list
    from fmkit.inference.server import app_from_env

    settings = ServeConfig.model_validate_json(os.environ.get("FMKIT_SERVE_SETTINGS", "{}"))
    allowed_hosts = AllowedHosts.for_bind(settings.host, parse_host_list(os.environ.get(HOSTS_ENV)))
    return install_host_guard(app_from_env(), allowed_hosts)


def register(sub: Any) -> None:
    p = sub.add_parser("serve", help="serve a saved or exported model over HTTP (FastAPI + uvicorn)")
    p.add_argument("model_dir", help="saved model, exported ONNX folder or run directory")
    p.add_argument("--host", help="interface (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default 8000)")
    p.add_argument("--workers", type=int, help="server processes (default 1)")
    p.add_argument("--backend", choices=["auto", "torch", "onnx"], help="inference backend (default auto: fastest measured)")
    p.add_argument("--precision", choices=["model", "auto", "fp32", "bf16"],
                   help="torch backend precision (default model: what the model's metrics were measured in)")
    p.add_argument("--api-key", help="require this key on every route but /health (or set FMKIT_API_KEY); required "
                   "when --host is not local")
    p.add_argument("--allowed-hosts", metavar="NAME,NAME", help="also answer to these Host names (e.g. a DNS name; "
                   "'*' turns the check off behind a proxy). Default: the --host value and localhost")
    p.add_argument("--no-batching", action="store_true", help="one forward pass per request (for comparison)")
    p.add_argument("--config", help="YAML config; its serve section holds the limits")
    p.add_argument("--set", action="append", metavar="serve.KEY=VALUE", help="e.g. serve.max_batch_size=32")
    p.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"], help="log level")
    p.set_defaults(func=cmd_serve)
