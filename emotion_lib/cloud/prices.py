"""A small on-demand price table of SageMaker training instances and the cost estimate of a job.

The prices are US dollars per instance-hour for SageMaker training in us-east-1 as listed on AWS's SageMaker
pricing page in 2024 (:data:`PRICES_AS_OF`); they were not checked from this repository (no network) and differ by
region and over time. Every figure computed here is an estimate: the AWS bill is the truth.
"""

from __future__ import annotations

from collections.abc import Mapping

PRICES_AS_OF = "2024, us-east-1"
ON_DEMAND_USD_PER_HOUR = {
    "ml.m5.xlarge": 0.23,  # 4 vCPU, no GPU
    "ml.g4dn.xlarge": 0.736,  # 1 x NVIDIA T4 (16 GB)
    "ml.g4dn.12xlarge": 4.89,  # 4 x NVIDIA T4
    "ml.g5.xlarge": 1.408,  # 1 x NVIDIA A10G (24 GB)
    "ml.p3.2xlarge": 3.825,  # 1 x NVIDIA V100 (16 GB)
}
SPOT_SAVING_RANGE = (0.6, 0.9)
"""What managed spot training usually saves against on-demand (AWS says "up to 90%"); it varies by hour and zone."""


def cost_estimate(description: Mapping, prices: Mapping[str, float] = ON_DEMAND_USD_PER_HOUR) -> dict:
    """Cost so far of a training job from its ``DescribeTrainingJob`` answer.

    SageMaker bills ``BillableTimeInSeconds`` per instance at the on-demand rate (for a spot job that time is
    already reduced by the spot saving; ``1 - billable / TrainingTimeInSeconds`` is the saving). While a job runs, or
    when the answer lacks the field, the time from ``TrainingStartTime`` to ``TrainingEndTime`` (or the last
    modification) is used instead and ``basis`` says so. Returns seconds, instances, price, dollars and the basis;
    ``usd`` is ``None`` for an instance type missing from the table.
    """
    resources = description.get("ResourceConfig", {})
    instance_type = resources.get("InstanceType", "")
    count = int(resources.get("InstanceCount", 1))
    seconds = description.get("BillableTimeInSeconds")
    basis = "BillableTimeInSeconds"
    if seconds is None:
        start = description.get("TrainingStartTime")
        end = description.get("TrainingEndTime") or description.get("LastModifiedTime")
        seconds = max(0.0, (end - start).total_seconds()) if start and end else 0.0
        basis = "wall-clock training time (no billable time reported yet)"
    price = prices.get(instance_type)
    usd = None if price is None else seconds / 3600 * price * count
    return {"seconds": float(seconds), "instances": count, "usd_per_hour": price, "usd": usd, "basis": basis}


def format_cost(estimate: Mapping) -> str:
    """One line: ``~$0.37 (1800 s x 1 instance x $0.736/h on-demand, 2024 us-east-1 price; estimate)``."""
    if estimate["usd"] is None:
        return f"{estimate['seconds']:.0f} s billed; no price in the table for this instance type (estimate unknown)"
    return (
        f"~${estimate['usd']:.2f} ({estimate['seconds']:.0f} s x {estimate['instances']} instance(s) x "
        f"${estimate['usd_per_hour']}/h, {PRICES_AS_OF} on-demand price; basis: {estimate['basis']}; an estimate)"
    )
