// The live walk: replace the panel with each version the rig sends; open the report when done.
(function () {
  "use strict";
  var panel = document.getElementById("live-panel");
  if (!panel || !window.EventSource) { return; }
  var events = new EventSource("/live/events");
  events.addEventListener("panel", function (e) {
    panel.innerHTML = JSON.parse(e.data);
    panel.dataset.updates = String(Number(panel.dataset.updates) + 1);
  });
  events.addEventListener("done", function (e) {
    events.close();
    window.location.assign(JSON.parse(e.data));
  });
})();
