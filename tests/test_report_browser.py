"""The audit report as a reader opens it: headless Chromium on the demo's page and on a 64-unit AlexNet audit."""

import os
import shutil
import time

import pytest

from ._browser import chromium


def _severe(logs):
    return [entry for entry in logs if entry.get("level") == "SEVERE"]


def test_the_demos_audit_page_in_a_browser(demo_run, tmp_path):
    out, _ = demo_run
    page = out / "report.html"
    with chromium() as driver:
        driver.get(page.as_uri())
        assert _severe(driver.get_log("browser")) == []
        rows = driver.find_elements("css selector", "#units-table tbody tr")
        assert len(rows) == 10  # one row per logit
        # sort by pooled z (the first click sorts descending): the manipulated logit comes first, flagged
        header = driver.find_element("xpath", "//table[@id='units-table']//th[button[text()='pooled z']]/button")
        header.click()
        header.click()  # ascending, then descending again: the sort itself is exercised both ways
        first = driver.find_element("css selector", "#units-table tbody tr")
        assert first.get_attribute("data-unit") == "0"
        assert "is-flagged" in first.get_attribute("class") and "flagged" in first.text
        # every image loaded
        widths = driver.execute_script("return Array.from(document.images).map(function (i) { return i.naturalWidth; })")
        assert widths and min(widths) > 0
        assert all(img.get_attribute("alt") for img in driver.find_elements("css selector", "img"))
        height = driver.execute_script("return document.body.scrollHeight")
        driver.set_window_size(1280, min(height + 100, 4000))
        shot = tmp_path / "demo_report_page.png"
        assert driver.save_screenshot(str(shot)) and os.path.getsize(shot) > 10_000
        keep = os.environ.get("CAPTUM_SLINGSHOT_SCREENSHOTS")
        if keep:  # where to keep the screenshots for a person to look at
            os.makedirs(keep, exist_ok=True)
            shutil.copy(shot, os.path.join(keep, shot.name))
        # the filter keeps the flagged unit only
        driver.find_element("id", "flagged-only").click()
        visible = [r for r in driver.find_elements("css selector", "#units-table tbody tr") if r.is_displayed()]
        assert [r.get_attribute("data-unit") for r in visible] == ["0"]
        # a narrow window: the page reflows (no horizontal scroll of the whole page)
        driver.set_window_size(420, 900)
        assert driver.execute_script("return document.documentElement.scrollWidth") <= 440


def test_the_page_reads_without_javascript(demo_run):
    text = (demo_run[0] / "report.html").read_text()
    assert text.count('<tr class="unit-row') == 10 and text.index('data-unit="0"') < text.index('data-unit="1"')
    assert "http://" not in text and "https://" not in text  # no network, no CDN


def test_a_64_unit_alexnet_report_stays_usable(tmp_path):
    """AlexNet's first conv layer (64 channels, the real ImageNet weights offline) audited at 64 px: the page
    stays under 5 MB and a browser opens it in under 2 s."""
    from captum_slingshot.checks import audit_layer
    from captum_slingshot.data import photo_crops
    from captum_slingshot.fv import IMAGENET_MEAN, IMAGENET_STD, PixelParam
    from captum_slingshot.weights import alexnet_features

    try:
        model = alexnet_features().eval()
    except (FileNotFoundError, ValueError) as err:
        pytest.skip(f"AlexNet's offline weights are not available: {err}")
    param = PixelParam((3, 64, 64), mean=IMAGENET_MEAN, std=IMAGENET_STD)
    data = param.normalize(photo_crops(12, "heldout", 64, seed=0)[0])
    report = audit_layer(model, "0", param=param, data=data, n_starts=4, steps=10, progress=False)
    assert len(report.units) == 64
    page = report.to_html(tmp_path / "alexnet.html")
    size = os.path.getsize(page)
    assert size < 5 * 2 ** 20, size
    with chromium() as driver:
        t0 = time.perf_counter()
        driver.get((tmp_path / "alexnet.html").as_uri())
        loaded = time.perf_counter() - t0
        assert _severe(driver.get_log("browser")) == []
        assert len(driver.find_elements("css selector", "#units-table tbody tr")) == 64
        widths = driver.execute_script("return Array.from(document.images).map(function (i) { return i.naturalWidth; })")
        assert len(widths) == 64 * 5 and min(widths) > 0  # 4 FV rows and the top natural images per unit
    assert loaded < 2.0, loaded
