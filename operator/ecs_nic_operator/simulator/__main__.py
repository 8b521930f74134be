"""``python -m ecs_nic_operator.simulator [--host H] [--port P] [--seed FILE]``."""

from __future__ import annotations

import argparse

from .server import main as serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="ecs-nic-operator simulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8774)
    parser.add_argument("--seed", default=None, help="YAML or JSON seed file (default: generated world)")
    parser.add_argument(
        "--dialect",
        choices=("huawei", "nova"),
        default=None,
        help="answer like Huawei Cloud ECS (Ecs.xxxx codes, v1 read calls) or upstream Nova "
        "(default: the seed's behaviour.dialect, else huawei)",
    )
    args = parser.parse_args(argv)
    serve(args.host, args.port, args.seed, args.dialect)


if __name__ == "__main__":
    main()
