// The video review player: frames come from the camera nodes (through the rig's pages) in
// windows of a few seconds, only once the clinician plays, steps or jumps. One clock, the
// trigger index, drives both panes, so two views always show the same instant.
(function () {
  "use strict";
  var player = document.getElementById("player");
  if (!player) { return; }
  var session = player.dataset.session;
  var fps = Number(player.dataset.fps);
  var lastIndex = Number(player.dataset.lastIndex);
  var windowFrames = Number(player.dataset.window);
  var MAGIC = "GRF1";
  var BONES = [[11, 12], [11, 23], [12, 24], [23, 24], [11, 13], [13, 15], [12, 14], [14, 16],
               [23, 25], [25, 27], [27, 29], [29, 31], [27, 31], [24, 26], [26, 28], [28, 30], [30, 32], [28, 32]];
  var COLOURS = {left: "#56B4E9", right: "#D55E00", mid: "#dddddd"};  // the report's side colours
  var state = {index: 0, playing: false, speed: Number(player.dataset.speed), started: false,
               clockAt: null, tapAt: null, loop: 0, loads: 0};
  var cache = {};  // view -> {frames: {windowStart: Promise<Map>}, keypoints: {...}, info: Promise}
  var panes = ["a", "b"].map(function (name) {
    var el = document.getElementById("pane-" + name);
    return {name: name, el: el, select: document.getElementById("view-" + name),
            canvas: el.querySelector("canvas"), message: el.querySelector(".pane-message"), token: 0};
  });
  var skeleton = document.getElementById("skeleton");
  var scrub = document.getElementById("scrub");
  var label = document.getElementById("frame-label");
  var playButton = document.getElementById("play");

  function viewCache(view) {
    if (!cache[view]) { cache[view] = {frames: {}, keypoints: {}, info: null}; }
    return cache[view];
  }

  function errorOf(response) {
    return response.json().then(function (body) { return body.error || response.statusText; },
                                function () { return response.statusText; });
  }

  function info(view) {
    var c = viewCache(view);
    if (!c.info) {
      c.info = fetch("/api/sessions/" + session + "/video/" + view + "/info").then(function (r) {
        if (r.ok) { return r.json(); }
        return errorOf(r).then(function (msg) {
          var e = new Error(msg); e.offline = r.status === 503; throw e;
        });
      });
      c.info.catch(function () { c.info = null; });  // asked again on the next tap
    }
    return c.info;
  }

  function parseFrames(buffer) {
    var bytes = new Uint8Array(buffer);
    var frames = new Map();
    if (bytes.length < 4 || String.fromCharCode(bytes[0], bytes[1], bytes[2], bytes[3]) !== MAGIC) {
      throw new Error("the node sent something that is not video frames");
    }
    var view = new DataView(buffer);
    var pos = 4;
    while (pos + 8 <= bytes.length) {
      var index = view.getUint32(pos, true), length = view.getUint32(pos + 4, true);
      pos += 8;
      if (pos + length > bytes.length) { break; }  // a stream cut short: keep what arrived whole
      frames.set(index, new Blob([bytes.subarray(pos, pos + length)], {type: "image/jpeg"}));
      pos += length;
    }
    return frames;
  }

  function windowOf(index) { return Math.floor(index / windowFrames) * windowFrames; }

  function frames(view, start) {
    var c = viewCache(view);
    if (!c.frames[start]) {
      var url = "/api/sessions/" + session + "/video/" + view + "?from=" + start + "&to=" +
                Math.min(start + windowFrames - 1, lastIndex);
      c.frames[start] = info(view).then(function () { return fetch(url); }).then(function (r) {
        if (!r.ok) { return errorOf(r).then(function (msg) { throw new Error(msg); }); }
        return r.arrayBuffer();
      }).then(parseFrames);
      c.frames[start].catch(function () { delete c.frames[start]; });
      var keys = Object.keys(c.frames).map(Number);  // keep a few windows around the one asked
      keys.forEach(function (k) { if (Math.abs(k - start) > 3 * windowFrames) { delete c.frames[k]; } });
    }
    return c.frames[start];
  }

  function keypoints(view, start) {
    var c = viewCache(view);
    if (!c.keypoints[start]) {
      var url = "/api/sessions/" + session + "/keypoints/" + view + "?from=" + start + "&to=" +
                Math.min(start + windowFrames - 1, lastIndex);
      c.keypoints[start] = fetch(url).then(function (r) { return r.ok ? r.json() : null; })
        .catch(function () { return null; });
    }
    return c.keypoints[start];
  }

  function drawSkeleton(ctx, canvas, kp, index) {
    if (!kp || !kp.frames[index] || !kp.width) { return; }
    var lm = kp.frames[index], sx = canvas.width / kp.width, sy = canvas.height / kp.height;
    ctx.lineWidth = Math.max(2, canvas.width / 240);
    ctx.lineCap = "round";
    BONES.forEach(function (bone) {
      var p = lm[bone[0]], q = lm[bone[1]];
      if (!p || !q || p[0] === null || q[0] === null || p[2] < 0.1 || q[2] < 0.1) { return; }
      var side = bone[0] % 2 && bone[1] % 2 ? "left" : !(bone[0] % 2 || bone[1] % 2) ? "right" : "mid";
      ctx.strokeStyle = COLOURS[side];
      ctx.beginPath();
      ctx.moveTo(p[0] * sx, p[1] * sy);
      ctx.lineTo(q[0] * sx, q[1] * sy);
      ctx.stroke();
    });
  }

  function say(pane, text, kind) {
    pane.message.textContent = text;
    pane.el.dataset.state = kind;
  }

  // Draw the pane's view at `index`; resolves "shown", "gap" (no frame there), "failed" (node
  // offline or refusing), "none" (no view chosen) or "stale" (a newer draw took over).
  function drawPane(pane, index) {
    var view = pane.select.value;
    pane.el.dataset.view = view;
    if (!view) {
      say(pane, "", "idle");
      delete pane.el.dataset.drawnIndex;
      return Promise.resolve("none");
    }
    var token = ++pane.token;
    var start = windowOf(index);
    var loaded = pane.el.dataset.loadedWindow === view + ":" + start;
    if (!loaded) {
      say(pane, "Loading " + view + " from its camera node…", "loading");
      state.loads += 1;  // playing waits for it: the clock stops meanwhile
    }
    return Promise.all([frames(view, start), keypoints(view, start)]).then(function (got) {
      if (token !== pane.token) { return "stale"; }
      pane.el.dataset.loadedWindow = view + ":" + start;
      var blob = got[0].get(index);
      if (!blob) {
        say(pane, view + ": the camera kept no frame " + index + " (missed trigger, or not recorded)", "gap");
        pane.el.dataset.drawnIndex = "none";
        return "gap";
      }
      return createImageBitmap(blob).then(function (bitmap) {
        if (token !== pane.token) { bitmap.close(); return "stale"; }
        var ctx = pane.canvas.getContext("2d");
        if (pane.canvas.width !== bitmap.width) { pane.canvas.width = bitmap.width; pane.canvas.height = bitmap.height; }
        ctx.drawImage(bitmap, 0, 0);
        bitmap.close();
        if (skeleton.checked) { drawSkeleton(ctx, pane.canvas, got[1], index); }
        pane.el.dataset.drawnIndex = String(index);
        say(pane, view + " · frame " + index, "shown");
        return "shown";
      }, function () {  // a picture the browser cannot decode: say so, keep playing
        if (token !== pane.token) { return "stale"; }
        say(pane, view + ": frame " + index + " could not be decoded", "gap");
        pane.el.dataset.drawnIndex = "none";
        return "gap";
      });
    }, function (error) {
      if (token !== pane.token) { return "stale"; }
      say(pane, error.message, error.offline ? "offline" : "error");
      pane.el.dataset.drawnIndex = "none";
      return "failed";
    });
  }

  function showIndex() {
    player.dataset.index = String(state.index);
    player.dataset.indexAt = performance.now().toFixed(1);  // when: a test can time the motion
    scrub.value = String(state.index);
    label.textContent = "frame " + state.index + " · " + (state.index / fps).toFixed(2) + " s";
  }

  function drawAll() {
    showIndex();
    var index = state.index;
    return Promise.all(panes.map(function (p) { return drawPane(p, index); })).then(function (shown) {
      var next = windowOf(index) + windowFrames;  // half-way through a window, ask for the next
      if (index % windowFrames >= windowFrames / 2 && next <= lastIndex) {
        panes.forEach(function (p) { if (p.select.value) { frames(p.select.value, next); keypoints(p.select.value, next); } });
      }
      return shown;
    });
  }

  function seek(index) {
    state.index = Math.max(0, Math.min(lastIndex, Math.round(index)));
    return drawAll();
  }

  var drawing = false;
  function tick(now, loop) {
    if (!state.playing || loop !== state.loop) { return; }  // paused, or a newer play took over
    if (!drawing) {
      if (state.clockAt === null) { state.clockAt = now; }
      var advance = Math.floor((now - state.clockAt) / 1000 * fps * state.speed);
      if (advance >= 1 || !state.started) {
        state.clockAt += advance / (fps * state.speed) * 1000;
        var target = state.started ? state.index + advance : state.index;
        if (target > lastIndex) { setPlaying(false); return; }
        drawing = true;
        var before = performance.now(), loadsBefore = state.loads;
        seek(target).then(function (shown) {
          drawing = false;
          if (shown.indexOf("shown") < 0 && shown.indexOf("gap") < 0) { setPlaying(false); return; }
          if (!state.started && shown.indexOf("shown") >= 0) {
            state.started = true;
            if (state.tapAt !== null) { player.dataset.startMs = (performance.now() - state.tapAt).toFixed(0); }
          }
          // time spent loading a window is not playing time: the clock waits too (drawing
          // time is, so a slow tablet skips frames rather than slowing the motion down)
          if (state.loads !== loadsBefore) { state.clockAt += performance.now() - before; }
        });
      }
    }
    requestAnimationFrame(function (t) { tick(t, loop); });
  }

  function setPlaying(on) {
    state.playing = on;
    state.started = false;
    state.clockAt = null;
    player.dataset.playing = on ? "yes" : "no";
    playButton.textContent = on ? "Pause" : "Play";
    var loop = ++state.loop;
    if (on) { requestAnimationFrame(function (t) { tick(t, loop); }); }
  }

  playButton.addEventListener("click", function () {
    state.tapAt = performance.now();
    delete player.dataset.startMs;
    if (!state.playing && state.index >= lastIndex) { state.index = 0; }
    setPlaying(!state.playing);
  });
  document.getElementById("step-back").addEventListener("click", function () { setPlaying(false); seek(state.index - 1); });
  document.getElementById("step-forward").addEventListener("click", function () { setPlaying(false); seek(state.index + 1); });
  Array.prototype.forEach.call(document.querySelectorAll(".speed"), function (b) {
    b.addEventListener("click", function () {
      state.speed = Number(b.dataset.speed);
      player.dataset.speed = b.dataset.speed;
      state.clockAt = null;
      Array.prototype.forEach.call(document.querySelectorAll(".speed"), function (o) {
        o.setAttribute("aria-pressed", o === b ? "true" : "false");
      });
    });
  });
  scrub.addEventListener("input", function () { setPlaying(false); seek(Number(scrub.value)); });
  skeleton.addEventListener("change", function () { drawAll(); });
  panes.forEach(function (p) { p.select.addEventListener("change", function () { drawAll(); }); });
  Array.prototype.forEach.call(document.querySelectorAll("#events .event"), function (b) {
    b.addEventListener("click", function () { setPlaying(false); seek(Number(b.dataset.index)); });
  });
  var strideSelect = document.getElementById("stride");
  function showStride(n) {  // one stride's events at a time, each foot a row, each kind a column
    var events = document.getElementById("events");
    events.dataset.stride = String(n);
    strideSelect.value = String(n);
    Array.prototype.forEach.call(events.querySelectorAll("td[data-kind]"), function (td) {
      var any = false;
      Array.prototype.forEach.call(td.querySelectorAll(".event"), function (b) {
        b.hidden = b.dataset.number !== String(n);
        any = any || !b.hidden;
      });
      td.querySelector("[data-none]").hidden = any;
    });
  }
  function stepStride(by) {
    var i = strideSelect.selectedIndex + by;
    if (i >= 0 && i < strideSelect.options.length) { showStride(strideSelect.options[i].value); }
  }
  if (strideSelect) {
    strideSelect.addEventListener("change", function () { showStride(strideSelect.value); });
    document.getElementById("stride-prev").addEventListener("click", function () { stepStride(-1); });
    document.getElementById("stride-next").addEventListener("click", function () { stepStride(1); });
    showStride(strideSelect.value);
  }
  panes.forEach(function (p) {  // say at once which node is off, before anything is played
    if (p.select.value) {
      info(p.select.value).then(function () {}, function (e) { say(p, e.message, e.offline ? "offline" : "error"); });
    }
  });
  showIndex();
})();
