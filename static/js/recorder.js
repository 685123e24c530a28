// Consult audio capture and the physician's live transcript.
//
// With the patient's recording consent, each side records ITS OWN microphone and uploads a chunk
// every ~5 s. A MediaRecorder timeslice chunk after the first has no container header, so the
// recorder is stopped and restarted for every chunk: each upload is a complete, decodable file.
// Consecutive chunks overlap by OVERLAP_MS, and each upload says how much it shares with its
// neighbours: the server keeps every word from the chunk that heard it whole, once
// (consults/speech/stitch.py). Unsent chunks stay in memory and are retried with backoff; the
// server is idempotent on index.
import { mergeItems, parseFragment } from "./live_list.js";

const CHUNK_MS = 5000;
const OVERLAP_MS = 1000;
const MAX_QUEUED = 120; // ~10 minutes of audio kept while the connection is down
const MIME_TYPES = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/webm"];

const room = document.getElementById("consult");
const page = document.getElementById("transcript-page");
if (room) initRoom(room);
if (page) initTranscriptPage(page);

function csrfToken() {
  const input = document.querySelector("[name=csrfmiddlewaretoken]");
  return input ? input.value : "";
}

function initRoom(root) {
  const statusLine = document.getElementById("recorder-status");
  const startedAt = Number(root.dataset.startedAt) * 1000;
  const skew = Number(root.dataset.serverNow) * 1000 - Date.now();
  const consultNow = () => Math.max(0, Date.now() + skew - startedAt);
  const state = {
    consent: root.dataset.recordingConsent === "yes",
    running: false,
    ended: false,
    nextIndex: null,
    queue: [],
    sent: 0,
    failed: 0,
    backoff: 0,
    uploading: false,
    recorders: new Set(),
    timers: new Set(),
  };
  window.__recorder = state;

  function show(text) {
    statusLine.hidden = !text;
    statusLine.textContent = text;
  }

  function pickMime() {
    if (typeof MediaRecorder === "undefined") return null;
    return MIME_TYPES.find((t) => MediaRecorder.isTypeSupported(t)) || null;
  }

  async function fetchNextIndex() {
    // Indices continue across page reloads: ask the server where this track stands.
    const response = await fetch(root.dataset.audioUrl, { credentials: "same-origin" });
    if (!response.ok) throw new Error(`next index: ${response.status}`);
    return (await response.json()).next_index;
  }

  async function start() {
    if (state.running || state.ended || !state.consent) return;
    const track = window.__consult?.stream?.getAudioTracks()[0];
    const mime = pickMime();
    if (!track || !mime) {
      show("Audio recording is not available in this browser.");
      return;
    }
    state.running = true;
    try {
      if (state.nextIndex === null) state.nextIndex = await fetchNextIndex();
    } catch (err) {
      state.nextIndex = Math.floor(consultNow() / CHUNK_MS) * 10; // unique enough for a retry
    }
    if (!state.running) return;
    show("This consult is being recorded (with the patient's consent).");
    const stream = new MediaStream([track]);
    const record = (previous) => {
      const recorder = new MediaRecorder(stream, { mimeType: mime });
      const piece = { startMs: Math.round(consultNow()), endMs: null, sent: false, next: null };
      const parts = [];
      recorder.addEventListener("dataavailable", (e) => e.data.size && parts.push(e.data));
      recorder.addEventListener("stop", () => {
        state.recorders.delete(recorder);
        piece.endMs = Math.round(consultNow());
        if (!parts.length) return;
        piece.sent = true;
        // The previous piece stopped first; the next one (if any) is still recording.
        const head = previous?.sent ? Math.max(0, previous.endMs - piece.startMs) : 0;
        const tail = piece.next ? Math.max(0, piece.endMs - piece.next.startMs) : 0;
        enqueue({
          index: state.nextIndex++,
          startMs: piece.startMs,
          headOverlapMs: Math.min(head, 3000),
          tailOverlapMs: Math.min(tail, 3000),
          blob: new Blob(parts, { type: mime }),
        });
      });
      recorder.start();
      state.recorders.add(recorder);
      later(() => {
        // Start the next piece OVERLAP_MS before this one stops, so no word is cut.
        if (state.running) piece.next = record(piece);
        later(() => recorder.state !== "inactive" && recorder.stop(), OVERLAP_MS);
      }, CHUNK_MS - OVERLAP_MS);
      return piece;
    };
    const later = (fn, ms) => {
      const id = setTimeout(() => {
        state.timers.delete(id);
        fn();
      }, ms);
      state.timers.add(id);
    };
    record(null);
  }

  function stop() {
    state.running = false;
    state.timers.forEach(clearTimeout);
    state.timers.clear();
    // Oldest first, so indices stay in time order.
    [...state.recorders].forEach((recorder) => recorder.state !== "inactive" && recorder.stop());
  }

  function enqueue(item) {
    state.queue.push(item);
    if (state.queue.length > MAX_QUEUED) state.queue.shift();
    drain();
  }

  async function drain() {
    if (state.uploading) return;
    state.uploading = true;
    try {
      while (state.queue.length) {
        const item = state.queue[0];
        const body = new FormData();
        body.append("audio", item.blob, `chunk-${item.index}`);
        body.append("index", String(item.index));
        body.append("start_ms", String(item.startMs));
        body.append("head_overlap_ms", String(item.headOverlapMs));
        body.append("tail_overlap_ms", String(item.tailOverlapMs));
        let response = null;
        try {
          response = await fetch(root.dataset.audioUrl, {
            method: "POST",
            body,
            credentials: "same-origin",
            headers: { "X-CSRFToken": csrfToken() },
          });
        } catch (err) {
          response = null; // network down: keep the chunk and retry
        }
        if (response === null || response.status >= 500 || response.status === 429) {
          const delay = Math.min(30000, 1000 * 2 ** state.backoff++);
          show("Audio upload paused (connection problem); retrying…");
          await new Promise((resolve) => setTimeout(resolve, delay));
          continue;
        }
        state.backoff = 0;
        state.queue.shift();
        if (response.ok) {
          state.sent++;
          if (state.running) show("This consult is being recorded (with the patient's consent).");
        } else {
          state.failed++;
          const error = (await response.json().catch(() => ({}))).error || "";
          console.warn("audio chunk refused:", response.status, error);
          if (response.status === 403 || response.status === 404) {
            stop();
            state.queue.length = 0;
            show(error || "Recording stopped.");
          }
        }
      }
    } finally {
      state.uploading = false;
    }
  }

  // The physician ends the visit, or the patient leaves the call, with a form post: send what
  // is recorded first (briefly).
  for (const form of ["end-form", "leave-form"].map((id) => document.getElementById(id))) {
    form?.addEventListener("submit", async (event) => {
      if (!state.running && !state.queue.length) return;
      event.preventDefault();
      stop();
      const deadline = Date.now() + 4000;
      while ((state.queue.length || state.uploading) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      form.submit();
    });
  }

  const panel = document.getElementById("transcript-live");
  let refreshing = null;

  // Only new (or corrected) lines enter the log; the red-flag box is replaced only when it
  // changes, since role="alert" is read out each time it is inserted.
  function showTranscript(fragment) {
    const lines = panel.querySelector("ol");
    const incoming = fragment.querySelector("ol.transcript-lines");
    if (incoming) {
      lines.dataset.state = incoming.dataset.state;
      lines.dataset.pending = incoming.dataset.pending;
      if (mergeItems(lines, incoming)) panel.scrollTop = panel.scrollHeight;
    }
    const alerts = fragment.querySelector("#transcript-alerts");
    const shown = document.getElementById("transcript-alerts");
    if (!alerts) shown?.remove();
    else if (!shown?.isEqualNode(alerts)) {
      document.getElementById("transcript-alerts-slot").replaceChildren(alerts);
    }
  }

  async function refreshTranscript() {
    if (!panel || refreshing) return;
    refreshing = fetch(root.dataset.transcriptUrl, { credentials: "same-origin" })
      .then(async (response) => {
        if (response.ok) showTranscript(parseFragment(await response.text()));
      })
      .catch(() => {})
      .finally(() => {
        refreshing = null;
      });
  }
  if (panel) {
    // The first refresh waits for the room's welcome, so it never competes with joining.
    // Pushes from the worker are live with Redis; this covers the in-memory channel layer.
    setInterval(() => state.ended || refreshTranscript(), 15000);
  }

  root.addEventListener("consult:message", (event) => {
    const message = event.detail;
    switch (message.type) {
      case "welcome":
        state.consent = message.consent?.recording === true;
        start();
        refreshTranscript();
        break;
      case "consent":
        state.consent = message.state?.recording === true;
        if (state.consent) start();
        else {
          stop();
          state.queue.length = 0;
          show("The patient withdrew consent: recording stopped.");
        }
        break;
      case "transcript.updated":
      case "alert":
        // Content-free: only the physician's page fetches the transcript (authorized view).
        refreshTranscript();
        break;
      case "ended":
        state.ended = true;
        stop(); // the last chunk is still uploaded; the server accepts it for a short while
        break;
    }
  });
}

function initTranscriptPage(root) {
  const stateEl = document.getElementById("transcript-state");
  if (stateEl.dataset.state === "complete") return;
  const timer = setInterval(async () => {
    const response = await fetch(root.dataset.statusUrl, { credentials: "same-origin" });
    if (!response.ok) return;
    const status = await response.json();
    for (const upload of status.uploads) {
      const item = document.querySelector(`[data-recording="${upload.id}"]`);
      item?.querySelector("progress")?.setAttribute("value", String(upload.progress));
      const label = item?.querySelector(".upload-status");
      if (label) label.textContent = `${upload.status} ${upload.progress}%`;
    }
    if (status.state === "complete") {
      clearInterval(timer);
      window.location.reload(); // show the new lines; corrections are never lost (server-side)
    }
  }, 3000);
}
