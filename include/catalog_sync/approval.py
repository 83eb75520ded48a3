"""Whether a run's staged changes need a person's approval before anything is written."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ChangeAssessment:
    """A run's staged changes against the vendor's delete cap and change-ratio threshold.

    `reasons` holds one line per rule broken, each starting with its stable code
    (`delete_cap`, `change_ratio`); an empty tuple means the run may proceed on its own.
    """

    creates: int
    updates: int
    deletes: int
    known_records: int
    delete_cap: int
    change_ratio_threshold: float | None
    reasons: tuple[str, ...] = field(default=())

    @property
    def needs_approval(self) -> bool:
        return bool(self.reasons)

    @property
    def change_ratio(self) -> float | None:
        """Updates and deletes as a share of records already loaded (None on a first load)."""
        if self.known_records <= 0:
            return None
        return (self.updates + self.deletes) / self.known_records

    def summary(self) -> str:
        """Counts an approver reads (Markdown); never record content."""
        ratio = self.change_ratio
        lines = [
            f"- creates: {self.creates:,}, updates: {self.updates:,}, deletes: {self.deletes:,}",
            f"- records already loaded: {self.known_records:,}",
            f"- delete cap: {self.delete_cap:,}",
        ]
        if ratio is not None:
            lines.append(f"- changed share of loaded records: {ratio:.1%}")
        if self.change_ratio_threshold is not None:
            lines.append(f"- change-ratio threshold: {self.change_ratio_threshold:.1%}")
        lines += [f"- **{r}**" for r in self.reasons]
        return "\n".join(lines)


def assess_changes(
    *,
    creates: int,
    updates: int,
    deletes: int,
    known_records: int,
    delete_cap: int,
    change_ratio_threshold: float | None,
    deletes_preapproved: bool = False,
) -> ChangeAssessment:
    """Name every rule the run breaks; a delete cap approved up front (param) is not asked again."""
    reasons: list[str] = []
    if deletes > delete_cap and not deletes_preapproved:
        reasons.append(f"delete_cap: {deletes:,} deletes over the cap of {delete_cap:,}")
    if known_records > 0 and change_ratio_threshold is not None:
        ratio = (updates + deletes) / known_records
        if ratio > change_ratio_threshold:
            reasons.append(
                f"change_ratio: {ratio:.1%} of loaded records change, over "
                f"{change_ratio_threshold:.1%}"
            )
    return ChangeAssessment(
        creates, updates, deletes, known_records, delete_cap, change_ratio_threshold, tuple(reasons)
    )
