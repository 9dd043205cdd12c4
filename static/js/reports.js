/* Reports: draws the charts whose data the page carries in <script type="application/json">
 * blocks (no inline scripts: CSP), right to left with Persian digits on Persian pages, and
 * keeps the dashboard fresh by fetching its JSON every minute. */
(function () {
  "use strict";
  if (!window.Chart) return;
  var rtl = document.documentElement.dir === "rtl";
  var locale = rtl ? "fa-IR" : "en-US";
  var charts = {};
  // Chart.js writes 0 and whole numbers with Latin digits whatever its locale: every value
  // axis goes through Intl instead (Persian digits and separators on Persian pages).
  var intl = new Intl.NumberFormat(locale, { maximumFractionDigits: 2 });
  // and the page's own separators: Chromium's ICU groups Persian digits with a Latin comma,
  // where the tables (servicedesk/i18n.py) write ٬ and ٫
  var number = { format: function (value) {
    var text = intl.format(value);
    return rtl ? text.replace(/,/g, "\u066C").replace(/\./g, "\u066B") : text;
  } };
  var PALETTE = ["#0d6efd", "#dc3545", "#198754", "#fd7e14", "#6f42c1", "#20c997", "#ffc107",
                 "#0dcaf0", "#6c757d", "#d63384"];

  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;

  function config(spec) {
    var datasets = spec.datasets.map(function (d, i) {
      var colour = PALETTE[i % PALETTE.length];
      return { label: d.label, data: d.data, borderColor: colour, backgroundColor: colour,
               spanGaps: true, tension: 0.2, yAxisID: d.axis === "y2" ? "y2" : "y" };
    });
    // A series of another scale (a percentage beside a 1-5 score) has its own axis, on the
    // other side, so neither is flattened by the other.
    var second = spec.datasets.some(function (d) { return d.axis === "y2"; });
    // Counts (tickets per state) step in whole numbers: no "0.5 tickets" on the axis.
    var counts = spec.datasets.every(function (d) {
      return d.data.every(function (v) { return v === null || Number.isInteger(v); });
    });
    return {
      type: spec.type,
      data: { labels: spec.labels, datasets: datasets },
      options: {
        locale: locale,
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        // Room for the x axis's slanted labels: right to left, the last one hangs past the
        // left edge, which Chart.js does not leave room for on a reversed axis.
        layout: { padding: rtl ? { left: 56, right: 8 } : { left: 8, right: 8 } },
        plugins: {
          legend: { rtl: rtl, textDirection: rtl ? "rtl" : "ltr", position: "bottom" },
          tooltip: { rtl: rtl, textDirection: rtl ? "rtl" : "ltr" }
        },
        scales: {
          x: { reverse: rtl, stacked: !!spec.stacked },
          y: { position: rtl ? "right" : "left", beginAtZero: true, stacked: !!spec.stacked,
               title: { display: !!spec.yTitle, text: spec.yTitle },
               ticks: { precision: counts ? 0 : undefined,
                        callback: function (value) { return number.format(value); } } },
          y2: { display: second, position: rtl ? "left" : "right", beginAtZero: true,
                grid: { drawOnChartArea: false },
                ticks: { callback: function (value) { return number.format(value); } } }
        }
      }
    };
  }

  function draw(canvas) {
    var source = document.getElementById(canvas.getAttribute("data-chart"));
    if (!source) return;
    var spec = JSON.parse(source.textContent);
    charts[canvas.getAttribute("data-chart")] = new Chart(canvas, config(spec));
  }

  function update(id, spec) {
    var chart = charts[id];
    if (!chart) return;
    chart.data.labels = spec.labels;
    spec.datasets.forEach(function (d, i) {
      if (chart.data.datasets[i]) chart.data.datasets[i].data = d.data;
    });
    chart.update();
  }

  document.querySelectorAll("canvas[data-chart]").forEach(draw);

  var board = document.querySelector("[data-refresh-url]");
  if (!board) return;
  var every = parseInt(board.getAttribute("data-refresh-seconds"), 10) || 60;
  var stamp = board.querySelector("[data-updated]");
  var clock = new Intl.DateTimeFormat(locale, { hour: "2-digit", minute: "2-digit" });

  function refresh() {
    fetch(board.getAttribute("data-refresh-url"), {
      headers: { "Accept": "application/json" }, credentials: "same-origin"
    }).then(function (resp) {
      if (!resp.ok) throw new Error(resp.status);
      return resp.json();
    }).then(function (data) {
      Object.keys(data.shown).forEach(function (key) {
        var el = board.querySelector('[data-count="' + key + '"]');
        if (el) el.textContent = data.shown[key];
      });
      update("chart-states", data.charts.states);
      update("chart-turnaround", data.charts.turnaround);
      update("chart-satisfaction", data.charts.satisfaction);
      board.setAttribute("data-refreshed", String(Date.now()));
      if (stamp) stamp.textContent = clock.format(new Date());
    }).catch(function () {
      board.setAttribute("data-refresh-failed", String(Date.now()));
    });
  }
  window.setInterval(refresh, every * 1000);
  board.addEventListener("reports:refresh", refresh);
})();
