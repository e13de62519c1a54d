"""Who may give an account which trusts: an admin of trust A gives trust A only; hub-wide is for hub-wide admins."""

from hub.rules.staff_scope import SYSTEM, Scope, assigned, assignment_problem

A, B = 1, 2
ADMIN_OF_A = Scope(staff_id=5, hub_wide=False, organisation_ids=frozenset({A}))
HUB_ADMIN = Scope(staff_id=6, hub_wide=True, organisation_ids=frozenset())


def test_an_admin_of_a_trust_gives_only_that_trust() -> None:
    assert assignment_problem(ADMIN_OF_A, chosen=frozenset({A}), hub_wide=False) == ""
    assert "trusts you work for" in assignment_problem(ADMIN_OF_A, chosen=frozenset({A, B}), hub_wide=False)


def test_only_a_hub_wide_admin_makes_or_changes_hub_wide_accounts() -> None:
    assert "hub-wide admin" in assignment_problem(ADMIN_OF_A, chosen=frozenset(), hub_wide=True)
    assert "hub-wide admin" in assignment_problem(ADMIN_OF_A, chosen=frozenset({A}), hub_wide=False, was_hub_wide=True)
    assert assignment_problem(HUB_ADMIN, chosen=frozenset({A, B}), hub_wide=True) == ""
    assert assignment_problem(SYSTEM, chosen=frozenset(), hub_wide=True) == ""


def test_trusts_out_of_the_admins_sight_stay_as_they_were() -> None:
    assert assigned(frozenset({A, B}), frozenset(), ADMIN_OF_A) == {B}
    assert assigned(frozenset({B}), frozenset({A}), ADMIN_OF_A) == {A, B}
    assert assigned(frozenset({A, B}), frozenset({A}), HUB_ADMIN) == {A}


def test_a_scope_sees_its_trusts_or_all_of_them() -> None:
    assert ADMIN_OF_A.sees(A) and not ADMIN_OF_A.sees(B)
    assert HUB_ADMIN.sees(B) and SYSTEM.sees(A)
