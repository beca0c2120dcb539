// commseal console: the only script. Forms marked "busy" say they are working and cannot be
// sent twice (an export or a verification takes a while).
"use strict";
document.addEventListener("submit", function (ev) {
  var f = ev.target;
  if (!f.classList || !f.classList.contains("busy")) return;
  var b = f.querySelector("button[type=submit]");
  if (!b) return;
  if (f.dataset.sent) { ev.preventDefault(); return; }
  f.dataset.sent = "1";
  if (b.dataset.busy) b.textContent = b.dataset.busy;
  b.setAttribute("aria-busy", "true");
});
