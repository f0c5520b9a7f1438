"""``python -m crimecast ingest``: the same run, from a terminal, progress on stderr."""

from __future__ import annotations

import json

import pytest

from crimecast.jobs import ingest
from crimecast.tools.cli import main
from tests.ingest.conftest import assert_same_counts, csv_path, groups, incidents, page_size, pages, recount, stored


def test_backfill_then_incremental_from_a_portal_url(aws, portal, capsys) -> None:
    size = page_size(2.5)  # 5,000 on the whole extract: 3 pages
    assert main(["ingest", "--backfill", "--socrata-url", portal.url, "--as-of", "2022-12-10", "--page-size", str(size)]) == 0
    out, err = capsys.readouterr()
    run = json.loads(out)
    assert run["status"] == "succeeded" and run["detail"]["trigger"] == "cli" and run["detail"]["source"] == portal.url
    assert f"[ingest] [22/22] 2022-01..2022-12: {groups():,} rows in {pages(size)} page(s), {incidents():,} incidents" in err
    assert "[ingest] published v" in err
    assert_same_counts(stored(aws), recount(portal))
    assert main(["ingest", "--window-months", "3", "--socrata-url", portal.url, "--as-of", "2022-12-10"]) == 0
    run = json.loads(capsys.readouterr().out)
    assert run["detail"]["window"] == {"from": "2022-10", "to": "2022-12"} and run["detail"]["changes"]["cells_changed"] == 0


def test_the_portal_url_comes_from_the_environment_too(aws, portal, capsys, monkeypatch) -> None:
    monkeypatch.setenv("CRIMECAST_SOCRATA_URL", portal.url)
    assert main(["ingest", "--backfill", "--as-of", "2022-12-10"]) == 0
    assert json.loads(capsys.readouterr().out)["detail"]["source"] == portal.url


def test_from_file_imports_a_portal_export_through_the_same_path(aws, portal, capsys) -> None:
    assert main(["ingest", "--backfill", "--from-file", str(csv_path())]) == 0
    run = json.loads(capsys.readouterr().out)
    assert run["detail"]["source"] == "file:crimes_2022_jan_nov_slim.csv.gz" and run["detail"]["pages"] == 0
    assert_same_counts(stored(aws), recount(portal))


def test_a_crashed_run_is_resumed_by_id(aws, portal, capsys, monkeypatch) -> None:
    portal.add_fault("500", times=-1, match="date >= '2022")
    monkeypatch.setattr(ingest, "_portal_source", _quick(ingest._portal_source))
    assert main(["ingest", "--backfill", "--socrata-url", portal.url, "--as-of", "2022-12-10"]) == 1
    out, err = capsys.readouterr()
    run = json.loads(out)
    assert run["status"] == "failed" and f"error: ingest run {run['run_id']} failed: the portal at" in err
    portal.state.faults.clear()
    assert main(["ingest", "--resume", run["run_id"]]) == 0
    assert "carrying on, 21 of 22 queries done" in capsys.readouterr().err
    assert_same_counts(stored(aws), recount(portal))


def _quick(make):
    """The CLI's client, with back-offs of a few milliseconds."""
    from crimecast.adapters.socrata import RetryPolicy

    def quick(detail, progress, page_size=None):
        source = make(detail, progress, page_size)
        source.client.retry = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02)
        return source

    return quick


@pytest.mark.parametrize(("argv", "message"), [
    (["ingest", "--window-months", "1"], "window_months must be 2..480"),
    (["ingest", "--resume", "ingest-nope"], "no run 'ingest-nope'"),
    (["ingest", "--from-file", "/no/such/file.csv"], "counts file not found"),
])
def test_bad_input_is_a_clear_error(aws, capsys, argv: list[str], message: str) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_backfill_and_a_window_exclude_each_other(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["ingest", "--backfill", "--window-months", "5"])
    assert exit_.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
