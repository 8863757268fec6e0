"""``metric-serve ARTIFACT [--host 127.0.0.1] [--port 8000] [--gallery FILE] [--backend auto]
[--token-file F] [--max-batch N] [--max-wait-ms M]``: the HTTP service (README, "HTTP service")."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import click

from repmet.cli_errors import report_user_errors
from repmet.errors import UserError
from repmet.runtime.backends import backend_names
from repmet.serve.settings import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_IMAGES, ServeSettings


def read_token(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        token = Path(path).read_text().strip()
    except OSError as exc:
        raise UserError(f"cannot read --token-file {path} ({exc.strerror})") from None
    if len(token) < 16:
        raise UserError(f"--token-file {path} holds {len(token)} characters; use a random token of at least 16 "
                        f"(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))' > {path})")
    return token


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@click.command()
@click.argument("artifact", type=click.Path(exists=True, file_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback by default).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--gallery", type=click.Path(dir_okay=False), default=None,
              help="Gallery file (.npz): loaded at start if it exists, every enroll and remove saved to it before "
                   "it is acknowledged. Replicas naming the same file share it. Without it, changes live in memory.")
@click.option("--backend", default="auto", show_default=True, type=click.Choice(["auto", *backend_names()]))
@click.option("--device", default="cpu", show_default=True)
@click.option("--threads", default=0, show_default=True, help="CPU threads of ONNX Runtime (0: its default).")
@click.option("--token-file", type=click.Path(dir_okay=False), default=None,
              help="File holding a bearer token that every request (but the page and /health) must send.")
@click.option("--max-batch", default=32, show_default=True, type=click.IntRange(1, 1024),
              help="Images embedded together by the micro-batcher.")
@click.option("--max-wait-ms", default=5.0, show_default=True, type=click.FloatRange(0, 1000),
              help="How long a request waits for others to share its batch.")
@click.option("--max-queue", default=256, show_default=True, type=click.IntRange(1),
              help="Images that may wait; beyond, 503 with Retry-After.")
@click.option("--timeout", "timeout_s", default=30.0, show_default=True, type=click.FloatRange(0.1),
              help="Seconds before a request that is not answered gets 504.")
@click.option("--body-timeout", "body_timeout_s", default=10.0, show_default=True, type=click.FloatRange(0.1),
              help="Seconds a client has to send its whole request body (slow clients get 408).")
@click.option("--max-body-mb", default=DEFAULT_MAX_BODY_BYTES // 2**20, show_default=True,
              type=click.IntRange(1, 1024))
@click.option("--max-images", default=DEFAULT_MAX_IMAGES, show_default=True, type=click.IntRange(1, 10000),
              help="Images per request.")
@click.option("--cors-origin", "cors_origins", multiple=True,
              help="Allow browsers on this origin to call the API (repeat; none by default).")
@report_user_errors
def main(artifact, host, port, gallery, backend, device, threads, token_file, max_batch, max_wait_ms, max_queue,
         timeout_s, body_timeout_s, max_body_mb, max_images, cors_origins) -> None:
    """Serve few-shot classification or detection from an exported ARTIFACT over HTTP, with a web page at /."""
    import uvicorn

    from repmet.serve.app import create_app

    token = read_token(token_file)
    if token is None and not is_loopback(host):
        click.echo(f"warning: serving on {host} without --token-file: anyone who can reach it can enroll and "
                   f"remove classes", err=True)
    settings = ServeSettings(Path(artifact), Path(gallery) if gallery else None, backend, device, threads, token,
                             max_batch, max_wait_ms, max_queue, timeout_s, body_timeout_s, max_body_bytes=max_body_mb * 2**20,
                             max_images=max_images, cors_origins=tuple(cors_origins))
    app = create_app(settings)
    click.echo(f"serving {artifact} ({app.state.runtime.task}, {app.state.runtime.backend.name}) on "
               f"http://{host}:{port}/", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_keep_alive=5)


if __name__ == "__main__":
    main()
