"""The web page in a real headless browser (Debian's chromium + chromium-driver, driven by
selenium): enroll two Omniglot characters through the page, classify a query, check what the
page shows against the API's own answer, remove a class. Saves a screenshot for the README
when REPMET_SCREENSHOT names a file."""

import os
import shutil

import pytest
from PIL import Image

from artifact_fixtures import omniglot_class_images
from serve_tool import Server, b64

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture
def browser():
    if not (CHROMIUM and DRIVER):
        pytest.fail("the page test needs Debian's chromium and chromium-driver (apt-get install chromium "
                    "chromium-driver; .ci/run installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def test_the_page_enrolls_two_classes_classifies_a_query_and_removes_a_class(omniglot_artifact, data_root, tmp_path,
                                                                             browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as shows
    from selenium.webdriver.support.ui import WebDriverWait

    classes = omniglot_class_images(data_root, classes=2)
    files = {}
    for label, images in classes:
        folder = tmp_path / label.replace("/", "_")
        folder.mkdir()
        files[label] = []
        for i, array in enumerate(images[:6]):
            path = folder / f"{i}.png"
            Image.fromarray(array).save(path)
            files[label].append(path)
    wait = WebDriverWait(browser, 30)
    with Server(omniglot_artifact, "--backend", "onnxruntime", "--gallery", tmp_path / "g.npz") as server:
        browser.get(server.url + "/")
        wait.until(shows.text_to_be_present_in_element((By.ID, "task"), "classification"))
        for label, paths in files.items():
            browser.find_element(By.ID, "label").send_keys(label)
            browser.find_element(By.ID, "enroll-files").send_keys("\n".join(str(p) for p in paths[:5]))
            wait.until(shows.text_to_be_present_in_element((By.ID, "status"), "5 image(s) ready"))
            browser.find_element(By.ID, "enroll-button").click()
            wait.until(shows.text_to_be_present_in_element((By.ID, "status"), f"enrolled {label} from 5 image(s)"))
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#classes li")) == 2)
        listed = [li.get_attribute("data-label") for li in browser.find_elements(By.CSS_SELECTOR, "#classes li")]
        assert listed == list(files)

        query_label, query = list(files)[1], files[list(files)[1]][5]
        browser.find_element(By.ID, "query-file").send_keys(str(query))
        wait.until(shows.text_to_be_present_in_element((By.ID, "status"), "classified"))
        shown = browser.find_elements(By.CSS_SELECTOR, "#results li")
        status, answer, _ = server.call("POST", "/classify", {"images": [b64(query)], "top_k": 3})
        expected = answer["predictions"][0]
        assert [li.get_attribute("data-label") for li in shown] == expected["labels"]  # 2 classes: top 2
        assert shown[0].get_attribute("data-label") == query_label
        assert shown[0].text == f"{expected['labels'][0]} ({expected['posteriors'][0]:.3f})"
        if os.environ.get("REPMET_SCREENSHOT"):
            browser.save_screenshot(os.environ["REPMET_SCREENSHOT"])

        browser.find_element(By.CSS_SELECTOR, f'#classes li[data-label="{list(files)[0]}"] button.remove').click()
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#classes li")) == 1)
        assert [c["label"] for c in server.call("GET", "/classes")[1]["classes"]] == [query_label]
        assert browser.find_element(By.ID, "status").get_attribute("class") != "error"
