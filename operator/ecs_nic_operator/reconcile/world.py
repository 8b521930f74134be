"""Everything the phases read and the few things they change (caches, counters, memory), in one bundle the
controller builds once and passes to each phase. Nothing in here schedules: phases return when to look next."""

from __future__ import annotations

from dataclasses import dataclass, field

from ecs_nic_operator.clouds import Clouds
from ecs_nic_operator.config import Settings
from ecs_nic_operator.kube import Kube
from ecs_nic_operator.reconcile.evidence import Evidence
from ecs_nic_operator.reconcile.jobs import V1Memory
from ecs_nic_operator.reconcile.memory import Memory
from ecs_nic_operator.reconcile.pacing import Runs
from ecs_nic_operator.reconcile.relist import Relist
from ecs_nic_operator.reconcile.room import Room
from ecs_nic_operator.reconcile.status import StatusWriter
from ecs_nic_operator.reconcile.store import Store
from ecs_nic_operator.servers import ServerViews


@dataclass
class World:
    kube: Kube
    settings: Settings
    store: Store
    status: StatusWriter
    evidence: Evidence
    clouds: Clouds
    views: ServerViews  # per-server port lists shared by its attachments, and the per-server lock
    room: Room  # free NIC slots per server (reconcile/room.py)
    memory: Memory
    relist: Relist
    runs: Runs  # a server's new attachments, taken back to back (reconcile/pacing.py)
    started_at: float  # monotonic; the startup grace of a missing EcsCloud counts from here
    v1: V1Memory = field(default_factory=V1Memory)  # issue 13: v1 jobs (reconcile/v1.py)

    async def know_all(self) -> None:
        await self.relist.know_all(self.kube, self.settings, self.store)
