"""The audit as an HTML page: content, order, reasons, and clearly labelled gaps for bad input."""

import math
import re

import torch

from captum_slingshot.checks import AuditReport, audit_layer
from captum_slingshot.checks.html import audit_html, image_data_uri

from .conftest import LAYER, MANIPULATED


def _rows(page):
    return re.findall(r'<tr class="unit-row[^"]*" data-unit="([^"]+)"', page)


def test_the_toy_audit_page(reports, toy):
    rep = reports["manipulated"]
    page = audit_html(rep, title="toy audit")
    units = _rows(page)
    assert len(units) == 10 and units[0] == str(MANIPULATED)  # most suspicious first
    assert f"{len(rep.flagged)} of 10 units" in page and "&#9873; flagged" in page  # a word and a symbol
    # one panel per unit, open for flagged ones, with a reason per check in plain words
    assert page.count('<details class="unit') == 10
    assert page.count("<details class=\"unit is-flagged\"") == len(rep.flagged)
    panel = page[page.index(f'id="unit-{MANIPULATED}"'):]
    panel = panel[: panel.index("</details>")]
    assert "natural ranges above the highest activation seen on natural data" in panel  # activation_excess
    assert "of its input-gradient field" in panel  # slingshot_field
    assert "far from its own top natural images" in panel  # natural_gap
    # images: FV rows per rendered strategy, the top natural images, the field's q*, each with alt text
    for label in ("FV gc", "FV tr", "FV adam", "FV gc@lucent_fourier", "top natural", "field q*"):
        assert f"<figcaption>{label}</figcaption>" in panel, label
    assert all(alt for alt in re.findall(r'alt="([^"]*)"', page))
    assert '<svg class="traj"' in panel and '<svg class="strip"' in panel and "natural max" in panel
    assert "http://" not in page and "https://" not in page  # self-contained


def test_an_empty_report_is_a_page_that_says_so(tmp_path):
    rep = AuditReport("fc", [], ["c"], {"c": True}, {"c": torch.zeros(0)}, {"c": torch.zeros(0)}, torch.zeros(0), 3.5)
    page = open(rep.to_html(tmp_path / "empty.html")).read()
    assert "No units were audited: the report is empty." in page and "no units" in page
    assert page.rstrip().endswith("</html>")


def test_nan_scores_and_missing_natural_data_are_labelled_gaps():
    nan = float("nan")
    rep = AuditReport("fc", [0, 1, 2], ["c"], {"c": True}, {"c": torch.tensor([0.1, nan, 5.0])},
                      {"c": torch.tensor([0.0, nan, 9.0])}, torch.tensor([0.0, nan, 9.0]), 3.5)
    page = audit_html(rep)
    assert _rows(page) == ["2", "0", "1"]  # the NaN unit last
    row = re.search(r'data-unit="1">(.*?)</tr>', page).group(1)
    assert row.count(">n/a<") == 3 and 'data-sort=""' in row  # NaN cells say n/a and sort last
    assert "No natural data was given to the audit" in page  # no check gave top images
    assert "No FV was rendered for this unit" in page
    assert "n/a (no finite score)" in page


def test_a_check_without_natural_data_still_renders(toy):
    rep = audit_layer(toy.clean, LAYER, param=toy.param, checks=("strategy_divergence",), n_starts=2, steps=10,
                      progress=False)
    page = audit_html(rep)
    assert "No natural data was given to the audit" in page and "FV gc@lucent_fourier" in page
    assert not math.isnan(float(rep.combined.sum()))


def test_images_are_embedded_small():
    gray = image_data_uri(torch.rand(4, 1, 28, 28))
    rgb = image_data_uri(torch.rand(4, 3, 64, 64))
    assert gray.startswith("data:image/png;base64,") and rgb.startswith("data:image/jpeg;base64,")
    assert len(rgb) < 40_000  # JPEG keeps 64 units x 5 rows of colour FVs under a few MB
