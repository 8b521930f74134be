"""The `ecs-nic-operator` console script: run, simulator, demo."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from ecs_nic_operator import __version__
from ecs_nic_operator.config import SETTINGS, Setting, SettingError, Settings, settings_from


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
    settings = settings_from(vars(args), namespaces=namespaces, all_namespaces=not namespaces)
    handlers.State.settings = settings
    if args.metrics_port:
        start_http_server(args.metrics_port, addr=args.bind_address)
    # Our own /healthz and /readyz (health.py) watch the watches; kopf's liveness endpoint stays off.
    health.configure(args.health_port, args.bind_address, namespaces)
    health.CONFIG.interval = args.health_interval
    health.CONFIG.stale_after = args.health_stale_after or 3 * args.health_interval
    health.CONFIG.grace = args.health_grace or max(2 * args.health_interval, 5.0)
    health.CONFIG.stuck_after = args.health_stuck_after
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

    simulator_main(args.host, args.port, args.seed, args.dialect)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from ecs_nic_operator.devenv.demo import main as demo_main

    return demo_main(keep_running=not args.no_wait, kubeconfig=args.kubeconfig)


class _Parser(argparse.ArgumentParser):
    """A bad flag or value is one line on stderr and exit status 2: no usage dump, never a traceback."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _flag_type(setting: Setting) -> Any:
    def convert(raw: str) -> Any:
        try:
            return setting.parse(raw)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{raw!r}: {exc}") from None

    return convert


def _shown(value: Any) -> str:
    if value is None:
        return "derived"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).lower() if isinstance(value, bool) else str(value)


ENVIRONMENT_EPILOG = """\
Every flag above can also be set with its ECSNIC_* environment variable (shown with it); a flag given on the
command line wins. Values are checked the same way in both places: a bad one stops the operator with a
one-line error naming the variable. Also read: KUBECONFIG (else the in-cluster config), HTTPS_PROXY /
NO_PROXY (cloud calls), POD_NAME and POD_NAMESPACE (this replica's Lease identity and namespace).
"""


def _add_settings(run: argparse.ArgumentParser) -> None:
    group = run.add_argument_group("settings (flag / environment variable)")
    for s in SETTINGS:
        shown = f"[env {s.env}; default {_shown(s.default)}]"
        if s.switch:
            group.add_argument(
                s.flag, dest=s.name, action="store_const", const=True, default=None, help=f"{s.help} {shown}"
            )
        else:
            group.add_argument(
                s.flag,
                dest=s.name,
                type=_flag_type(s),
                default=None,
                metavar=s.metavar or None,
                help=f"{s.help} {shown}",
            )


def resolve(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> argparse.Namespace:
    """Fill every setting not given as a flag from its environment variable (validated) or its default."""
    for s in SETTINGS:
        if getattr(args, s.name, None) is None:
            setattr(args, s.name, s.from_env(environ))
    return args


def parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="ecs-nic-operator",
        description="Attach NICs to Huawei Cloud ECS / OpenStack servers from EcsNicAttachment resources.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser(
        "run",
        help="run the operator against the cluster in KUBECONFIG (or in-cluster)",
        description="Run the operator against the cluster in KUBECONFIG (or the in-cluster config).",
        epilog=ENVIRONMENT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    scope = run.add_mutually_exclusive_group()
    scope.add_argument(
        "--namespace",
        "-n",
        action="append",
        metavar="NS",
        help="serve EcsNicAttachments in this namespace only (repeatable)",
    )
    scope.add_argument("--all-namespaces", "-A", action="store_true", help="serve every namespace (the default)")
    _add_settings(run)
    # Removed; kept so that an old chart's argument fails with an explanation, not "unrecognized arguments".
    run.add_argument("--peering", action="store_true", help=argparse.SUPPRESS)
    run.add_argument("--peering-name", help=argparse.SUPPRESS)
    run.set_defaults(func=_run)

    sim = sub.add_parser("simulator", help="run the ECS/Nova NIC API simulator", description="Run the cloud simulator.")
    sim.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    sim.add_argument("--port", type=int, default=8774, help="port to listen on (default 8774)")
    sim.add_argument("--seed", default=None, help="YAML or JSON world description (default: generated and printed)")
    sim.add_argument(
        "--dialect",
        choices=["huawei", "nova"],
        default=None,
        help="answer like Huawei Cloud ECS or upstream Nova (default: the seed's behaviour.dialect, else huawei)",
    )
    sim.set_defaults(func=_simulator)

    demo = sub.add_parser(
        "demo",
        help="the simulator, the operator and the samples, on a local control plane or an existing cluster",
        description="Start the simulator, the operator and the samples from deploy/examples/, on a local "
        "kube-apiserver + etcd or, with --kubeconfig, on an existing cluster (kind, minikube, ...).",
    )
    demo.add_argument("--no-wait", action="store_true", help="exit once the samples are Ready")
    demo.add_argument(
        "--kubeconfig",
        default=None,
        metavar="PATH",
        help="use this existing cluster instead of starting a local control plane (the CRDs, the "
        "ecs-nic-system namespace and the samples are applied there; the operator runs on this machine)",
    )
    demo.set_defaults(func=_demo)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.command == "run":
        try:
            resolve(args)
        except SettingError as exc:
            p.exit(2, f"ecs-nic-operator run: error: {exc} (see ecs-nic-operator run --help)\n")
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
