"""Notebook 06 in a real browser: JupyterLab on loopback, headless Chromium with a fake camera and microphone.

The fake camera and microphone play the real CREMA-D sample clip shipped in ``data/samples/`` (converted to y4m
and WAV with ffmpeg). The notebook runs with ``use_camera=True`` and its default model, the shipped real-data
audio-visual model ``models/av``, once with each capture (ipywebrtc's recorders and the project's anywidget); the
test waits for that model's predictions to appear in the widget and saves a screenshot of each
(``EMOTION_SCREENSHOTS=reports/figures`` refreshes the committed live_demo_browser*.png).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from emotion_lib.labels import EMOTIONS
from emotion_lib.paths import REPO_ROOT, SAMPLE_CLIP
from emotion_lib.realtime.window import DEMO_MODEL

CHROMIUM = "/usr/bin/chromium"
NOTEBOOK = REPO_ROOT / "notebooks" / "06_live_demo.ipynb"
SCREENSHOTS = {"anywidget": "live_demo_browser.png", "ipywebrtc": "live_demo_browser_ipywebrtc.png"}
"""Screenshot names; they go to pytest's temporary folder, or with ``EMOTION_SCREENSHOTS=reports/figures`` over the
committed ones (a test run leaves the working tree as it found it)."""
CAMERA_VIDEO = {"anywidget": ".emo-video", "ipywebrtc": "video:not(.emo-video)"}  # ipywebrtc: CameraStream's view

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def _screenshot_dir(tmp_path: Path) -> Path:
    return Path(os.environ.get("EMOTION_SCREENSHOTS") or tmp_path)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def fake_media(tmp_path_factory) -> tuple[Path, Path]:
    """The real clip as Chromium's fake camera (y4m, 15 fps) and fake microphone (16-bit WAV)."""
    for tool in (CHROMIUM, shutil.which("ffmpeg")):
        if tool is None or not Path(tool).exists():
            pytest.skip("needs Debian's chromium and ffmpeg (bash scripts/install_system_deps.sh)")
    pytest.importorskip("playwright.sync_api", reason="playwright (the dev extra) is not installed")
    clip = SAMPLE_CLIP
    out = tmp_path_factory.mktemp("media")
    video, audio = out / "camera.y4m", out / "microphone.wav"
    _ffmpeg("-i", str(clip), "-vf", "fps=15", "-pix_fmt", "yuv420p", str(video))
    _ffmpeg("-i", str(clip), "-vn", "-ac", "1", "-ar", "48000", "-c:a", "pcm_s16le", str(audio))
    return video, audio


@pytest.fixture(scope="module")
def lab_root(tmp_path_factory) -> Path:
    """A temporary JupyterLab root holding notebook 06 for the camera, once per capture, with its default model."""
    import nbformat
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    root = tmp_path_factory.mktemp("lab")
    parameters = {"use_camera": True, "window_size": 10, "video_fps": 5.0}
    for capture in SCREENSHOTS:
        notebook = parameterize_notebook(load_notebook_node(str(NOTEBOOK)), {**parameters, "capture": capture})
        nbformat.write(notebook, root / _notebook_name(capture))
    return root


def _notebook_name(capture: str) -> str:
    return f"{NOTEBOOK.stem}_{capture}.ipynb"


@pytest.fixture(scope="module")
def jupyterlab(lab_root):
    """JupyterLab on 127.0.0.1 with a random token; yields its base URL and token, shuts it down after."""
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(lab_root / ".runtime")}
    settings = lab_root / ".settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True, exist_ok=True)  # no "get Jupyter news?" prompt over the screenshot
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={lab_root}",
        "--LabApp.expose_app_in_browser=True",
        f"--LabApp.workspaces_dir={lab_root / '.workspaces'}",
        f"--LabApp.user_settings_dir={lab_root / '.settings'}",
        "--ServerApp.port_retries=0",
    ] + (["--allow-root"] if os.geteuid() == 0 else [])  # CI and these machines run as root
    log = open(lab_root / "jupyterlab.log", "wb")  # noqa: SIM115 (open while the server runs)
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=lab_root)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start: {(lab_root / 'jupyterlab.log').read_text()[-2000:]}")
                time.sleep(0.5)
        yield base, token
    finally:
        _shutdown_kernels(base, token)
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def _shutdown_kernels(base: str, token: str, keep: str = "") -> None:
    """Shut down every kernel but the one of the notebook named ``keep`` (if any)."""
    try:
        sessions = json.load(urllib.request.urlopen(f"{base}/api/sessions?token={token}", timeout=5))
        kept = {s["kernel"]["id"] for s in sessions if s.get("kernel") and Path(s.get("path", "")).name == keep}
        kernels = json.load(urllib.request.urlopen(f"{base}/api/kernels?token={token}", timeout=5))
        for kernel in kernels:
            if kernel["id"] in kept:
                continue
            request = urllib.request.Request(f"{base}/api/kernels/{kernel['id']}?token={token}", method="DELETE")
            urllib.request.urlopen(request, timeout=10)
    except OSError:
        pass


BASE_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@contextlib.contextmanager
def notebook_page(base: str, token: str, flags: list[str], capture: str):
    """Headless Chromium with ``flags`` showing notebook 06 for ``capture`` in JupyterLab with all its cells run.

    Each page has a workspace of its own (no notebook of an earlier test reopens next to it) and a browser of its
    own. The kernel of the page's notebook stays up after the page: the next page of the same notebook runs every
    cell again in it (imports and TensorFlow's start-up are paid once); other notebooks' kernels are shut down.
    """
    from playwright.sync_api import sync_playwright

    workspace = f"{capture}-{secrets.token_hex(4)}"
    _shutdown_kernels(base, token, keep=_notebook_name(capture))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=flags)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(f"{base}/lab/workspaces/{workspace}/tree/{_notebook_name(capture)}?token={token}")
            page.wait_for_function(
                """() => {
                    const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
                    const s = w && w.sessionContext && w.sessionContext.session;
                    return s && s.kernel && s.kernel.status === "idle";
                }""",
                timeout=90_000,
            )
            page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
            yield page
        finally:
            browser.close()


def _wait_or_show_panel(page, condition: str, arg: str, timeout_ms: int = 120_000) -> None:
    """Wait for ``condition``; on a timeout, fail with what the widget's panel shows."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(condition, arg=arg, timeout=timeout_ms)
    except PlaywrightTimeout:
        panel = page.evaluate("() => (document.querySelector('.emo-live') || document.body).innerText")
        pytest.fail(f"timed out after {timeout_ms / 1000:.0f} s; the panel shows: {panel!r}")


@pytest.mark.parametrize("capture", ["ipywebrtc", "anywidget"])
def test_live_demo_streams_the_fake_camera_into_predictions(jupyterlab, fake_media, capture, tmp_path):
    base, token = jupyterlab
    video, audio = fake_media
    screenshots = _screenshot_dir(tmp_path)
    flags = BASE_FLAGS + [
        "--use-fake-ui-for-media-stream",  # grants the camera/microphone prompt
        f"--use-file-for-fake-video-capture={video}",
        f"--use-file-for-fake-audio-capture={audio}",
    ]
    camera = CAMERA_VIDEO[capture]
    with notebook_page(base, token, flags, capture) as page:
        _wait_or_show_panel(
            page,
            """(camera) => {
                const count = document.querySelector('.emo-count');
                const m = count && count.textContent.match(/(\\d+) predictions/);
                const video = document.querySelector(camera);
                return m && Number(m[1]) >= 15 && video && video.readyState >= 2 && !video.paused;
            }""",
            camera,
        )
        label = page.locator(".emo-label").inner_text().strip()
        count = page.locator(".emo-count").inner_text()
        error = page.locator(".emo-error").inner_text().strip()
        status = page.locator(".emo-status").inner_text().strip()
        bars = page.locator(".emo-bar-value").all_inner_texts()
        page.locator(".emo-live").scroll_into_view_if_needed()
        screenshot = screenshots / SCREENSHOTS[capture]
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot))
        outputs = page.locator(".jp-OutputArea-output").all_inner_texts()
        page.locator(".emo-stop").click()  # releases the camera: no stream left on the page's video
        page.wait_for_function(
            "(camera) => { const v = document.querySelector(camera); return !v || !v.srcObject; }",
            arg=camera,
            timeout=10_000,
        )
    assert error == ""
    assert any(text.startswith(f"model {DEMO_MODEL}:") for text in outputs), outputs  # the shipped real model
    assert label in EMOTIONS
    assert "no face" not in status  # the fake camera plays a real face: the detector finds it
    audio_seconds = float(count.split("predictions, ")[1].split(" s of audio")[0])
    assert audio_seconds > 1.0, count  # the fake microphone's samples reached the kernel
    assert "at 16.0 kHz" in count or "at 16 kHz" in count, count  # 16 kHz: resampled by the browser or ffmpeg
    percents = [int(b.rstrip("%")) for b in bars]
    assert len(percents) == len(EMOTIONS) and 94 <= sum(percents) <= 106


NO_DEVICE_FLAGS = [f for f in BASE_FLAGS if f != "--use-fake-device-for-media-stream"]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (BASE_FLAGS, "permission was denied"),  # no auto-accepting prompt: headless Chromium denies access
        (NO_DEVICE_FLAGS + ["--use-fake-ui-for-media-stream"], "No camera was found"),  # access granted, no device
    ],
    ids=["denied", "no-camera"],
)
def test_live_demo_explains_a_camera_it_cannot_use(jupyterlab, fake_media, flags, message):
    base, token = jupyterlab
    with notebook_page(base, token, flags, "anywidget") as page:
        # Wait for the message itself: the panel may be drawn twice (the cells run again in a reused kernel) and was
        # once seen empty just after showing an error (two test processes on 2 cores).
        _wait_or_show_panel(
            page,
            "(text) => { const e = document.querySelector('.emo-error'); return e && e.textContent.includes(text); }",
            message,
            90_000,
        )
        running = page.locator(".emo-video").evaluate("v => Boolean(v.srcObject)")
    assert not running
