"""Which trusts a staff member works for, and which trusts an admin may give to an account. No I/O."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scope:
    """What one staff member may see and change: their organisations' patients, tasks and audit rows, or every
    trust's when the account is hub-wide."""

    staff_id: int
    hub_wide: bool
    organisation_ids: frozenset[int]

    def sees(self, organisation_id: int) -> bool:
        return self.hub_wide or organisation_id in self.organisation_ids


# The hub's own processes and the command line (an operator on the server): everything.
SYSTEM = Scope(staff_id=0, hub_wide=True, organisation_ids=frozenset())


def assignment_problem(
    by: Scope, *, chosen: frozenset[int], hub_wide: bool, was_hub_wide: bool = False, own: bool = False
) -> str:
    """Why `by` may not give an account these organisations and this flag; "" when they may. An admin of trust A
    gives only trust A; only a hub-wide admin makes (or unmakes) hub-wide accounts; nobody changes their own (an
    admin who took their own trust away would see nothing, a hub-wide one could leave the hub without one)."""
    if own:
        return "You cannot change your own trusts: ask another admin"
    if by.hub_wide:
        return ""
    if hub_wide or was_hub_wide:
        return "Only a hub-wide admin can make or change hub-wide accounts"
    if not chosen <= by.organisation_ids:
        return "You can only give an account the trusts you work for yourself"
    return ""


def assigned(current: frozenset[int], chosen: frozenset[int], by: Scope) -> frozenset[int]:
    """The account's organisations after `by` chose `chosen` among those they can see: the ones out of their sight
    stay as they were (an admin of trust A neither sees nor removes trust B)."""
    if by.hub_wide:
        return chosen
    return (current - by.organisation_ids) | (chosen & by.organisation_ids)
