// Device check: permissions, camera preview, microphone level and a WebSocket round trip.
const root = document.getElementById("device-check");
const $ = (id) => document.getElementById(id);
let stream = null;
let audioContext = null;

function advise(items) {
  $("advice").innerHTML = "";
  for (const text of items) {
    const li = document.createElement("li");
    li.textContent = text;
    $("advice").append(li);
  }
}

async function permissionState(name) {
  try {
    return (await navigator.permissions.query({ name })).state;
  } catch (err) {
    return "unknown";
  }
}

async function checkMedia(advice) {
  stream?.getTracks().forEach((t) => t.stop());
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
  } catch (err) {
    const denied = err.name === "NotAllowedError";
    const missing = err.name === "NotFoundError";
    const text = denied ? "Blocked" : missing ? "Not found" : `Not working (${err.name})`;
    $("camera-state").textContent = text;
    $("mic-state").textContent = text;
    advice.push(
      denied
        ? "Your browser is blocking the camera and microphone. Click the camera icon in the address bar, choose Allow, then press Check again."
        : missing
          ? "No camera or microphone was found. Plug one in, or use a phone, then press Check again."
          : "Another app may be using your camera. Close it, then press Check again.",
    );
    return;
  }
  $("preview").srcObject = stream;
  $("camera-state").textContent = stream.getVideoTracks().length ? `Working (${await permissionState("camera")})` : "Not found";
  $("mic-state").textContent = stream.getAudioTracks().length ? `Working (${await permissionState("microphone")})` : "Not found";
  audioContext = audioContext || new AudioContext();
  const analyser = audioContext.createAnalyser();
  audioContext.createMediaStreamSource(stream).connect(analyser);
  const samples = new Uint8Array(analyser.fftSize);
  const tick = () => {
    analyser.getByteTimeDomainData(samples);
    let peak = 0;
    for (const v of samples) peak = Math.max(peak, Math.abs(v - 128) / 128);
    $("mic-level").value = peak;
    requestAnimationFrame(tick);
  };
  tick();
}

function checkNetwork(advice) {
  return new Promise((resolve) => {
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${window.location.host}${root.dataset.socket}`);
    const timeout = setTimeout(() => {
      $("network-state").textContent = "No answer from the clinic";
      advice.push("We could not reach the clinic. Check your Wi-Fi or mobile data, or move closer to the router.");
      socket.close();
      resolve();
    }, 5000);
    socket.addEventListener("open", () => socket.send(JSON.stringify({ type: "ping", t: performance.now() })));
    socket.addEventListener("message", (event) => {
      const message = JSON.parse(event.data);
      if (message.type !== "pong") return;
      clearTimeout(timeout);
      const ms = Math.round(performance.now() - message.t);
      $("network-state").textContent = `Round trip ${ms} ms${ms > 400 ? " (slow)" : ""}`;
      $("network-state").dataset.ms = String(ms);
      if (ms > 400) advice.push("Your connection is slow. Video may pause; audio will continue.");
      socket.close();
      resolve();
    });
    socket.addEventListener("close", (event) => {
      if (event.code === 4403) {
        clearTimeout(timeout);
        $("network-state").textContent = "Not allowed";
        resolve();
      }
    });
  });
}

async function run() {
  const advice = [];
  await Promise.all([checkMedia(advice), checkNetwork(advice)]);
  advise(advice.length ? advice : ["Everything works. You are ready for your consult."]);
}

$("retry").addEventListener("click", run);
run();
