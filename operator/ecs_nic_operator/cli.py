"""The `ecs-nic-operator` console script: run, simulator, demo."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from ecs_nic_operator import __version__
from ecs_nic_operator.config import Settings


def _run(args: argparse.Namespace) -> int:
    from ecs_nic_operator import memory

    memory.limit_arenas()  # before any thread starts (imports below may start some)

    import kopf
    from prometheus_client import start_http_server

    from ecs_nic_operator import handlers, health, logs

    if args.peering:
        print(
            "ecs-nic-operator: --peering (kopf peering) was removed: it froze only kopf's watches, not the "
            "controller. Use --leader-elect (a coordination.k8s.io Lease); see docs/operations.md.",
            file=sys.stderr,
        )
        return 2
    logs.configure(args.log_level, args.log_format)
    namespaces = tuple(args.namespace or ())
    settings = Settings(
        namespaces=namespaces,
        all_namespaces=not namespaces,
        resync_period=args.resync_period,
        metrics_port=args.metrics_port,
        health_port=args.health_port,
        leader_elect=args.leader_elect,
        leader_election_namespace=args.leader_election_namespace or "",
        leader_election_id=args.leader_election_id,
        log_format=args.log_format,
        log_level=args.log_level,
    )
    handlers.State.settings = settings
    if args.metrics_port:
        start_http_server(args.metrics_port, addr=args.bind_address)
    # Our own /healthz and /readyz (health.py) watch the watches; kopf's liveness endpoint stays off.
    health.configure(args.health_port, args.bind_address, namespaces)
    if not settings.leader_elect:
        kopf.run(clusterwide=not namespaces, namespaces=namespaces, standalone=True)
        return 0
    return _run_elected(settings)


def _run_elected(settings: Settings) -> int:
    import asyncio

    import kopf

    from ecs_nic_operator import handlers, leader
    from ecs_nic_operator.kube import load_config

    try:
        config = leader.ElectionConfig(
            namespace=leader.lease_namespace(settings.leader_election_namespace),
            name=settings.leader_election_id,
            identity=leader.identity(),
            lease_duration=settings.leader_lease_duration,
            renew_deadline=settings.leader_renew_deadline,
            retry_period=settings.leader_retry_period,
        )
    except leader.ConfigError as exc:
        print(f"ecs-nic-operator: {exc}", file=sys.stderr)
        return 2
    leader.register_fenced_login()
    namespaces = settings.namespaces

    async def operate(ready: asyncio.Event, stop: asyncio.Event) -> None:
        await kopf.operator(
            clusterwide=not namespaces, namespaces=namespaces, standalone=True, ready_flag=ready, stop_flag=stop
        )

    async def main() -> int:
        elector = leader.Elector(config, load_config())
        return await leader.run(elector, operate, handlers.stop_acting)

    return asyncio.run(main())


def _simulator(args: argparse.Namespace) -> int:
    from ecs_nic_operator.simulator import main as simulator_main

    simulator_main(args.host, args.port, args.seed)
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
        "--leader-elect",
        action=argparse.BooleanOptionalAction,
        default=os.environ.get("ECSNIC_LEADER_ELECT", "false").lower() == "true",
        help="one of several replicas: act only while holding a coordination.k8s.io/v1 Lease, stand by otherwise",
    )
    run.add_argument(
        "--leader-election-namespace",
        default=os.environ.get("ECSNIC_LEADER_ELECTION_NAMESPACE", ""),
        help="namespace of the Lease (default: POD_NAMESPACE, else the service account's namespace)",
    )
    run.add_argument(
        "--leader-election-id",
        default=os.environ.get("ECSNIC_LEADER_ELECTION_ID") or "ecs-nic-operator",
        help="name of the Lease (default ecs-nic-operator)",
    )
    # Removed; kept so that an old chart's argument fails with an explanation, not "unrecognized arguments".
    run.add_argument("--peering", action="store_true", help=argparse.SUPPRESS)
    run.add_argument("--peering-name", help=argparse.SUPPRESS)
    run.add_argument("--log-level", default=os.environ.get("ECSNIC_LOG_LEVEL", "INFO"))
    run.add_argument("--log-format", choices=["text", "json"], default=os.environ.get("ECSNIC_LOG_FORMAT", "text"))
    run.set_defaults(func=_run)

    sim = sub.add_parser("simulator", help="run the ECS/Nova NIC API simulator")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8774)
    sim.add_argument("--seed", default=None, help="YAML or JSON world description (default: generated)")
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
