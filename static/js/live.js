// Live regions: a WebSocket says "something changed", the page re-fetches the fragment over HTTP.
// A periodic refresh covers events pushed from other processes when no shared channel layer
// is configured, and any notification lost while the socket was reconnecting.
const FALLBACK_REFRESH_MS = 30000;
// A ping answered through the channel layer: no pong in time means live events cannot reach
// this page (e.g. Redis is down), so the socket is dropped and the page says it is reconnecting.
const PING_MS = window.__livePingMs || 20000;
const PONG_WAIT_MS = Math.min(10000, PING_MS);

const CSRF_VALUE = /name="csrfmiddlewaretoken" value="[^"]*"/g;
// The last fragment each region shows, without its CSRF tokens.
const shownHtml = new WeakMap();

function setStatus(text, state) {
  const el = document.getElementById("live-status");
  if (el) {
    el.textContent = text;
    el.dataset.state = state;
  }
}

async function refresh(region) {
  try {
    const response = await fetch(region.dataset.refreshUrl, {
      headers: { "X-Requested-With": "fetch" },
      credentials: "same-origin",
    });
    if (response.status === 401 || response.status === 403) {
      setStatus("Your session has ended. Please sign in again.", "error");
      return;
    }
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const html = await response.text();
    // A form in the region is being submitted (the physician pressed "Admit"): replacing the
    // region now would detach that form and the browser would drop the submission.
    if (region.dataset.submitting) return;
    // Nothing changed (the CSRF token is masked afresh on every render, so it is left out of
    // the comparison): keep the nodes, so a button being pressed is not swapped for a copy
    // between the press and the release, which would lose the click.
    const shown = html.replace(CSRF_VALUE, "");
    if (shown !== shownHtml.get(region)) {
      region.innerHTML = html;
      shownHtml.set(region, shown);
    }
    region.dataset.refreshedAt = String(Date.now());
    // The lobby: when the physician admits the patient, go straight into the consult; the
    // note review: when the draft is ready, open it.
    const join = region.querySelector("[data-auto-join], [data-auto-go]");
    if (join) window.location.assign(join.href);
  } catch (err) {
    setStatus("Could not refresh. Retrying…", "degraded");
  }
}

function connect(region, attempt = 0) {
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${window.location.host}${region.dataset.socket}`);
  let pinger = null;
  let pongDue = null;
  socket.addEventListener("open", () => {
    attempt = 0;
    setStatus("Live", "live");
    refresh(region);
    pinger = setInterval(() => {
      socket.send(JSON.stringify({ type: "ping", t: Date.now() }));
      pongDue ??= setTimeout(() => socket.close(4000, "no pong"), PONG_WAIT_MS);
    }, PING_MS);
  });
  socket.addEventListener("message", (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "queue.changed") refresh(region);
    if (message.type === "pong") {
      clearTimeout(pongDue);
      pongDue = null;
    }
  });
  socket.addEventListener("close", (event) => {
    clearInterval(pinger);
    clearTimeout(pongDue);
    if (event.code === 4403) {
      setStatus("Not allowed to follow this queue.", "error");
      return;
    }
    setStatus("Reconnecting…", "degraded");
    const delay = Math.min(30000, 1000 * 2 ** attempt) * (0.5 + Math.random() / 2);
    setTimeout(() => connect(region, attempt + 1), delay);
  });
}

for (const region of document.querySelectorAll("[data-refresh-url][data-socket]")) {
  region.addEventListener("submit", () => {
    region.dataset.submitting = "1";
  });
  // Back to this page from the next one (back/forward cache): the submission is over.
  window.addEventListener("pageshow", () => {
    delete region.dataset.submitting;
  });
  refresh(region);
  connect(region);
  setInterval(() => refresh(region), FALLBACK_REFRESH_MS);
}
