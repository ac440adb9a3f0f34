"""A screenshot of the rendered board in headless Chromium (the README shows it).

Chromium and its driver come from the system's packages (``apt-get install chromium
chromium-driver`` on Debian; ``.ci/run`` installs them when missing); selenium drives them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from robustbench_med.errors import MedrobustError

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")


def browser_paths() -> tuple[str, str] | None:
    """(browser, driver) executables, or None when either is missing."""
    browser = next((p for p in map(shutil.which, CHROMIUM) if p), None)
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def open_browser(width: int = 1600, height: int = 1000):
    """A headless Chromium under selenium; the caller quits it."""
    found = browser_paths()
    if found is None:
        raise MedrobustError("no Chromium and chromedriver on PATH (Debian: apt-get install -y chromium "
                             "chromium-driver)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        raise MedrobustError("selenium is not installed (pip install -e '.[test]')") from None
    options = webdriver.ChromeOptions()
    options.binary_location = found[0]
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}", "--allow-file-access-from-files"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=found[1]), options=options)


def take_screenshot(page: Path, png: Path) -> Path:
    """Open ``page`` (a local HTML file) and save what the browser shows as ``png``."""
    driver = open_browser()
    try:
        driver.get(page.resolve().as_uri())
        png.parent.mkdir(parents=True, exist_ok=True)
        if not driver.save_screenshot(str(png)):
            raise MedrobustError(f"Chromium could not save a screenshot of {page}")
    finally:
        driver.quit()
    return png
