"""A simulated fleet of licensed instances, for demos, tests and benchmarks."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class SimulatedInstance:
    """One installation: its customer, id, environment and usual user count."""

    customer_id: str
    instance_id: str
    environment: str
    base_users: int


def seeded_uuid(rng: random.Random) -> str:
    """A version 4 UUID drawn from ``rng``: the same seed makes the same fleet."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def fleet(*, customers: list[str], instances: int, seed: int = 0) -> list[SimulatedInstance]:
    """``instances`` installations dealt round-robin to ``customers``.

    Each customer's first instance is production; the others alternate.
    """
    # The customers are part of the seed: fleets of other customers must not share
    # instance_ids (the server would answer 409); the same ones and seed give the same fleet.
    rng = random.Random(f"{seed}:{','.join(customers)}")
    fleet_: list[SimulatedInstance] = []
    for index in range(instances):
        customer_id = customers[index % len(customers)]
        environment = "production" if (index // len(customers)) % 2 == 0 else "non_production"
        fleet_.append(
            SimulatedInstance(customer_id, seeded_uuid(rng), environment, rng.randint(5, 60))
        )
    return fleet_


#: An instance's peak of users on a day, given the instance and how many days before the
#: simulation's last day it is; ``None`` when the instance sends nothing that day.
PeakUsers = Callable[[SimulatedInstance, int], int | None]


def fleet_reports(
    instances: list[SimulatedInstance],
    *,
    days: int,
    reports_per_day: int = 1,
    end: date | None = None,
    seed: int = 0,
    peak_users: PeakUsers | None = None,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(customer_id, report)`` for every instance and simulated day, oldest day first.

    Users wander around each instance's ``base_users``; with ``peak_users``, they stay at or
    a little under the day's peak, which the report at noon reaches. Reports of the last day
    are generated in the past, so none is in the future.
    """
    # The instances are part of the seed, so that other fleets never repeat these report_ids
    # (the server would take them for duplicates), while a rerun resends exactly these.
    rng = random.Random(f"{seed}:{','.join(i.instance_id for i in instances)}")
    now = datetime.now(UTC)
    last_day = end or (now - timedelta(hours=1)).date()
    step = timedelta(days=1) / reports_per_day
    noon_slot = reports_per_day // 2
    sequences = {instance.instance_id: 0 for instance in instances}
    for offset in range(days - 1, -1, -1):
        day_start = datetime.combine(last_day - timedelta(days=offset), datetime.min.time(), UTC)
        peaks = {i.instance_id: peak_users(i, offset) for i in instances} if peak_users else {}
        for slot in range(reports_per_day):
            moment = day_start + slot * step + timedelta(seconds=rng.randint(0, 59))
            if moment > now:
                continue
            for instance in instances:
                if peak_users is None:
                    users = max(0, instance.base_users + rng.randint(-3, 3))
                else:
                    peak = peaks[instance.instance_id]
                    if peak is None:
                        continue
                    users = peak if slot == noon_slot else max(0, peak - rng.randint(0, 3))
                sequences[instance.instance_id] += 1
                yield (
                    instance.customer_id,
                    {
                        "schema_version": 1,
                        "report_id": seeded_uuid(rng),
                        "instance_id": instance.instance_id,
                        "environment": instance.environment,
                        "generated_at": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "product_version": "1.1.3",
                        "sequence": sequences[instance.instance_id],
                        "metrics": {
                            "users": users,
                            "tenants": 1 + users // 25,
                            "namespaces": 10 + users,
                            "worker_groups": 1 + users // 50,
                            "roles": 5,
                            "service_accounts": 2,
                        },
                    },
                )
