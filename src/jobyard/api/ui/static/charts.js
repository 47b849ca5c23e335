// A job's CPU, memory and GPU charts (uPlot): filled from its samples while it runs (every
// 5 s), kept once it has ended.
(function () {
  "use strict";
  var box = document.getElementById("charts");
  if (!box || !window.uPlot) { return; }
  var charts = {};
  var width = function () { return Math.max(280, Math.min(box.clientWidth, 900)); };

  function draw(key, title, unit, ts, values) {
    var data = [ts].concat(values.map(function (v) { return v.data; }));
    if (charts[key]) { charts[key].setData(data); return; }
    var div = document.createElement("div");
    div.className = "chart";
    div.dataset.chart = key;
    box.appendChild(div);
    charts[key] = new window.uPlot({
      title: title, width: width(), height: 180,
      series: [{}].concat(values.map(function (v) {
        return {label: v.label, stroke: v.color, width: 1.5,
                value: function (u, x) { return x == null ? "-" : x.toFixed(1) + " " + unit; }};
      })),
      axes: [{}, {label: unit}]
    }, data, div);
  }

  function load() {
    fetch(box.dataset.series, {credentials: "same-origin"})
      .then(function (r) { return r.json(); })
      .then(function (s) {
        if (s.ts.length) {
          var none = document.getElementById("nosamples");
          if (none) { none.remove(); }
          draw("cpu", "CPU", "%", s.ts, [{label: "CPU", color: "#2563eb", data: s.cpu}]);
          draw("rss", "Memory (RSS)", "MB", s.ts, [{label: "RSS", color: "#15803d", data: s.rss_mb}]);
          var gpus = Object.keys(s.gpus);
          if (gpus.length) {
            draw("gpu", "GPU utilization", "%", s.ts, gpus.map(function (g, i) {
              return {label: "GPU " + g, color: ["#b91c1c", "#a16207", "#7c3aed", "#0891b2"][i % 4],
                      data: s.gpus[g]};
            }));
          }
        }
        if (!s.ended) { window.setTimeout(load, 5000); }
      });
  }
  load();
}());
