// Sign-up: preselect the browser's own time zone instead of UTC, when the list offers it.
(function () {
  "use strict";
  const select = document.querySelector("select[data-browser-default]");
  if (!select || typeof Intl === "undefined") return;
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (zone && Array.from(select.options).some((option) => option.value === zone)) {
    select.value = zone;
  }
})();
