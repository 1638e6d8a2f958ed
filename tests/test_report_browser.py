"""The HTML report in a real headless browser: it loads cleanly and its charts render."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest
from report_docs import current_doc, extended_doc

from llmopt.report import write_report

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="needs Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver); "
    ".ci/run installs them with apt-get",
)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the dev extra")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1280,1600", f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SE_OFFLINE", "true")  # never let Selenium Manager fetch anything
        driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _open(browser: Any, tmp_path: Path, doc: dict[str, Any]) -> None:
    page = tmp_path / "report.html"
    write_report(doc, page)
    browser.get_log("browser")  # drop what earlier pages logged
    browser.get(page.as_uri())


def _boxes(browser: Any, selector: str) -> list[dict[str, float]]:
    script = (
        "return Array.from(document.querySelectorAll(arguments[0]))"
        ".map(e => { const r = e.getBoundingClientRect(); return {w: r.width, h: r.height}; });"
    )
    return browser.execute_script(script, selector)


@pytest.mark.parametrize("make_doc", [current_doc, extended_doc], ids=["current", "extended"])
def test_report_loads_without_console_errors_and_draws_its_charts(
    browser: Any, tmp_path: Path, make_doc: Any
) -> None:
    _open(browser, tmp_path, make_doc())
    assert browser.title == "llmopt report"
    problems = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    assert problems == []
    charts = _boxes(browser, "svg.chart")
    assert len(charts) == 4  # two metrics by variant, two deltas against the baseline
    assert all(c["w"] > 100 and c["h"] > 30 for c in charts)
    dots = _boxes(browser, "svg.chart circle.dot")
    assert len(dots) == 6 and all(d["w"] > 0 and d["h"] > 0 for d in dots)
    assert max(w["w"] for w in _boxes(browser, "svg.chart line.whisker")) > 50  # baseline [0, 1]


def test_user_text_stays_text(browser: Any, tmp_path: Path) -> None:
    _open(browser, tmp_path, current_doc())
    assert browser.execute_script("return document.querySelectorAll('script, b').length") == 0
    body = browser.find_element("tag name", "body").text
    assert "<script>alert(1)</script>" in body and "question q1 <b>bold</b>" in body


def test_the_case_filter_hides_passing_cases(browser: Any, tmp_path: Path) -> None:
    doc = current_doc()  # a check on the baseline too: its misses are failures then
    doc["scenarios"][0]["assertions"].append(
        {"id": "b", "variant": "baseline", "metric": "contains", "outcome": "failed", "observed": 1 / 3,
         "expected": ">= 0.5", "delta": None, "vs": None, "message": ""})
    _open(browser, tmp_path, doc)

    def visible(css: str) -> int:
        return sum(1 for e in browser.find_elements("css selector", css) if e.is_displayed())

    assert (visible("tr.case-ok"), visible("tr.case-failed"), visible("tr.case-error")) == (3, 2, 1)
    browser.find_element("css selector", "label[for=show-failed]").click()
    assert (visible("tr.case-ok"), visible("tr.case-failed"), visible("tr.case-error")) == (0, 2, 1)
    browser.find_element("css selector", "label[for=show-errors]").click()
    assert (visible("tr.case-ok"), visible("tr.case-failed"), visible("tr.case-error")) == (0, 0, 1)
    browser.find_element("css selector", "label[for=show-all]").click()
    assert visible("tr.case-ok") == 3



def test_the_console_check_sees_a_broken_page(browser: Any, tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><title>x</title><img src="missing.png">', encoding="utf-8")
    browser.get_log("browser")
    browser.get(page.as_uri())
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def _long_doc() -> dict[str, Any]:
    """:func:`extended_doc` with long check texts, names and unbroken values."""
    doc = extended_doc()
    entry = doc["scenarios"][0]
    long_check = ">= baseline + 0.05 at 95% confidence under holm, non-inferiority margin " * 4
    for a in entry["assertions"]:
        a["expected"] = long_check.strip()
        a["message"] = "contains: rag - baseline = +0.500 " + "x" * 400
        a["id"] = "specs/helpdesk.yaml::" + "very-long-scenario-name-" * 10
    variant = entry["variants"]["rag"]
    variant["identity"]["model"] = "m-" + "rag" * 120
    variant["identity"]["params"] = {f"parameter_{i}": "value-" * 8 for i in range(6)}
    for case in variant["cases"]:
        case["id"] = "case-" + "0123456789" * 20
        case["expected"] = "y" * 600
        case["scores"] = {f"metric_with_a_long_name_{i}": 0.5 for i in range(4)} | case["scores"]
    return doc


def test_the_report_has_no_horizontal_overflow_at_1400_px(browser: Any, tmp_path: Path) -> None:
    browser.set_window_size(1400, 1000)
    try:
        _open(browser, tmp_path, _long_doc())
        widths = browser.execute_script(
            "return [document.documentElement.scrollWidth, window.innerWidth, document.body.scrollWidth]"
        )
        browser.save_screenshot(str(tmp_path / "report-1400.png"))
    finally:
        browser.set_window_size(1280, 1600)
    assert widths[1] <= 1400
    assert widths[0] <= widths[1] and widths[2] <= widths[1], widths
    body = browser.find_element("tag name", "body").text
    assert "non-inferiority margin" in body  # the long check text is shown, not cut away
