"""``hfep-emulator``: run the local stand-in for the Hugging Face cloud until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import os
import secrets
import signal
import socket
import sys

from airflow_provider_hfep.emulator.faults import Fault
from airflow_provider_hfep.emulator.settings import CONTROL_TOKEN_ENV, add_options, from_options


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="hfep-emulator",
        description="A local emulator of Hugging Face Inference Endpoints: the management API, "
        "each endpoint's data plane, and a control API under /_emulator for tests. The control API "
        f"requires the token in ${CONTROL_TOKEN_ENV} (header X-Emulator-Control-Token) when it is "
        "set, and always when the emulator listens beyond loopback (a token is then made and printed).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    parser.add_argument("--port", type=int, default=0, help="port to bind (default 0: a free port)")
    parser.add_argument(
        "--fault",
        action="append",
        type=Fault.parse,
        default=[],
        metavar="SCOPE:KIND:RATE",
        help=(
            "inject faults: SCOPE management|inference|health|server, "
            "KIND 429|500|502|503|reset|timeout|invalid_output, RATE 0..1"
        ),
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of the fault dice (reproducible faults)")
    add_options(parser)
    return parser.parse_args(argv)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def control_token(host: str) -> str | None:
    """Return the control API's token: the environment's, else a new one when others could reach the API."""
    token = os.environ.get(CONTROL_TOKEN_ENV) or None
    if token is None and not _is_loopback(host):
        token = secrets.token_urlsafe(24)
        print(f"{CONTROL_TOKEN_ENV}={token}", file=sys.stderr, flush=True)
    return token


async def serve(args: argparse.Namespace) -> None:
    import uvicorn

    from airflow_provider_hfep.emulator.app import create_app

    app = create_app(from_options(args), args.fault, args.seed, control_token=control_token(args.host))
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this: without it, a kept-alive connection stalls ~40 ms per
    # answer (Nagle's algorithm against the client's delayed ACK).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((args.host, args.port))
    sock.listen(2048)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    app.world.base_url = f"http://{shown}:{port}"
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="off", timeout_keep_alive=60, backlog=2048
    )
    server = uvicorn.Server(config)
    # The socket already listens: connections made from now on queue until uvicorn accepts them.
    print(f"HFEP_EMULATOR_URL={app.world.base_url}", flush=True)
    await server.serve(sockets=[sock])


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again: end with status 0 then.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))
    sys.exit(0)


if __name__ == "__main__":
    main()
