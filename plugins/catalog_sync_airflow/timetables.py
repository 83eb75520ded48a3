"""ComplianceTimetable: Airflow's view of a vendor cadence (registered by plugins/main.py)."""

from __future__ import annotations

from typing import Any

from airflow.exceptions import AirflowTimetableInvalid
from airflow.timetables.base import DagRunInfo, DataInterval, TimeRestriction, Timetable
from pendulum import DateTime, instance

from catalog_sync.schedule import CadenceError, CadencePolicy


class ComplianceTimetable(Timetable):
    """Runs at the cadence's allowed starts; each run's data interval is its start instant."""

    def __init__(self, policy: CadencePolicy) -> None:
        self.policy = policy
        self.description = policy.describe()

    @property
    def summary(self) -> str:
        return self.policy.summary

    def serialize(self) -> dict[str, Any]:
        return self.policy.to_dict()

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> ComplianceTimetable:
        return cls(CadencePolicy.from_dict(data))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ComplianceTimetable) and other.policy == self.policy

    def __hash__(self) -> int:
        return hash(self.policy)

    def validate(self) -> None:
        try:
            self.policy.next_run(DateTime.now("UTC"))
        except CadenceError as exc:
            raise AirflowTimetableInvalid(str(exc)) from exc

    def infer_manual_data_interval(self, *, run_after: DateTime) -> DataInterval:
        return DataInterval.exact(run_after)

    def next_dagrun_info(
        self,
        *,
        last_automated_data_interval: DataInterval | None,
        restriction: TimeRestriction,
    ) -> DagRunInfo | None:
        last = last_automated_data_interval.end if last_automated_data_interval else None
        if last is not None:
            after, inclusive = last, False
        elif restriction.earliest is None:
            return None
        else:
            after, inclusive = restriction.earliest, True
        if not restriction.catchup:
            # Without catchup the next run is the next allowed start from now, never a past one.
            now = DateTime.now("UTC")
            if now > after:
                after, inclusive = now, True
        try:
            start = self.policy.next_run(after, last_run=last, inclusive=inclusive)
        except CadenceError:
            return None
        if restriction.latest is not None and start > restriction.latest:
            return None
        return DagRunInfo.exact(instance(start))
