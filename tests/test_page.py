"""The drawing page in a real browser: headless Chromium drives it with mouse events."""
import json
import os
import shutil
import urllib.request

import numpy as np
import pytest
from helpers import served, tiny_checkpoint

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
selenium = pytest.importorskip("selenium", reason="selenium is not installed (pip install -r requirements.txt)")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER),
                                reason="no Chromium here: apt-get install -y chromium chromium-driver (.ci/run does)")
SHOT = os.environ.get("PAGE_SCREENSHOT")  # where to keep the screenshot, for the README


@pytest.fixture(scope="module")
def page_server(tiny_run):
    with served(tiny_run[0], tiny_checkpoint(tiny_run)) as (base, _):
        yield base + "/"


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1300,1300"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def draw_with_the_mouse(driver, canvas, image):
    """Trace a 28x28 image on the 280x280 pad: one mouse stroke along each run of ink in each row."""
    from selenium.webdriver.common.action_chains import ActionChains

    cell, half = 10, 140
    for y, row in enumerate(image.reshape(28, 28) > 0.5):
        xs = np.flatnonzero(row)
        for run in np.split(xs, np.flatnonzero(np.diff(xs) > 1) + 1) if len(xs) else []:
            x0, x1, cy = run[0] * cell + 5 - half, run[-1] * cell + 5 - half, y * cell + 5 - half
            ActionChains(driver).move_to_element_with_offset(canvas, x0, cy).click_and_hold() \
                .move_by_offset(max(x1 - x0, 1), 0).release().perform()


@pytest.mark.slow
def test_drawing_a_real_mnist_digit_shows_the_models_reading(page_server, browser, mnist, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(page_server)
    canvas = browser.find_element(By.ID, "pad")
    image = mnist.test.images[0]  # a 7
    draw_with_the_mouse(browser, canvas, image)
    WebDriverWait(browser, 60).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state")
                                     == "done")

    # The page shows what the server answers for the drawing it sent.
    drawing = browser.execute_script("return window.lastDrawing;")
    request = urllib.request.Request(page_server + "api/read", data=json.dumps(drawing).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        expected = json.load(response)
    answer = browser.find_element(By.ID, "answer")
    assert answer.get_attribute("data-digit") == str(expected["answer"])
    assert answer.text == f"Answer: {expected['answer']}"
    assert len(browser.find_elements(By.CSS_SELECTOR, "#steps tr.step")) == 28
    assert browser.find_element(By.ID, "row").text == f"after row 28 of 28: {expected['answer']}"
    # What the model saw is the digit that was drawn.
    assert np.corrcoef(expected["image"], image)[0, 1] > 0.7
    # Its gates, beside: the page holds and draws what the model gives for that image.
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, "gates").get_attribute("data-filled") == "true")
    with urllib.request.urlopen(urllib.request.Request(page_server + "api/gates", data=json.dumps(drawing).encode(),
                                                       headers={"Content-Type": "application/json"}),
                                timeout=30) as response:
        expected_gates = json.load(response)
    assert browser.execute_script("return window.lastGates;") == expected_gates
    assert not browser.find_element(By.ID, "layers").is_displayed()  # one layer: no choice to make
    expected_gates = expected_gates["layers"][0]
    keep = np.array(expected_gates["keep"])
    assert keep.shape == (28, 128) and 0 < keep.min() and keep.max() < 1
    width, height, pixels = browser.execute_script(KEEP_MAP)
    assert (width, height) == (28 * 6, 128 * 2)
    assert_drawn_as(pixels, height, width, 2, keep, expected_gates["units"])
    browser.save_screenshot(SHOT or str(tmp_path / "page.png"))

    # Undo every stroke: the page is empty again.
    strokes = browser.execute_script("return strokes.length;")
    for _ in range(strokes):
        browser.find_element(By.ID, "undo").click()
    WebDriverWait(browser, 10).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state")
                                     == "empty")
    assert answer.text == "Draw a digit."


KEEP_MAP = ("const c = document.getElementById('gate-keep'); "
            "return [c.width, c.height, Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)];")


def assert_drawn_as(pixels, height, width, unit_pixels, keep, units):
    """A keep gate map's pixels are the gate's values, unit by unit (in `units`' order) down, frame by frame across."""
    green = np.array(pixels).reshape(height, width, 4)[::unit_pixels, 3::6, 1]  # the centre of each (unit, row) cell
    expected_green = np.round(255 * np.round(255 * keep.T[units]) / 255)  # as gateColour draws it
    assert np.abs(green[:, :-1] - expected_green[:, :-1]).max() <= 1  # the last frame is outlined in red


@pytest.mark.slow
def test_a_stacked_model_offers_each_layers_gates(stacked_run, browser, mnist):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.ui import WebDriverWait

    with served(stacked_run[0], tiny_checkpoint(stacked_run)) as (base, _):
        browser.get(base + "/")
        draw_with_the_mouse(browser, browser.find_element(By.ID, "pad"), mnist.test.images[0])
        WebDriverWait(browser, 60).until(lambda d: d.find_element(By.ID, "gates").get_attribute("data-filled")
                                         == "true")
        WebDriverWait(browser, 60).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state")
                                         == "done")
        choice = Select(browser.find_element(By.ID, "layer"))
        assert browser.find_element(By.ID, "layers").is_displayed()
        assert [option.text for option in choice.options] == ["layer 1 (reads the image)", "layer 2"]
        layers = browser.execute_script("return window.lastGates.layers;")
        assert len(layers) == 2 and layers[0]["keep"] != layers[1]["keep"]
        for index in (1, 0):
            choice.select_by_index(index)
            width, height, pixels = browser.execute_script(KEEP_MAP)
            assert (width, height) == (28 * 6, 16 * 16)  # 16 units of 16 pixels each
            assert_drawn_as(pixels, height, width, 16, np.array(layers[index]["keep"]), layers[index]["units"])


HOLD_THE_ANSWERS = """
window.held = []; window.answered = 0;
const fetchNow = window.fetch;
window.fetch = (...args) => new Promise((resolve) => window.held.push(() => fetchNow(...args).then((response) => {
  const body = response.json.bind(response);
  response.json = async () => { const value = await body(); window.answered += 1; return value; };
  resolve(response);
})));
"""


@pytest.mark.slow
def test_an_answer_that_comes_after_the_last_undo_is_not_shown(page_server, browser, mnist):
    """Undo quickly: the server's answer to the drawing before the last undo comes after the page is empty."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(page_server)
    top_half = mnist.test.images[0].copy()  # a few strokes are enough
    top_half[28 * 14:] = 0
    draw_with_the_mouse(browser, browser.find_element(By.ID, "pad"), top_half)
    WebDriverWait(browser, 60).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state")
                                     == "done")
    browser.execute_script(HOLD_THE_ANSWERS)
    strokes = browser.execute_script("return strokes.length;")
    for _ in range(strokes):
        browser.find_element(By.ID, "undo").click()
    # each undo but the last asks for the reading and the gates; the last asks nothing
    assert browser.execute_script("return window.held.length;") == 2 * (strokes - 1)
    assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "empty"
    browser.execute_script("for (const answer of window.held) answer();")
    WebDriverWait(browser, 30).until(lambda d: d.execute_script("return window.answered;") == 2 * (strokes - 1))
    assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "empty"
    assert browser.find_element(By.ID, "answer").text == "Draw a digit."
    assert browser.find_element(By.ID, "gates").get_attribute("data-filled") == "false"


@pytest.mark.slow
def test_a_permuted_run_plays_back_every_28th_pixel_dimming_the_pixels_not_read_yet(permuted_run, browser, mnist):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with served(*permuted_run) as (base, reader):
        browser.get(base + "/")
        draw_with_the_mouse(browser, browser.find_element(By.ID, "pad"), mnist.test.images[0])
        WebDriverWait(browser, 60).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state")
                                         == "done")
        answer = browser.find_element(By.ID, "answer").get_attribute("data-digit")
        assert len(browser.find_elements(By.CSS_SELECTOR, "#steps tr.step")) == 28
        assert browser.find_element(By.CSS_SELECTOR, "#steps th").text == "pixel"
        assert browser.find_element(By.ID, "row").text == f"after pixel 784 of 784: {answer}"
        assert browser.find_element(By.ID, "how").text == "784 pixels, one per time step, in a fixed random order"
        # The first frame of a white image: the 28 pixels read first at full light, the others dimmed.
        green = browser.execute_script("""
            drawSeen(new Array(784).fill(1), 0, arguments[0]);
            const data = seen.getContext("2d").getImageData(0, 0, seen.width, seen.height).data, cell = seen.width / 28;
            const centres = [];
            for (let y = 0; y < 28; y++) for (let x = 0; x < 28; x++)
              centres.push(data[4 * ((y * cell + cell / 2) * seen.width + x * cell + cell / 2) + 1]);
            return centres;""", reader.reading)
    expected = np.full(784, 64)
    expected[reader.reading["order"][:28]] = 255
    assert green == expected.tolist()
