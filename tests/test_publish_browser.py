"""The HTML board in a real browser (issue 15, item 6): headless Chromium through selenium.

Chromium and chromedriver come from Debian's packages (``.ci/run`` installs them when missing).
Under CI (``CI=true``) a missing browser fails the test; elsewhere it skips and says why.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from robustbench_med.cli import main
from robustbench_med.report.board import board_rows
from robustbench_med.report.entries import read_entries
from robustbench_med.report.latest import latest_entries
from robustbench_med.report.screenshot import browser_paths
from tests.test_publish_fixtures import add_entry, board_counts, external_entry, import_real_board


def need_browser() -> None:
    missing = []
    if browser_paths() is None:
        missing.append("Chromium and chromedriver (apt-get install -y chromium chromium-driver)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip install -e '.[test]')")
    if missing:
        message = f"the browser test needs {' and '.join(missing)}"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message, pytrace=False)
        print(f"skipping: {message}")
        pytest.skip(message)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> tuple[Path, list]:
    """The real board plus one entry from elsewhere, rendered with ``render --screenshot``."""
    need_browser()
    root = tmp_path_factory.mktemp("browser")
    entries = import_real_board(root / "entries")
    add_entry(entries, external_entry())
    out = root / "site"
    assert main(["leaderboard", "render", str(entries), "--out", str(out), "--screenshot"]) == 0
    return out, board_rows(latest_entries(read_entries(entries)))


@pytest.fixture(scope="module")
def page(site):
    from robustbench_med.report.screenshot import open_browser

    out, _rows = site
    driver = open_browser()
    driver.get((out / "index.html").resolve().as_uri())
    yield driver
    driver.quit()


def body_rows(driver) -> list:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, "table.board tbody tr")


def column_values(driver, header: str) -> list[str]:
    from selenium.webdriver.common.by import By

    heads = [th.text for th in driver.find_elements(By.CSS_SELECTOR, "table.board thead th")]
    index = heads.index(header)
    return [row.find_elements(By.TAG_NAME, "td")[index].get_attribute("data-v") for row in body_rows(driver)]


def test_the_table_has_one_row_per_board_row(page, site):
    _out, rows = site
    # at least one row per entry on the CSV board (older measurements left out), plus the one from elsewhere
    assert len(body_rows(page)) == len(rows) >= board_counts()["shown"] + 1
    files = {row.get_attribute("data-model") for row in body_rows(page)}
    assert {"resnet18", "mail_rn18", "robust_mail", "robust_mail-rpf-only"} <= files


def test_sorting_by_a_column_reorders_the_rows(page):
    from selenium.webdriver.common.by import By

    before = column_values(page, "clean ACC")
    header = next(th for th in page.find_elements(By.CSS_SELECTOR, "table.board thead th")
                  if th.text == "clean ACC")
    header.click()
    ascending = column_values(page, "clean ACC")
    assert ascending != before
    assert [float(v) for v in ascending] == sorted(float(v) for v in before)
    header.click()
    assert [float(v) for v in column_values(page, "clean ACC")] == sorted((float(v) for v in before),
                                                                          reverse=True)
    assert "sorted-desc" in header.get_attribute("class")


def test_the_filters_hide_rows(page, site):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    _out, rows = site
    verdict = Select(page.find_element(By.ID, "filter-verdict"))
    verdict.select_by_value("fail")
    shown = [r for r in body_rows(page) if r.is_displayed()]
    assert len(shown) == sum(r.verdict() == "fail" for r in rows) and 0 < len(shown) < len(rows)
    assert all(r.get_attribute("data-verdict") == "fail" for r in shown)
    Select(page.find_element(By.ID, "filter-dataset")).select_by_value("d14")
    both = [r for r in body_rows(page) if r.is_displayed()]
    assert len(both) == sum(r.verdict() == "fail" and r.dataset == "d14" for r in rows) < len(shown)
    assert page.find_element(By.ID, "shown").text == f"{len(both)} of {len(rows)} rows shown"
    verdict.select_by_value("")
    Select(page.find_element(By.ID, "filter-dataset")).select_by_value("")
    assert all(r.is_displayed() for r in body_rows(page))


def test_a_flagged_row_is_marked_with_the_check_that_fired(page):
    from selenium.webdriver.common.by import By

    flagged = page.find_elements(By.CSS_SELECTOR, "table.board tbody tr.flagged")
    assert flagged
    cap = next(r for r in flagged if r.get_attribute("data-defense") == "cap"
               and r.get_attribute("data-dataset") == "d12")
    assert "FAIL" in cap.text and "clean-right-on-several-classes" in cap.text
    assert "collapsed: one class" in cap.text
    red = cap.find_element(By.TAG_NAME, "td").value_of_css_property("background-color")
    plain = next(r for r in body_rows(page) if "flagged" not in (r.get_attribute("class") or ""))
    assert red != plain.find_element(By.TAG_NAME, "td").value_of_css_property("background-color")
    external = page.find_element(By.CSS_SELECTOR, "tr.external")
    assert "external" in external.text


def test_a_number_shows_its_n_interval_and_settings_on_hover(page):
    from selenium.webdriver.common.by import By

    row = next(r for r in body_rows(page) if r.get_attribute("data-defense") == "pni"
               and r.get_attribute("data-dataset") == "d12")
    titles = [td.get_attribute("title") for td in row.find_elements(By.TAG_NAME, "td")]
    pgd = next(t for t in titles if t and t.startswith("pgd-10 (paper preset"))
    assert "n = 100" in pgd and "[" in pgd and "settings {" in pgd and "EOT" in pgd
    assert "(−2.0)" in row.text or "(\u22122.0)" in row.text  # the drop from single draw to EOT


def test_the_page_logs_no_script_error_and_the_screenshot_is_saved(page, site, tmp_path):
    out, _rows = site
    errors = [entry for entry in page.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []
    shown = page.execute_script("return document.querySelectorAll('table.board tbody tr').length")
    assert shown == len(_rows) > board_counts()["shown"]
    board = out / "board.png"
    assert board.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and board.stat().st_size > 10_000
    page.save_screenshot(str(tmp_path / "page.png"))
    shutil.copy(board, tmp_path / "board.png")


def test_a_dataset_page_shows_its_rows_budget_and_sweep_plot(page, site):
    out, rows = site
    page.get((out / "d12.html").resolve().as_uri())
    try:
        assert len(body_rows(page)) == sum(r.dataset == "d12" for r in rows)
        loaded = page.execute_script(
            "return Array.from(document.images).map(i => i.complete && i.naturalWidth)")
        assert loaded and all(width > 0 for width in loaded)  # the SVG sweep, drawn from the entries
        budget = page.execute_script("return document.querySelector('.budget').textContent")
        assert "Budget these rows were measured with" in budget and "20 ep, paper, 28px" in budget
    finally:
        page.get((out / "index.html").resolve().as_uri())
