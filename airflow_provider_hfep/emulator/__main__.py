"""``hfep-emulator``: run the local stand-in for the Hugging Face cloud until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import sys

from airflow_provider_hfep.emulator.faults import Fault
from airflow_provider_hfep.emulator.state import Settings, User


def parse_quota(text: str) -> tuple[tuple[str, str, str], int]:
    """Parse ``NAMESPACE:VENDOR:INSTANCE_TYPE:MAX`` (the ``--quota`` option)."""
    parts = text.split(":")
    if len(parts) != 4 or not parts[3].isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAMESPACE:VENDOR:INSTANCE_TYPE:MAX")
    return (parts[0], parts[1], parts[2]), int(parts[3])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="hfep-emulator",
        description="A local emulator of Hugging Face Inference Endpoints: the management API, "
        "each endpoint's data plane, and a control API under /_emulator for tests.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    parser.add_argument("--port", type=int, default=0, help="port to bind (default 0: a free port)")
    parser.add_argument(
        "--user",
        action="append",
        type=User.parse,
        metavar="NAME:TOKEN[:ORG,...]",
        help="a user, its token and organisations; repeatable (default demo:hf_demo_token)",
    )
    parser.add_argument(
        "--deploy-seconds",
        type=float,
        default=3.0,
        help="pending+initializing time of a deploy, resume or update",
    )
    parser.add_argument(
        "--cold-start-seconds", type=float, default=2.0, help="wake-up time of a scaled-to-zero endpoint"
    )
    parser.add_argument(
        "--update-lag-seconds",
        type=float,
        default=0.3,
        help="how long reads still show the old state after a PUT",
    )
    parser.add_argument("--latency-ms", type=float, default=20.0, help="time each inference request takes")
    parser.add_argument(
        "--item-latency-ms", type=float, default=0.0, help="extra time per input a request carries"
    )
    parser.add_argument("--capacity", type=int, default=32, help="requests in flight per replica before 429")
    parser.add_argument(
        "--scale-up-seconds",
        type=float,
        default=5.0,
        help="autoscaling: seconds of load before a replica is added (up to maxReplica)",
    )
    parser.add_argument(
        "--scale-down-seconds",
        type=float,
        default=60.0,
        help="autoscaling: seconds idle before an added replica is removed",
    )
    parser.add_argument(
        "--max-client-batch-size",
        type=int,
        default=32,
        help="inputs a TEI endpoint takes in one request before answering 413",
    )
    parser.add_argument(
        "--fault",
        action="append",
        type=Fault.parse,
        default=[],
        metavar="SCOPE:KIND:RATE",
        help="inject faults: SCOPE management|inference|health, KIND 429|500|502|503|reset|timeout, RATE 0..1",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of the fault dice (reproducible faults)")
    parser.add_argument(
        "--quota",
        action="append",
        type=parse_quota,
        default=[],
        metavar="NAMESPACE:VENDOR:INSTANCE_TYPE:MAX",
        help="accelerators a namespace may hold of one type (default 64 of each)",
    )
    parser.add_argument("--default-quota", type=int, default=64, help="accelerators of each type by default")
    parser.add_argument(
        "--no-logs-v3",
        action="store_true",
        help="answer 501 to the v3 (searchable) logs, as some endpoints do",
    )
    parser.add_argument("--page-size", type=int, default=20, help="endpoints per listing page without limit")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    import uvicorn

    from airflow_provider_hfep.emulator.app import create_app

    settings = Settings(
        users=tuple(args.user) if args.user else Settings().users,
        deploy_seconds=args.deploy_seconds,
        cold_start_seconds=args.cold_start_seconds,
        update_lag_seconds=args.update_lag_seconds,
        latency_ms=args.latency_ms,
        item_latency_ms=args.item_latency_ms,
        scale_up_seconds=args.scale_up_seconds,
        scale_down_seconds=args.scale_down_seconds,
        capacity=args.capacity,
        max_client_batch_size=args.max_client_batch_size,
        default_quota=args.default_quota,
        quotas=dict(args.quota),
        logs_v3=not args.no_logs_v3,
        page_size=args.page_size,
    )
    app = create_app(settings, args.fault, args.seed)
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
