"""The shipped code lists load whole, with descriptions; a user's newer list replaces ours."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import pytest

from bot.codelists import FILES, SHIPPED_DIR, load_codelists, provenance, shipped_codelists
from bot.errors import ConfigError
from bot.models import CodeSystem


def _rows(name: str) -> list[dict[str, str]]:
    with (SHIPPED_DIR / name).open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("system", list(FILES))
def test_every_shipped_code_loads_with_its_description(system: CodeSystem) -> None:
    lists = shipped_codelists()
    rows = [r for name in FILES[system] for r in _rows(name) if r.get("va_local_entry") != "Y"]
    assert rows
    for row in rows:
        code = lists.get(system, row["code"])
        assert code is not None, row["code"]
        assert code.description and code.description == lists.describe(system, row["code"])


def test_the_attribution_ships_with_the_lists() -> None:
    readme = (SHIPPED_DIR / "README.md").read_text(encoding="utf-8")
    assert "WorldVistA/VistA-M" in readme and "mcollie007/hippo" in readme


def test_va_local_codes_never_shadow_ncpdp_codes() -> None:
    lists = shipped_codelists()
    local = [r for r in _rows("ncpdp_reject_codes_vista.csv") if r["va_local_entry"] == "Y"]
    assert len(local) >= 7
    assert lists.describe(CodeSystem.NCPDP_REJECT, "ET") == "M/I Quantity Prescribed"  # not VA's "eT"
    assert lists.describe(CodeSystem.NCPDP_REJECT, "eT") == "M/I Quantity Prescribed"
    assert lists.get(CodeSystem.NCPDP_REJECT, "*97") is None


def test_retired_codes_are_known_but_not_active() -> None:
    lists = shipped_codelists()
    retired = [r["code"] for r in _rows("carc_vista.csv") if r["stop_date"]]
    assert retired
    assert all(not lists.get(CodeSystem.CARC, c).active for c in retired)  # type: ignore[union-attr]
    assert len(lists.active_codes(CodeSystem.CARC)) == len(_rows("carc_vista.csv")) - len(retired)


def test_a_users_newer_list_replaces_the_shipped_one(tmp_path: Path) -> None:
    (tmp_path / "carc_vista.csv").write_text(
        "code,description\n50,Newer wording for 50\nZZ9,A brand new code\n"
    )
    lists = load_codelists(tmp_path)
    assert lists.describe(CodeSystem.CARC, "50") == "Newer wording for 50"
    assert lists.describe(CodeSystem.CARC, "zz9") == "A brand new code"
    assert lists.describe(CodeSystem.RARC, "M1") == shipped_codelists().describe(CodeSystem.RARC, "M1")
    assert lists.sources[CodeSystem.CARC] == [tmp_path / "carc_vista.csv"]


def test_a_malformed_list_names_its_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "rarc_vista.csv").write_text("code,description\nM1,fine\n,no code here\n")
    with pytest.raises(ConfigError, match=r"rarc_vista.csv, line 3: empty code"):
        load_codelists(tmp_path)


def test_a_missing_override_folder_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="PAYERBOT_CODELISTS_DIR"):
        load_codelists(tmp_path / "nope")


def test_a_stopped_code_keeps_its_stop_date() -> None:
    lists = shipped_codelists()
    w8 = lists.get(CodeSystem.CARC, "W8")
    assert w8 is not None and not w8.active and w8.deactivated == date(2014, 7, 1)
    assert lists.get(CodeSystem.CARC, "45").deactivated is None  # type: ignore[union-attr]
    x0 = lists.get(CodeSystem.X12_CATEGORY, "X0")  # hippo writes MM/DD/YYYY
    assert x0 is not None and not x0.active and x0.deactivated == date(2003, 10, 16)
    for system in FILES:
        assert all(c.active == (c.deactivated is None) for c in lists.codes[system].values())


def test_each_code_names_its_file_and_the_file_its_provenance() -> None:
    lists = shipped_codelists()
    r3 = lists.get(CodeSystem.X12_CATEGORY, "R3")  # the later VistA file wins over hippo's
    assert r3 is not None and r3.source == SHIPPED_DIR / "claim_status_category_R_codes_vista.csv"
    for names in FILES.values():
        for name in names:
            line = provenance(SHIPPED_DIR / name)
            assert "licence" in line and "no provenance" not in line, name


def test_a_users_list_is_named_as_theirs_and_a_bad_stop_date_is_refused(tmp_path: Path) -> None:
    (tmp_path / "rarc_vista.csv").write_text("code,description,stop_date\nM1,fine,2030-01-31\n")
    m1 = load_codelists(tmp_path).get(CodeSystem.RARC, "M1")
    assert m1 is not None and m1.deactivated == date(2030, 1, 31) and m1.source is not None
    assert "PAYERBOT_CODELISTS_DIR" in provenance(m1.source)
    (tmp_path / "rarc_vista.csv").write_text("code,description,stop_date\nM1,fine,soon\n")
    with pytest.raises(ConfigError, match=r"rarc_vista.csv, line 2: stop date 'soon'"):
        load_codelists(tmp_path)


def test_search_finds_every_word_and_stops_at_the_limit() -> None:
    lists = shipped_codelists()
    found = lists.search(CodeSystem.NCPDP_REJECT, "prior AUTHORIZATION required")
    assert "75" in [c.code for c in found]
    assert all(w in c.description.lower() for c in found for w in ("prior", "authorization", "required"))
    assert len(lists.search(CodeSystem.RARC, "missing", limit=5)) == 5
