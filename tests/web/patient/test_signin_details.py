"""The date of birth as people type it (GOV.UK: be forgiving), on the sign-in page."""

import pytest

from tests.harness import Harness
from tests.pages import check_page

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("day", "month", "year"),
    [("14", "March", "1948"), ("14", "Mar", "1948"), ("14/03/1948", "", ""), ("14 March 1948", "", "")],
)
async def test_month_names_and_a_whole_date_in_the_day_box_sign_in(
    hub: Harness, day: str, month: str, year: str
) -> None:
    await hub.create_patient(mobile="+447700900001", dob="1948-03-14")
    data = {"contact": "07700 900001", "dob-day": day, "dob-month": month, "dob-year": year}
    response = await hub.post_form("/sign-in", data, csrf_from="/")
    assert (response.status_code, response.headers["location"]) == (303, "/sign-in/code")
    assert len(await hub.sent_codes("+447700900001")) == 1


async def test_a_whole_date_beside_other_boxes_says_where_each_part_goes(hub: Harness) -> None:
    data = {"contact": "07700 900001", "dob-day": "14/03/1948", "dob-month": "3", "dob-year": ""}
    response = await hub.post_form("/sign-in", data, csrf_from="/")
    assert response.status_code == 422
    assert response.text.count("Enter the day, month and year in their own boxes") == 2
    check_page(response.text)
