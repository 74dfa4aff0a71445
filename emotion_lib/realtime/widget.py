"""The notebook's live camera + microphone widget (anywidget) feeding a :class:`StreamingPredictor`.

The browser captures the camera with ``getUserMedia``, draws a frame onto a canvas a few times a second
and sends it as JPEG together with the microphone samples recorded since the previous frame. The kernel
runs the predictor and sends back the probabilities; the widget shows the colour-coded label, confidence
bars for the six classes, a plot of the probabilities over time and a Start/Stop control. The browser sends
the next frame only after the kernel has answered, so a slow kernel lowers the frame rate instead of
piling up a backlog. Permission denied, no camera, no face and silence are shown as messages.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import anywidget
import numpy as np
import traitlets

from emotion_lib.labels import EMOTION_COLOURS, EMOTIONS
from emotion_lib.realtime.predictor import Prediction, StreamingPredictor
from emotion_lib.realtime.replay import AudioFeeder

_ESM = r"""
const ERRORS = {
  NotAllowedError: "Camera/microphone permission was denied. Allow access for this page in the browser's site settings, then press Start.",
  SecurityError: "Camera/microphone permission was denied. Allow access for this page in the browser's site settings, then press Start.",
  NotFoundError: "No camera was found. Connect a camera (or set use_camera=False to run on a recorded clip).",
  OverconstrainedError: "No camera matches the requested size.",
  NotReadableError: "The camera is in use by another program or could not be started.",
};

function render({ model, el }) {
  const emotions = model.get("emotions");
  const colours = model.get("colours");
  el.classList.add("emo-live");
  el.innerHTML = `
    <div class="emo-row">
      <video class="emo-video" autoplay playsinline muted></video>
      <div class="emo-side">
        <div class="emo-label">waiting</div>
        <div class="emo-status"></div>
        <div class="emo-bars"></div>
      </div>
    </div>
    <canvas class="emo-plot" width="520" height="140"></canvas>
    <div class="emo-controls">
      <button class="emo-start">Start</button><button class="emo-stop">Stop</button>
      <span class="emo-count"></span>
    </div>
    <div class="emo-error"></div>`;
  const q = (s) => el.querySelector(s);
  const video = q(".emo-video"), labelEl = q(".emo-label"), statusEl = q(".emo-status");
  const plot = q(".emo-plot"), countEl = q(".emo-count"), errorEl = q(".emo-error");
  const bars = emotions.map((name, i) => {
    const row = document.createElement("div");
    row.className = "emo-bar-row";
    row.innerHTML = `<span class="emo-bar-name">${name}</span><span class="emo-bar"><span class="emo-bar-fill"></span></span><span class="emo-bar-value">0%</span>`;
    row.querySelector(".emo-bar-fill").style.background = colours[i];
    q(".emo-bars").appendChild(row);
    return row;
  });
  const browserCapture = model.get("browser_capture");  // false: the kernel gets frames from another capture
  if (!browserCapture) video.style.display = "none";
  const canvas = document.createElement("canvas");
  const history = [];
  let stream = null, audioCtx = null, timer = null, waiting = false, sentAt = 0, chunks = [];

  function showError(text) { errorEl.textContent = text; model.set("error", text); model.save_changes(); }

  function drawPlot() {
    const g = plot.getContext("2d"), w = plot.width, h = plot.height;
    g.clearRect(0, 0, w, h);
    g.strokeStyle = "#ccc"; g.strokeRect(0, 0, w, h);
    if (history.length < 2) return;
    const n = model.get("history_length");
    g.fillStyle = "#888"; g.font = "11px sans-serif"; g.fillText("probabilities over time", 6, 12);
    emotions.forEach((_, c) => {
      g.strokeStyle = colours[c]; g.lineWidth = 2; g.beginPath();
      history.forEach((p, i) => {
        const x = i * w / (n - 1), y = h - p[c] * (h - 4) - 2;  // fills from the left, then scrolls
        i ? g.lineTo(x, y) : g.moveTo(x, y);
      });
      g.stroke();
    });
  }

  function onPrediction() {
    const probs = model.get("probabilities");
    if (!probs.length) return;
    const label = model.get("label");
    labelEl.textContent = label;
    labelEl.style.background = colours[emotions.indexOf(label)];
    probs.forEach((p, i) => {
      bars[i].querySelector(".emo-bar-fill").style.width = `${(100 * p).toFixed(1)}%`;
      bars[i].querySelector(".emo-bar-value").textContent = `${(100 * p).toFixed(0)}%`;
    });
    history.push(probs);
    if (history.length > model.get("history_length")) history.shift();
    drawPlot();
  }

  function collectAudio() {
    const n = chunks.reduce((s, c) => s + c.length, 0), out = new Float32Array(n);
    let o = 0;
    for (const c of chunks) { out.set(c, o); o += c.length; }
    chunks = [];
    return out;
  }

  function sendFrame() {
    const now = performance.now();
    if (waiting && now - sentAt < 3000) return;  // back-pressure: one frame in flight
    if (!video.videoWidth) return;
    const width = model.get("frame_width"), height = Math.round(width * video.videoHeight / video.videoWidth);
    canvas.width = width; canvas.height = height;
    canvas.getContext("2d").drawImage(video, 0, 0, width, height);
    const audio = collectAudio();
    waiting = true; sentAt = now;
    canvas.toBlob(async (blob) => {
      const jpeg = await blob.arrayBuffer();
      model.send({ type: "frame", t: now / 1000, sample_rate: audioCtx ? audioCtx.sampleRate : 0 }, undefined,
                 [jpeg, audio.buffer]);
    }, "image/jpeg", 0.85);
  }

  async function start() {
    if (stream || (!browserCapture && model.get("running"))) return;
    errorEl.textContent = ""; model.set("error", ""); model.save_changes();
    if (!browserCapture) { model.set("running", true); model.save_changes(); return; }
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      showError("This browser page cannot reach a camera (it needs https or localhost).");
      return;
    }
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: true });
    } catch (err) {
      if (err.name === "NotFoundError") {  // a camera without a microphone still works, silently
        try { stream = await navigator.mediaDevices.getUserMedia({ video: true }); } catch (err2) { err = err2; }
      }
      if (!stream) { showError(ERRORS[err.name] || `Could not open the camera: ${err.name}: ${err.message}`); return; }
    }
    video.srcObject = stream;
    if (stream.getAudioTracks().length) {
      let source;
      try {  // 16 kHz straight from the browser's resampler; older browsers refuse, then the kernel resamples
        audioCtx = new AudioContext({ sampleRate: 16000 });
        source = audioCtx.createMediaStreamSource(stream);
      } catch (err) {
        if (audioCtx) audioCtx.close();
        audioCtx = new AudioContext();
        source = audioCtx.createMediaStreamSource(stream);
      }
      const proc = audioCtx.createScriptProcessor(4096, 1, 1);
      proc.onaudioprocess = (e) => chunks.push(new Float32Array(e.inputBuffer.getChannelData(0)));
      source.connect(proc); proc.connect(audioCtx.destination);
      audioCtx.resume();
    } else {
      statusEl.textContent = "no microphone: face only";
    }
    model.set("running", true); model.save_changes();
    timer = setInterval(sendFrame, 1000 / model.get("capture_fps"));
  }

  function stop() {
    if (timer) clearInterval(timer);
    timer = null; waiting = false; chunks = [];
    if (stream) stream.getTracks().forEach((t) => t.stop());
    stream = null;
    if (audioCtx) audioCtx.close();
    audioCtx = null;
    video.srcObject = null;
    if (model.get("running")) { model.set("running", false); model.save_changes(); }
  }

  model.on("msg:custom", (msg) => { if (msg.type === "ack") waiting = false; });
  model.on("change:probabilities", onPrediction);
  model.on("change:status", () => { statusEl.textContent = model.get("status"); });
  model.on("change:error", () => { errorEl.textContent = model.get("error"); });
  model.on("change:frames change:updates change:audio_seconds", () => {
    const rate = model.get("audio_rate");
    countEl.textContent = `${model.get("frames")} frames, ${model.get("updates")} predictions, ` +
                          `${model.get("audio_seconds").toFixed(1)} s of audio` + (rate ? ` at ${rate / 1000} kHz` : "");
  });
  model.on("change:running", () => { if (!model.get("running")) stop(); });
  q(".emo-start").addEventListener("click", start);
  q(".emo-stop").addEventListener("click", stop);
  errorEl.textContent = model.get("error");
  onPrediction();
  if (model.get("autostart")) start();
  return stop;
}
export default { render };
"""

_CSS = """
.emo-live { font-family: sans-serif; max-width: 560px; }
.emo-row { display: flex; gap: 12px; }
.emo-video { width: 240px; background: #222; border-radius: 4px; }
.emo-side { flex: 1; }
.emo-label { font-size: 22px; font-weight: bold; color: white; background: #7f7f7f; padding: 4px 10px;
             border-radius: 4px; text-align: center; }
.emo-status { color: #a05000; min-height: 1.2em; font-size: 13px; margin: 4px 0; }
.emo-bar-row { display: flex; align-items: center; font-size: 12px; margin: 2px 0; }
.emo-bar-name { width: 72px; }
.emo-bar { flex: 1; height: 12px; background: #eee; border-radius: 3px; overflow: hidden; }
.emo-bar-fill { display: block; height: 100%; width: 0; }
.emo-bar-value { width: 38px; text-align: right; }
.emo-plot { margin-top: 8px; width: 520px; height: 140px; }
.emo-controls button { margin-right: 6px; }
.emo-count { font-size: 12px; color: #555; }
.emo-error { color: #b00020; font-weight: bold; }
"""


def plot_history(predictions: list[Prediction], ax: Any = None, title: str = "") -> Any:
    """Plot the smoothed class probabilities over time (one coloured line per class); returns the axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3))
    times = [p.timestamp for p in predictions]
    probs = np.array([p.probabilities for p in predictions]).reshape(len(predictions), len(EMOTIONS))
    for c, name in enumerate(EMOTIONS):
        ax.plot(times, probs[:, c], color=EMOTION_COLOURS[name], label=name, lw=2)
    no_face = [p.timestamp for p in predictions if not p.face_found]
    if no_face:
        ax.plot(no_face, [0.0] * len(no_face), "k|", ms=10, label="no face")
    ax.set(xlabel="time (s)", ylabel="probability", ylim=(0, 1), title=title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    return ax


def decode_image(data: bytes) -> np.ndarray | None:
    """A PNG or JPEG camera frame as an (H, W, 3) uint8 BGR array; None when the bytes are not an image."""
    import cv2

    if not data:
        return None
    return cv2.imdecode(np.frombuffer(bytes(data), np.uint8), cv2.IMREAD_COLOR)


class LiveEmotionWidget(anywidget.AnyWidget):
    """Camera + microphone emotion widget. ``autostart`` opens the camera as soon as it is displayed.

    With ``browser_capture=False`` the widget only displays (label, bars, plot, Start/Stop, which set
    ``running``): another capture, such as :class:`~emotion_lib.realtime.webrtc.WebRTCLiveDemo`, hands it
    frames with :meth:`process_frame` and microphone samples with :meth:`feed_audio`, the same kernel-side
    loop the widget's own browser capture goes through.
    """

    _esm = _ESM
    _css = _CSS
    emotions = traitlets.List(traitlets.Unicode(), default_value=list(EMOTIONS)).tag(sync=True)
    colours = traitlets.List(traitlets.Unicode(), default_value=[EMOTION_COLOURS[e] for e in EMOTIONS]).tag(sync=True)
    probabilities = traitlets.List(traitlets.Float(), default_value=[]).tag(sync=True)
    label = traitlets.Unicode("").tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)
    running = traitlets.Bool(False).tag(sync=True)
    autostart = traitlets.Bool(False).tag(sync=True)
    browser_capture = traitlets.Bool(True).tag(sync=True)
    capture_fps = traitlets.Float(10.0).tag(sync=True)
    frame_width = traitlets.Int(320).tag(sync=True)
    history_length = traitlets.Int(50).tag(sync=True)
    frames = traitlets.Int(0).tag(sync=True)
    updates = traitlets.Int(0).tag(sync=True)
    audio_seconds = traitlets.Float(0.0).tag(sync=True)
    audio_rate = traitlets.Int(0).tag(sync=True)

    def __init__(self, predictor: StreamingPredictor | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.predictor = predictor
        self.history: list[Prediction] = []
        self.latencies_s: list[float] = []
        self._feeder: AudioFeeder | None = None
        if predictor is None and not self.error:
            self.error = "No model loaded: train one with notebook 04, then rerun this notebook."
        self.on_msg(self._on_message)

    def stop(self) -> None:
        """Stop the camera and microphone (the same as the Stop button)."""
        self.running = False
        self._close_feeder()

    @traitlets.observe("running")
    def _on_running(self, change: dict) -> None:
        if not change["new"]:
            self._close_feeder()

    def _close_feeder(self) -> None:
        if self._feeder is not None:
            self._feeder.close()
            self._feeder = None

    @contextlib.contextmanager
    def reporting_errors(self) -> Iterator[None]:
        """Show an exception raised in the block as the widget's error instead of raising it.

        One bad frame or audio chunk must not end the demo: the capture goes on with the next one.
        """
        try:
            yield
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"

    def feed_audio(self, samples: np.ndarray, sample_rate: int) -> None:
        """Queue microphone samples for the background openSMILE thread (one thread per sample rate)."""
        if self.predictor is None or not np.size(samples) or not sample_rate:
            return
        if self._feeder is None or self._feeder.sample_rate != sample_rate:
            self._close_feeder()
            self._feeder = AudioFeeder(self.predictor, sample_rate)
        self._feeder.put(samples)
        self.audio_rate = int(sample_rate)
        self.audio_seconds += np.size(samples) / sample_rate

    def process_frame(self, frame: np.ndarray | None, timestamp: float) -> Prediction | None:
        """Run the predictor on one camera frame (BGR; None: undecodable) and show the prediction it gives."""
        if self.predictor is None:
            return None
        started = time.perf_counter()
        self.frames += 1
        if frame is None:
            self.status = "could not decode the camera frame"
            return None
        prediction = self.predictor.update(frame, timestamp)
        if prediction is None:
            return None
        self.latencies_s.append(time.perf_counter() - started)
        self.history.append(prediction)
        self.history = self.history[-self.history_length :]
        self.status = "; ".join(m for m in (prediction.message, self._feeder.error if self._feeder else "") if m)
        if prediction.updated:
            self.label = prediction.label
            self.probabilities = [float(p) for p in prediction.probabilities]
            self.updates += 1
        return prediction

    def _on_message(self, _widget: Any, content: dict, buffers: list) -> None:
        """A frame from the widget's own browser capture: JPEG bytes and the float32 audio since the last one."""
        if content.get("type") != "frame":
            return
        try:
            with self.reporting_errors():
                if len(buffers) > 1:
                    self.feed_audio(np.frombuffer(bytes(buffers[1]), np.float32), int(content.get("sample_rate") or 0))
                self.process_frame(decode_image(buffers[0]), float(content["t"]))
        finally:
            self.send({"type": "ack"})
