"""The `ecs-nic-operator` console script: run, simulator, demo."""

from __future__ import annotations

import argparse
import os
import random
import sys
from collections.abc import Sequence

from ecs_nic_operator import __version__


def _run(args: argparse.Namespace) -> int:
    from ecs_nic_operator import memory

    memory.limit_arenas()  # before any thread starts (imports below may start some)

    import kopf
    from prometheus_client import start_http_server

    from ecs_nic_operator import handlers, health, logs
    from ecs_nic_operator.config import Settings

    logs.configure(args.log_level, args.log_format)
    namespaces = tuple(args.namespace or ())
    handlers.State.settings = Settings(
        namespaces=namespaces,
        all_namespaces=not namespaces,
        resync_period=args.resync_period,
        metrics_port=args.metrics_port,
        health_port=args.health_port,
        peering=args.peering,
        log_format=args.log_format,
        log_level=args.log_level,
    )
    if args.metrics_port:
        start_http_server(args.metrics_port, addr=args.bind_address)
    # Our own /healthz and /readyz (health.py) watch the watches; kopf's liveness endpoint stays off.
    health.configure(args.health_port, args.bind_address, namespaces)
    kopf.run(
        clusterwide=not namespaces,
        namespaces=namespaces,
        standalone=not args.peering,
        # kopf's peering is priority-based: equal priorities freeze everybody, so replicas pick at random.
        priority=random.randint(1, 10_000) if args.peering else None,
        peering_name=args.peering_name if args.peering else None,
    )
    return 0


def _simulator(args: argparse.Namespace) -> int:
    from ecs_nic_operator.simulator import main as simulator_main

    simulator_main(args.host, args.port, args.seed, args.dialect)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from ecs_nic_operator.devenv.demo import main as demo_main

    return demo_main(keep_running=not args.no_wait)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ecs-nic-operator",
        description="Attach NICs to Huawei Cloud ECS / OpenStack servers from EcsNicAttachment resources.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the operator against the cluster in KUBECONFIG (or in-cluster)")
    scope = run.add_mutually_exclusive_group()
    scope.add_argument("--namespace", "-n", action="append", help="watch only this namespace (repeatable)")
    scope.add_argument("--all-namespaces", "-A", action="store_true", help="watch every namespace (default)")
    run.add_argument(
        "--metrics-port",
        type=int,
        default=int(os.environ.get("ECSNIC_METRICS_PORT", "0") or 0),
        help="serve Prometheus metrics on this port (0: off)",
    )
    run.add_argument(
        "--health-port",
        type=int,
        default=int(os.environ.get("ECSNIC_HEALTH_PORT", "0") or 0),
        help="serve /healthz (liveness) and /readyz (readiness) on this port (0: off)",
    )
    run.add_argument("--bind-address", default=os.environ.get("ECSNIC_BIND_ADDRESS", "0.0.0.0"))
    run.add_argument(
        "--resync-period",
        type=float,
        default=float(os.environ.get("ECSNIC_RESYNC_PERIOD", "300")),
        help="seconds between drift checks of each server (jittered per server; default 300)",
    )
    run.add_argument(
        "--peering",
        action="store_true",
        default=os.environ.get("ECSNIC_PEERING") == "true",
        help="run as one of several replicas: one active, the others standby (kopf peering)",
    )
    run.add_argument("--peering-name", default=os.environ.get("ECSNIC_PEERING_NAME", "ecs-nic-operator"))
    run.add_argument("--log-level", default=os.environ.get("ECSNIC_LOG_LEVEL", "INFO"))
    run.add_argument("--log-format", choices=["text", "json"], default=os.environ.get("ECSNIC_LOG_FORMAT", "text"))
    run.set_defaults(func=_run)

    sim = sub.add_parser("simulator", help="run the ECS/Nova NIC API simulator")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8774)
    sim.add_argument("--seed", default=None, help="YAML or JSON world description (default: generated)")
    sim.add_argument(
        "--dialect",
        choices=["huawei", "nova"],
        default=None,
        help="answer like Huawei Cloud ECS or upstream Nova (default: the seed's behaviour.dialect, else huawei)",
    )
    sim.set_defaults(func=_simulator)

    demo = sub.add_parser("demo", help="start a local control plane, the simulator, the operator and samples")
    demo.add_argument("--no-wait", action="store_true", help="exit once the samples are Ready")
    demo.set_defaults(func=_demo)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
