// A job's page: its log followed live (SSE), with only a window of lines in the page so a
// flood or a huge log stays smooth; "load earlier", a filter over the lines shown.
(function () {
  "use strict";
  var log = document.getElementById("log");
  if (!log) { return; }
  var WINDOW = 2000;          // lines kept in the page; the rest: "load earlier", "download all"
  var earlier = document.getElementById("earlier");
  var search = document.getElementById("search");
  var follow = document.getElementById("follow");
  var pending = [];
  var scheduled = false;

  function row(l) {
    var d = document.createElement("div");
    d.className = l.s === "stderr" ? "l err" : "l";
    d.dataset.n = l.n;
    d.textContent = l.t;
    return d;
  }
  function firstN() {
    var f = log.firstElementChild;
    return f ? Number(f.dataset.n) : Number(log.dataset.next);
  }
  function matches(el, q) { return !q || el.textContent.toLowerCase().indexOf(q) >= 0; }
  function filter(els) {
    var q = search.value.toLowerCase();
    for (var i = 0; i < els.length; i++) { els[i].hidden = !matches(els[i], q); }
  }
  function atBottom() { return log.scrollHeight - log.scrollTop - log.clientHeight < 40; }

  // Lines that arrive between two frames are added together, once per frame.
  function flush() {
    scheduled = false;
    var stick = atBottom();
    var frag = document.createDocumentFragment();
    var added = [];
    var start = Math.max(0, pending.length - WINDOW);
    for (var i = start; i < pending.length; i++) { added.push(frag.appendChild(row(pending[i]))); }
    pending = [];
    log.appendChild(frag);
    while (log.childElementCount > WINDOW) { log.removeChild(log.firstElementChild); }
    if (search.value) { filter(added); }
    earlier.hidden = firstN() === 0;
    if (stick) { log.scrollTop = log.scrollHeight; }
  }

  var source = new EventSource(log.dataset.stream + "?offset=" + log.dataset.next);
  source.addEventListener("lines", function (e) {
    var lines = JSON.parse(e.data);
    for (var i = 0; i < lines.length; i++) { pending.push(lines[i]); }
    if (!scheduled) { scheduled = true; window.requestAnimationFrame(flush); }
  });
  source.addEventListener("end", function () {
    source.close();
    follow.textContent = "ended";
  });

  earlier.addEventListener("click", function () {
    fetch(log.dataset.earlier + "?before=" + firstN(), {credentials: "same-origin"})
      .then(function (r) { return r.json(); })
      .then(function (data) {
        var frag = document.createDocumentFragment();
        var added = data.lines.map(function (l) { return frag.appendChild(row(l)); });
        log.insertBefore(frag, log.firstChild);
        while (log.childElementCount > WINDOW) { log.removeChild(log.lastElementChild); }
        if (search.value) { filter(added); }
        earlier.hidden = firstN() === 0;
      });
  });
  search.addEventListener("input", function () { filter(log.children); });
  log.scrollTop = log.scrollHeight;
}());
