// Injected before any page script (Playwright init script): lets the accessibility test wait
// until live pages have settled, i.e. every socket has opened or failed, every fetch's body has
// been read, and every live region has been filled at least once. Nothing else is changed.
(() => {
  let pending = 0;
  const sockets = [];
  const NativeSocket = window.WebSocket;
  window.WebSocket = new Proxy(NativeSocket, {
    construct(target, args) {
      const socket = new target(...args);
      sockets.push(socket);
      return socket;
    },
  });
  const nativeFetch = window.fetch;
  window.fetch = function (...args) {
    pending += 1;
    let done = false;
    const finish = () => {
      if (!done) {
        done = true;
        pending -= 1;
      }
    };
    return nativeFetch.apply(this, args).then(
      (response) => {
        for (const name of ["text", "json", "blob", "arrayBuffer"]) {
          const read = response[name].bind(response);
          response[name] = () => read().finally(finish);
        }
        if (!response.ok) finish();
        setTimeout(finish, 5000); // a body nobody reads
        return response;
      },
      (error) => {
        finish();
        throw error;
      },
    );
  };
  window.__settled = () =>
    document.readyState === "complete" &&
    pending === 0 &&
    sockets.every((socket) => socket.readyState !== NativeSocket.CONNECTING) &&
    [...document.querySelectorAll("[data-refresh-url][data-socket]")].every(
      (region) => region.dataset.refreshedAt,
    );
})();
