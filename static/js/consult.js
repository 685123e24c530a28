// The consult call: WebRTC media peer-to-peer, signaling over the room's WebSocket.
// "Perfect negotiation": the patient's side is polite (yields on offer collisions).
import { mergeItems, parseFragment } from "./live_list.js";

const root = document.getElementById("consult");
const role = root.dataset.role;
const polite = role === "patient";
let session = crypto.randomUUID();
const other = role === "physician" ? "patient" : "physician";
const $ = (id) => document.getElementById(id);
const localVideo = $("local-video");
const remoteVideo = $("remote-video");

let socket = null;
let pc = null;
let localStream = new MediaStream();
let cameraTrack = null;
let screenTrack = null;
let iceServers = [];
let iceTransportPolicy = "all";
let remoteSession = null;
let makingOffer = false;
let ignoreOffer = false;
let ended = false;
let audioOnly = false;
let connectedAt = null;
let socketAttempt = 0;
let bandwidthStrikes = 0;
let peerCreatedAt = 0;

function setStatus(text, state = "") {
  $("call-status").textContent = text;
  $("call-status").dataset.state = state;
}

function notice(text) {
  $("media-notice").textContent = text;
}

function send(message) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
}

async function acquireMedia() {
  try {
    localStream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true },
      video: { width: { ideal: 640 }, height: { ideal: 480 } },
    });
  } catch (err) {
    audioOnly = true;
    notice("Your camera is not available, so this call is audio only.");
    try {
      localStream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (err2) {
      notice("Neither camera nor microphone is available. Check the device page, then rejoin.");
      localStream = new MediaStream();
    }
  }
  cameraTrack = localStream.getVideoTracks()[0] || null;
  localVideo.srcObject = localStream;
  updateButtons();
}

function description(desc) {
  return { type: desc.type, sdp: desc.sdp };
}

function newPeerConnection() {
  if (pc) {
    pc.onicecandidate = pc.ontrack = pc.onnegotiationneeded = pc.onconnectionstatechange = null;
    pc.close();
  }
  pc = new RTCPeerConnection({ iceServers, iceTransportPolicy });
  peerCreatedAt = Date.now();
  window.__consultPeer = pc;
  for (const track of localStream.getTracks()) {
    pc.addTrack(track === cameraTrack && screenTrack ? screenTrack : track, localStream);
  }
  if (audioOnly) videoSender()?.replaceTrack(null);
  pc.ontrack = ({ streams }) => {
    if (remoteVideo.srcObject !== streams[0]) remoteVideo.srcObject = streams[0];
  };
  pc.onicecandidate = ({ candidate }) => {
    send({ type: "signal", session, candidate: candidate ? candidate.toJSON() : null });
  };
  pc.onnegotiationneeded = async () => {
    try {
      makingOffer = true;
      await pc.setLocalDescription();
      send({ type: "signal", session, description: description(pc.localDescription) });
    } catch (err) {
      console.warn("negotiation failed", err);
    } finally {
      makingOffer = false;
    }
  };
  pc.onconnectionstatechange = () => {
    const state = pc.connectionState;
    if (state === "connected") {
      connectedAt = connectedAt || Date.now();
      setStatus("Connected", "live");
    } else if (state === "disconnected") {
      setStatus("Connection unstable, reconnecting…", "degraded");
      setTimeout(() => pc && pc.connectionState === "disconnected" && pc.restartIce(), 3000);
    } else if (state === "failed") {
      setStatus("Reconnecting…", "degraded");
      pc.restartIce();
    }
  };
}

// A new session id from the other side means they reloaded or rejoined: start a fresh
// connection. The first session we hear of is adopted as is, so two sides that join at the
// same moment do not tear down each other's first negotiation.
function followSession(session) {
  const rejoined = remoteSession !== null && session !== remoteSession;
  remoteSession = session;
  if (rejoined || !pc) newPeerConnection();
}

async function onDescription(desc, fromSession) {
  followSession(fromSession);
  const collision = desc.type === "offer" && (makingOffer || pc.signalingState !== "stable");
  ignoreOffer = !polite && collision;
  if (ignoreOffer) return;
  await pc.setRemoteDescription(desc);
  if (desc.type === "offer") {
    await pc.setLocalDescription();
    send({ type: "signal", session, description: description(pc.localDescription) });
  }
}

async function onCandidate(candidate, fromSession) {
  if (!pc || fromSession !== remoteSession) return;
  try {
    await pc.addIceCandidate(candidate || undefined);
  } catch (err) {
    if (!ignoreOffer) console.warn("bad candidate", err);
  }
}

function onMessage(message) {
  // The recorder and the live transcript panel (recorder.js) listen to the same room events.
  root.dispatchEvent(new CustomEvent("consult:message", { detail: message }));
  switch (message.type) {
    case "welcome":
      iceServers = message.iceServers || [];
      iceTransportPolicy = message.iceTransportPolicy || "all";
      showConsent(message.consent);
      send({ type: "hello", session });
      if (message.peers.includes(other)) {
        if (!pc || ["failed", "closed"].includes(pc.connectionState)) newPeerConnection();
      } else {
        setStatus(`Waiting for the ${other} to join…`, "degraded");
      }
      break;
    case "peer.joined":
      followSession(message.session);
      break;
    case "peer.left":
      setStatus(`The ${other} left the call. Waiting for them to rejoin…`, "degraded");
      break;
    case "signal":
      if (message.description) onDescription(message.description, message.session);
      else onCandidate(message.candidate, message.session);
      break;
    case "media":
      notice(describeRemoteMedia(message));
      break;
    case "consent":
      showConsent(message.state);
      break;
    case "chat.new":
      loadChat();
      break;
    case "ended":
      endCall("The visit has ended.");
      break;
    case "error":
      console.warn("server rejected a message:", message.error);
      break;
  }
}

function describeRemoteMedia({ audio, video, screen }) {
  const parts = [];
  if (!audio) parts.push(`the ${other}'s microphone is muted`);
  if (!video && !screen) parts.push(`the ${other}'s camera is off`);
  if (screen) parts.push(`the ${other} is sharing their screen`);
  return parts.length ? parts.join("; ").replace(/^./, (c) => c.toUpperCase()) + "." : "";
}

function connectSocket() {
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${window.location.host}${root.dataset.socket}`);
  socket.addEventListener("open", () => {
    socketAttempt = 0;
  });
  socket.addEventListener("message", (event) => onMessage(JSON.parse(event.data)));
  socket.addEventListener("close", (event) => {
    if (ended) return;
    if (event.code === 4403) {
      endCall("This consult is not open to you, or it has ended.");
      return;
    }
    setStatus("Connection to the clinic lost, reconnecting…", "degraded");
    const delay = Math.min(15000, 500 * 2 ** socketAttempt++);
    setTimeout(connectSocket, delay);
  });
}

function endCall(text) {
  ended = true;
  setStatus(text, "ended");
  for (const track of localStream.getTracks()) track.stop();
  screenTrack?.stop();
  pc?.close();
  socket?.close();
  setTimeout(() => window.location.assign(root.dataset.afterUrl), 2500);
}

// The patient's "Leave call": hang up this side only. The visit stays open for the physician
// (whose page says the patient left) and the patient's visit page offers to rejoin.
function hangUp() {
  ended = true;
  for (const track of localStream.getTracks()) track.stop();
  screenTrack?.stop();
  pc?.close();
  socket?.close();
}

function showConsent(state) {
  if (!state) return;
  for (const item of document.querySelectorAll("#consent-state [data-purpose]")) {
    const value = state[item.dataset.purpose];
    item.querySelector("span").textContent = value === true ? "yes" : value === false ? "no" : "not asked";
  }
}

// --- Controls ---------------------------------------------------------------------------

function videoSender() {
  // The audio sender always carries a track; a sender without one is the paused video sender.
  return pc?.getSenders().find((s) => (s.track ? s.track.kind === "video" : true));
}

function mediaState() {
  const audio = localStream.getAudioTracks().some((t) => t.enabled);
  const video = !!cameraTrack && cameraTrack.enabled && !audioOnly;
  return { type: "media", audio, video, screen: !!screenTrack };
}

function updateButtons() {
  const audio = localStream.getAudioTracks()[0];
  $("btn-mute").textContent = audio && !audio.enabled ? "Unmute" : "Mute";
  $("btn-mute").setAttribute("aria-pressed", String(!!audio && !audio.enabled));
  $("btn-camera").textContent = cameraTrack && !cameraTrack.enabled ? "Camera on" : "Camera off";
  $("btn-camera").disabled = !cameraTrack;
  $("btn-screen").textContent = screenTrack ? "Stop sharing" : "Share screen";
  $("btn-audio-only").textContent = audioOnly ? "Turn video back on" : "Audio only";
  $("btn-audio-only").disabled = !cameraTrack;
}

$("btn-mute").addEventListener("click", () => {
  for (const track of localStream.getAudioTracks()) track.enabled = !track.enabled;
  updateButtons();
  send(mediaState());
});

$("btn-camera").addEventListener("click", () => {
  if (cameraTrack) cameraTrack.enabled = !cameraTrack.enabled;
  updateButtons();
  send(mediaState());
});

async function setAudioOnly(on, reason) {
  audioOnly = on;
  const sender = videoSender();
  if (sender) await sender.replaceTrack(on ? null : screenTrack || cameraTrack);
  notice(on ? reason : "");
  updateButtons();
  send(mediaState());
}

$("btn-audio-only").addEventListener("click", () =>
  setAudioOnly(!audioOnly, "Video is off to keep the call clear; audio continues."),
);

$("btn-screen").addEventListener("click", async () => {
  const sender = videoSender();
  if (screenTrack) {
    screenTrack.stop();
    screenTrack = null;
    if (sender) await sender.replaceTrack(cameraTrack);
  } else {
    try {
      const display = await navigator.mediaDevices.getDisplayMedia({ video: true });
      screenTrack = display.getVideoTracks()[0];
      screenTrack.addEventListener("ended", () => $("btn-screen").click());
      if (sender) await sender.replaceTrack(screenTrack);
    } catch (err) {
      notice("Screen sharing was not started.");
    }
  }
  updateButtons();
  send(mediaState());
});

// Fall back to audio only when the browser reports that bandwidth is limiting our video.
setInterval(async () => {
  if (!pc || audioOnly || pc.connectionState !== "connected") return;
  const stats = await pc.getStats();
  let limited = false;
  stats.forEach((report) => {
    if (report.type === "outbound-rtp" && report.kind === "video") {
      limited = report.qualityLimitationReason === "bandwidth" && (report.framesPerSecond ?? 30) < 5;
    }
  });
  bandwidthStrikes = limited ? bandwidthStrikes + 1 : 0;
  if (bandwidthStrikes >= 3) {
    setAudioOnly(true, "Your connection is slow, so video is paused and audio continues.");
  }
}, 5000);

// Watchdog: a connection that never got going (lost offer, glare gone wrong, ICE that never
// started) is replaced by the physician's side under a new session id, so the patient's side
// starts afresh too.
setInterval(() => {
  if (ended || polite || !pc || remoteSession === null) return;
  const stuck = ["new", "failed"].includes(pc.connectionState);
  if (stuck && Date.now() - peerCreatedAt > 10000) {
    session = crypto.randomUUID();
    newPeerConnection();
  }
}, 3000);

// The call timer counts from the consult's start on the server (admission), corrected for this
// device's clock, so a reload or a rejoin does not set it back to 00:00.
const startedAtMs = Number(root.dataset.startedAt) * 1000;
const clockSkewMs = Number(root.dataset.serverNow) * 1000 - Date.now();

function showTimer() {
  const since = startedAtMs ? Date.now() + clockSkewMs - startedAtMs : Date.now() - connectedAt;
  const seconds = Math.max(0, Math.floor(since / 1000));
  const pad = (n) => String(n).padStart(2, "0");
  const hours = Math.floor(seconds / 3600);
  const minutes = pad(Math.floor(seconds / 60) % 60);
  $("call-timer").textContent = hours
    ? `${hours}:${minutes}:${pad(seconds % 60)}`
    : `${minutes}:${pad(seconds % 60)}`;
}

setInterval(() => {
  if (ended || !(startedAtMs || connectedAt)) return;
  showTimer();
}, 1000);

// --- Chat -------------------------------------------------------------------------------

async function loadChat() {
  const response = await fetch(root.dataset.chatUrl, { credentials: "same-origin" });
  if (!response.ok) return;
  const log = $("chat-log");
  if (mergeItems(log.querySelector("ul"), parseFragment(await response.text()))) {
    log.scrollTop = log.scrollHeight;
  }
}

$("chat-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  $("chat-error").textContent = "";
  const response = await fetch(root.dataset.chatUrl, {
    method: "POST",
    body: new FormData(form),
    credentials: "same-origin",
    headers: { "X-CSRFToken": form.querySelector("[name=csrfmiddlewaretoken]").value },
  });
  if (response.ok) {
    form.reset();
  } else {
    const body = await response.json().catch(() => ({}));
    $("chat-error").textContent = body.error || "The message could not be sent. Try again.";
  }
});

// --- End (physician) and leave (patient) --------------------------------------------------

const endDialog = $("end-dialog");
if (endDialog) {
  $("btn-end").addEventListener("click", () => endDialog.showModal());
  $("btn-end-cancel").addEventListener("click", () => endDialog.close());
}

// The form post records the leave, so the visit page knows at once (recorder.js may hold the
// post back briefly to upload the last audio).
$("leave-form")?.addEventListener("submit", () => {
  hangUp();
  setStatus("You left the call.", "ended");
});

window.__consult = { role, get pc() { return pc; }, get stream() { return localStream; } };

if (startedAtMs) showTimer();
await acquireMedia();
connectSocket();
loadChat();
