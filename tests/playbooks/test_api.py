"""GET /api/v1/playbooks: what each role may start; partners see none; admin reload."""

import shutil
from pathlib import Path

import pytest

from emergency.app import create_app

REPO = Path(__file__).resolve().parent.parent.parent


@pytest.fixture
def people(make_school, make_person, make_partner, login):
    school = make_school()
    return {
        "principal": login(make_person("school_admin", [school])),
        "teacher": login(make_person("teacher", [school])),
        "district": login(make_person("district_admin", [])),
        "partner": login(make_partner([school])),
    }


def test_list_says_what_each_role_may_start(client, people):
    teacher = {p["key"]: p["can_start"] for p in client.get("/api/v1/playbooks", headers=people["teacher"]).get_json()}
    principal = {p["key"]: p["can_start"]
                 for p in client.get("/api/v1/playbooks", headers=people["principal"]).get_json()}
    assert {"hold", "secure", "lockdown", "evacuate", "shelter"} <= set(teacher)
    assert teacher["lockdown"] == {"drill": False, "real": True}
    assert principal["lockdown"] == {"drill": True, "real": True}
    assert principal["early_dismissal"]["real"] is False


def test_one_playbook_in_full(client, people):
    body = client.get("/api/v1/playbooks/lockdown", headers=people["principal"]).get_json()
    assert body["directive"] == "Locks, lights, out of sight."
    assert body["notifications"] and body["version"]
    assert client.get("/api/v1/playbooks/nope", headers=people["principal"]).status_code == 404


def test_partners_see_neither_list(client, people):
    assert client.get("/api/v1/playbooks", headers=people["partner"]).status_code == 403
    assert client.get("/api/v1/playbooks/lockdown", headers=people["partner"]).status_code == 403


def test_reload_keeps_the_last_good_version_of_a_broken_file(make_config, tmp_path, database_url):
    folder = tmp_path / "playbooks"
    shutil.copytree(REPO / "playbooks", folder)
    app = create_app(make_config(PLAYBOOKS_DIR=str(folder)))
    registry = app.extensions["playbooks"]
    version = registry.get("hold").version
    (folder / "hold.yaml").write_text((folder / "hold.yaml").read_text() + "\nescalte_after: 3\n")
    problems = registry.load()
    assert problems and "hold.yaml" in str(problems[0])
    assert registry.get("hold").version == version
    app.extensions["db"]["engine"].dispose()


def test_only_district_admins_reload(client, people):
    assert client.post("/api/v1/playbooks/reload", headers=people["principal"]).status_code == 403
    response = client.post("/api/v1/playbooks/reload", headers=people["district"])
    assert response.status_code == 200
    assert "lockdown" in response.get_json()["loaded"] and response.get_json()["problems"] == []
