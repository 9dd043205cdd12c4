/* Date inputs: a Jalali calendar popup on Persian pages, the browser's date input on English
 * ones. Applies to <input data-date> and to inputs whose name ends in "date". The Persian
 * calendar comes from the browser's own Intl (ICU), so no conversion tables live here: a month
 * grid is walked day by day from a Gregorian date, reading each day's Persian parts.
 * The value written is YYYY/MM/DD in the Jalali calendar with Latin digits (Persian ones in a
 * field marked data-digits="fa"); the server accepts it (any digits; a year below 1700 is
 * Jalali). */
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
  // the words the calendar says, in the page's language (base.html's body, through gettext)
  var said = document.body.dataset;
  var WORDS = { example: said.jdpExample, previous: said.jdpPrevious, next: said.jdpNext };

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
  var FA_DIGITS = "۰۱۲۳۴۵۶۷۸۹";
  function latin(s) { return s.replace(/[۰-۹]/g, function (c) { return FA_DIGITS.indexOf(c); }); }
  function faDigits(s) { return String(s).replace(/[0-9]/g, function (c) { return FA_DIGITS[+c]; }); }
  /* The first day of the Jalali month the field holds (YYYY/MM/DD, any digits), else of this
   * month: walked month by month from today, as the grid is, with no calendar tables. */
  function shownMonth(input) {
    var m = /^(\d{4})[\/-](\d{1,2})[\/-]\d{1,2}$/.exec(latin(input.value.trim()));
    var d = monthStart(todayUTC());
    if (!m) return d;
    var want = parseInt(m[1], 10) * 12 + parseInt(m[2], 10);
    for (var i = 0; i < 1200; i++) {  // a century either way
      var p = persian(d), at = p.year * 12 + p.month;
      if (at === want) return d;
      d = at > want ? monthStart(new Date(d.getTime() - DAY)) : new Date(d.getTime() + 32 * DAY);
      d = monthStart(d);
    }
    return monthStart(todayUTC());
  }

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
        var p = persian(day);
        b.dataset.value = p.year + "/" + pad(p.month) + "/" + pad(p.day);
        b.setAttribute("aria-pressed", latin(input.value.trim()) === b.dataset.value ? "true" : "false");
        b.addEventListener("click", function () {
          // in the field's digits (data-digits="fa": Persian ones; the server reads any)
          input.value = input.dataset.digits === "fa" ? faDigits(b.dataset.value) : b.dataset.value;
          popup.hidden = true;
          backToField(input);
          input.dispatchEvent(new Event("change", { bubbles: true }));
        });
        grid.appendChild(b);
      })(d);
      d = new Date(d.getTime() + DAY);
    }
    popup.appendChild(grid);
    prev.addEventListener("click", function () { render(popup, input, monthStart(new Date(start.getTime() - DAY))); });
    next.addEventListener("click", function () { render(popup, input, d); });
    if (!popup.hidden) place(popup, input);  // another month: five weeks' rows or six
    if (WORDS.previous) prev.setAttribute("aria-label", WORDS.previous);
    if (WORDS.next) next.setAttribute("aria-label", WORDS.next);
  }

  /* The calendar where it can be seen: below the field, or above it when the screen ends
   * below it (the promised date at the foot of the intake form on a laptop's 700 px) and
   * there is room above; failing both, the page scrolls it into view. */
  function place(popup, input) {
    popup.style.marginTop = "";
    var field = input.getBoundingClientRect(), box = popup.getBoundingClientRect();
    if (box.bottom <= window.innerHeight) return;
    if (box.height + 4 <= field.top) {
      popup.style.marginTop = (field.top - box.height - 4 - box.top) + "px";
    } else {
      popup.scrollIntoView({ block: "nearest" });
    }
  }

  /* The keyboard in the calendar: arrows move a day or a week (right to left), Enter picks,
   * Escape goes back to the field; at a month's edge the next or previous month is shown. */
  function onGridKey(popup, input, e) {
    var days = Array.prototype.slice.call(popup.querySelectorAll(".jdp-day"));
    var at = days.indexOf(document.activeElement);
    if (e.key === "Escape") { popup.hidden = true; backToField(input); e.preventDefault(); return; }
    var step = { ArrowLeft: 1, ArrowRight: -1, ArrowDown: 7, ArrowUp: -7 }[e.key];
    if (at < 0 || !step) return;
    e.preventDefault();
    var to = at + step;
    if (to >= 0 && to < days.length) { days[to].focus(); return; }
    var before = days.length, buttons = popup.querySelectorAll(".jdp-head button");
    buttons[to < 0 ? 0 : 1].click();  // the previous or the next month
    days = popup.querySelectorAll(".jdp-day");
    var landed = to < 0 ? days.length + to : to - before;
    days[Math.max(0, Math.min(days.length - 1, landed))].focus();
  }
  /* The cursor back in the field after the calendar closed: not a reason to open it again. */
  function backToField(input) {
    input.dataset.jdpReturning = "1";
    input.focus();
    delete input.dataset.jdpReturning;
  }
  function focusDay(popup) {
    var day = popup.querySelector(".jdp-day[aria-pressed=true]") || popup.querySelector(".jdp-day");
    if (day) day.focus();
  }

  function enhance(input) {
    if (input.dataset.jdpReady) return;
    input.dataset.jdpReady = "1";
    if (lang !== "fa") { input.type = "date"; return; }
    input.setAttribute("autocomplete", "off");
    if (!input.getAttribute("placeholder") && WORDS.example) {  // from today: never stale
      var t = persian(todayUTC());
      input.setAttribute("placeholder", WORDS.example.replace(
        "{date}", faDigits(t.year + "/" + pad(t.month) + "/" + pad(t.day))));
    }
    var popup = document.createElement("div");
    popup.className = "jdp-popup";
    popup.hidden = true;
    input.insertAdjacentElement("afterend", popup);
    function open() {
      if (!popup.hidden || input.dataset.jdpReturning) return;
      render(popup, input, shownMonth(input));
      popup.hidden = false;
      place(popup, input);
    }
    input.addEventListener("focus", open);
    input.addEventListener("click", open);
    input.addEventListener("keydown", function (e) {
      if (e.key === "ArrowDown") { open(); focusDay(popup); e.preventDefault(); }
    });
    popup.addEventListener("keydown", function (e) { onGridKey(popup, input, e); });
    // Closed by Escape, by Tab moving on, and by a click elsewhere: on the click, not the
    // mousedown, so the page does not get shorter under the pointer before the click lands
    // (the first click on a button below the calendar was lost).
    input.addEventListener("keydown", function (e) {
      if (e.key === "Escape" || e.key === "Tab") popup.hidden = true;
    });
    document.addEventListener("click", function (e) {
      // a month's button is gone from the page once the next month is drawn: still a click
      // inside the calendar
      if (!document.contains(e.target)) return;
      if (e.target !== input && !popup.contains(e.target)) popup.hidden = true;
    });
    popup.addEventListener("focusout", function (e) {  // Tab out of the calendar closes it
      if (e.relatedTarget && e.relatedTarget !== input && !popup.contains(e.relatedTarget)) {
        popup.hidden = true;
      }
    });
  }

  function scan(root) {
    root.querySelectorAll("input[data-date], input[name$='date']").forEach(enhance);
  }
  document.addEventListener("DOMContentLoaded", function () { scan(document); });
  document.addEventListener("htmx:afterSwap", function (e) { scan(e.target); });
})();
