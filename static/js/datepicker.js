/* Date inputs: a Jalali calendar popup on Persian pages, the browser's date input on English
 * ones. Applies to <input data-date> and to inputs whose name ends in "date". The Persian
 * calendar comes from the browser's own Intl (ICU), so no conversion tables live here: a month
 * grid is walked day by day from a Gregorian date, reading each day's Persian parts.
 * The value written is YYYY/MM/DD in the Jalali calendar with Latin digits; the server accepts
 * it (any digits; a year below 1700 is Jalali). */
(function () {
  "use strict";
  var lang = document.documentElement.lang || "fa";
  var partsFmt = new Intl.DateTimeFormat("fa-IR-u-ca-persian-nu-latn",
    { year: "numeric", month: "numeric", day: "numeric", timeZone: "UTC" });
  var monthFmt = new Intl.DateTimeFormat("fa-IR-u-ca-persian",
    { year: "numeric", month: "long", timeZone: "UTC" });
  var dayFmt = new Intl.DateTimeFormat("fa-IR-u-ca-persian", { day: "numeric", timeZone: "UTC" });
  var DAY = 86400000;
  var WEEKDAYS = ["ش", "ی", "د", "س", "چ", "پ", "ج"];  // the Persian week starts on Saturday

  function persian(d) {
    var out = {};
    partsFmt.formatToParts(d).forEach(function (p) {
      if (p.type === "year" || p.type === "month" || p.type === "day") out[p.type] = parseInt(p.value, 10);
    });
    return out;
  }
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function todayUTC() { var n = new Date(); return new Date(Date.UTC(n.getFullYear(), n.getMonth(), n.getDate())); }
  function monthStart(d) { while (persian(d).day !== 1) d = new Date(d.getTime() - DAY); return d; }

  function render(popup, input, start) {
    popup.innerHTML = "";
    var head = document.createElement("div");
    head.className = "jdp-head";
    var prev = document.createElement("button"), next = document.createElement("button");
    prev.type = next.type = "button";
    prev.textContent = "›"; next.textContent = "‹";  // right-to-left: earlier is on the right
    var title = document.createElement("span");
    title.textContent = monthFmt.format(start);
    head.appendChild(prev); head.appendChild(title); head.appendChild(next);
    popup.appendChild(head);
    var grid = document.createElement("div");
    grid.className = "jdp-grid";
    WEEKDAYS.forEach(function (w) { var s = document.createElement("span"); s.className = "jdp-wd"; s.textContent = w; grid.appendChild(s); });
    var offset = (start.getUTCDay() + 1) % 7;  // Saturday = 0
    for (var i = 0; i < offset; i++) grid.appendChild(document.createElement("span"));
    var month = persian(start).month, d = start;
    while (persian(d).month === month) {
      (function (day) {
        var b = document.createElement("button");
        b.type = "button";
        b.className = "jdp-day";
        b.textContent = dayFmt.format(day);
        b.addEventListener("click", function () {
          var p = persian(day);
          input.value = p.year + "/" + pad(p.month) + "/" + pad(p.day);
          popup.hidden = true;
          input.dispatchEvent(new Event("change", { bubbles: true }));
        });
        grid.appendChild(b);
      })(d);
      d = new Date(d.getTime() + DAY);
    }
    popup.appendChild(grid);
    prev.addEventListener("click", function () { render(popup, input, monthStart(new Date(start.getTime() - DAY))); });
    next.addEventListener("click", function () { render(popup, input, d); });
  }

  function enhance(input) {
    if (input.dataset.jdpReady) return;
    input.dataset.jdpReady = "1";
    if (lang !== "fa") { input.type = "date"; return; }
    input.setAttribute("autocomplete", "off");
    input.setAttribute("placeholder", input.getAttribute("placeholder") || "۱۴۰۵/۰۹/۰۱");
    var popup = document.createElement("div");
    popup.className = "jdp-popup";
    popup.hidden = true;
    input.insertAdjacentElement("afterend", popup);
    function open() {
      if (!popup.hidden) return;
      render(popup, input, monthStart(todayUTC()));
      popup.hidden = false;
    }
    input.addEventListener("focus", open);
    input.addEventListener("click", open);
    // Closed by Escape, by Tab moving on, and by a click elsewhere: on the click, not the
    // mousedown, so the page does not get shorter under the pointer before the click lands
    // (the first click on a button below the calendar was lost).
    input.addEventListener("keydown", function (e) {
      if (e.key === "Escape" || e.key === "Tab") popup.hidden = true;
    });
    document.addEventListener("click", function (e) {
      if (e.target !== input && !popup.contains(e.target)) popup.hidden = true;
    });
  }

  function scan(root) {
    root.querySelectorAll("input[data-date], input[name$='date']").forEach(enhance);
  }
  document.addEventListener("DOMContentLoaded", function () { scan(document); });
  document.addEventListener("htmx:afterSwap", function (e) { scan(e.target); });
})();
