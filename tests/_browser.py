"""Headless Chromium for page tests: Debian's chromium and chromium-driver, driven by selenium.

``make test`` installs both where it can (``make browser``); where no browser can be installed the
tests that need one skip with a message saying what is missing and how to get it.
"""

import contextlib
import shutil

import pytest

CHROMIUM = ("/usr/bin/chromium", "chromium", "chromium-browser")
DRIVER = ("/usr/bin/chromedriver", "chromedriver")
#: the flags this workplace's machines need: no sandbox as root, and no background network traffic
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage")


def _find(names):
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    return None


@contextlib.contextmanager
def chromium(width: int = 1280, height: int = 1000):
    """A headless Chromium (selenium WebDriver) with console logging on; skips the test when unavailable."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (pip install -e '.[test]')")
    browser, driver_path = _find(CHROMIUM), _find(DRIVER)
    if browser is None or driver_path is None:
        pytest.skip("no headless browser: install Debian's chromium and chromium-driver (make browser, as root)")
    options = webdriver.ChromeOptions()
    for flag in FLAGS + (f"--window-size={width},{height}",):
        options.add_argument(flag)
    options.binary_location = browser
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        driver = webdriver.Chrome(service=Service(driver_path), options=options)
    except Exception as err:  # a browser that cannot start here: say so rather than fail
        pytest.skip(f"chromium did not start: {type(err).__name__}: {str(err).splitlines()[0]}")
    try:
        yield driver
    finally:
        driver.quit()
