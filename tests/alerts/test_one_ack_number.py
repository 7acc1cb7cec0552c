"""One acknowledgement number: the board (run counts), the alerts list and the after-action report agree."""

from __future__ import annotations

from tests.accountability.test_checkins import World, world_fixture  # noqa: F401  (the `world` fixture)


def three_numbers(world: World, run_id: int) -> tuple:
    headers = world.h(world.principal)
    board = world.client.get(f"/api/v1/runs/{run_id}", headers=headers).get_json()["counts"]["alerts"]
    listing = world.client.get(f"/api/v1/runs/{run_id}/alerts", headers=headers).get_json()
    report = world.client.get(f"/api/v1/runs/{run_id}/report?format=json", headers=headers).get_json()["alerts"]
    return ((board["acknowledged"], board["asked"]), (listing["acks"]["acknowledged"], listing["acks"]["expected"]),
            (listing["summary"]["acknowledged"], listing["summary"]["asked"]),
            (report["acknowledged"], report["asked_to_acknowledge"]))


def test_board_alerts_list_and_report_show_the_same_acknowledgements(world):
    run_id = world.start()
    # The teacher was asked; the district admin confirms without being asked to: not in either number.
    for who in (world.teacher, world.district):
        assert world.client.post(f"/api/v1/runs/{run_id}/ack", json={}, headers=world.h(who)).status_code in (200, 201)

    during = three_numbers(world, run_id)
    world.all_clear(run_id)
    after = three_numbers(world, run_id)

    assert len(set(during)) == 1 and len(set(after)) == 1, (during, after)
    acknowledged, asked = during[0]
    assert acknowledged == 1 and asked >= 4 and after[0] == during[0]
