/* Reception: printing slips, the kiosk keypad, the barcode scanner, hotkeys and the wall
 * display's chime. No inline scripts anywhere (the CSP is default-src 'self'); pages opt in
 * with data- attributes. */
(function () {
  "use strict";
  var MM_PER_PX = 25.4 / 96;

  function ready(fn) {
    if (document.readyState !== "loading") fn();
    else document.addEventListener("DOMContentLoaded", fn);
  }

  function typing(el) {
    return el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  }

  /* --- printable slips ------------------------------------------------------------------
   * print.css has only @page { margin: 0 } (a width with an "auto" height is invalid). Here
   * the page gets the paper's width and the slip's own height, through the CSSOM (an injected
   * <style> would break the CSP), so the browser prints one slip-long page, not a Letter sheet. */
  var pageRule = null;

  function sizePage() {
    var body = document.body;
    var slip = document.querySelector(".slip-body");
    var sheet = null;
    for (var i = 0; i < document.styleSheets.length; i++) {
      if (/print\.css/.test(document.styleSheets[i].href || "")) sheet = document.styleSheets[i];
    }
    if (!slip || !sheet) return;
    if (body.hasAttribute("data-sheet")) {  // A5, A4: the sheet's stylesheet sets the page
      body.setAttribute("data-page-size", body.getAttribute("data-paper"));
      return;
    }
    var width = parseInt(body.getAttribute("data-paper"), 10) || 80;
    var height = Math.ceil(slip.getBoundingClientRect().height * MM_PER_PX) + 6;
    if (pageRule !== null) sheet.deleteRule(pageRule);
    pageRule = sheet.insertRule("@page { size: " + width + "mm " + height + "mm; margin: 0; }",
                                sheet.cssRules.length);
    body.setAttribute("data-page-size", width + "x" + height);
  }

  function printSlip() {
    var fonts = document.fonts ? document.fonts.ready : Promise.resolve();
    fonts.then(function () { sizePage(); window.print(); });
  }

  /* A slip prints itself when it is opened, not when Back, Forward or a reload bring it again:
     the next customer at the tablet must not get the last one's number. */
  function firstVisit() {
    var entries = window.performance && performance.getEntriesByType
      ? performance.getEntriesByType("navigation") : [];
    if (entries.length) return entries[0].type === "navigate";
    try {  // where the navigation's type is not told: once per tab
      var key = "printed:" + location.pathname + location.search;
      if (sessionStorage.getItem(key)) return false;
      sessionStorage.setItem(key, "1");
    } catch (e) { /* storage refused: print */ }
    return true;
  }

  function initSlip() {
    var body = document.body;
    if (!body.classList.contains("slip")) return;
    var fonts = document.fonts ? document.fonts.ready : Promise.resolve();
    fonts.then(sizePage);
    window.addEventListener("beforeprint", sizePage);
    document.querySelectorAll("[data-print]").forEach(function (b) {
      b.addEventListener("click", printSlip);
    });
    if (body.hasAttribute("data-autoprint") && firstVisit()) {
      window.addEventListener("load", printSlip);
    }
    var back = body.getAttribute("data-return-to");
    var after = parseInt(body.getAttribute("data-return-after"), 10);
    if (back && after) {
      // The kiosk goes back to its buttons by itself once the slip is out, in place of the
      // slip in the history: Back at the kiosk does not bring the last customer's slip again.
      window.setTimeout(function () { window.location.replace(back); }, after * 1000);
    }
  }

  /* --- kiosk keypad (touch screens without a keyboard) ---------------------------------- */
  function initKeypad() {
    document.querySelectorAll("[data-keypad-for]").forEach(function (pad) {
      var input = document.getElementById(pad.getAttribute("data-keypad-for"));
      pad.addEventListener("click", function (e) {
        var key = e.target.closest("[data-key]");
        if (!key || !input) return;
        var k = key.getAttribute("data-key");
        if (k === "clear") input.value = "";
        else if (k === "back") input.value = input.value.slice(0, -1);
        else input.value += key.textContent.trim();
      });
    });
    // Enter after the number moves on to the services instead of taking a number for the
    // first of them (a form's Enter presses its first button: repair, for everyone), at the
    // kiosk and at the queue's "Issue a number".
    document.querySelectorAll("input[name=phone]").forEach(function (input) {
      var first = input.form && input.form.querySelector("button[name=service]");
      if (!first) return;
      input.addEventListener("keydown", function (e) {
        if (e.key !== "Enter" || e.isComposing) return;
        e.preventDefault();
        first.focus();
      });
    });
  }

  /* --- the kiosk left alone: it opens itself anew after a while without a touch, so the
   * session (and the form's CSRF token) stays alive through a quiet day and the night, and the
   * next customer finds an empty form in the shop's language, not a stranger's number. */
  function initIdleReload() {
    var el = document.querySelector("[data-idle-reload]");
    if (!el) return;
    var after = (parseInt(el.getAttribute("data-idle-reload"), 10) || 600) * 1000;
    var to = el.getAttribute("data-reload-to") || window.location.pathname;
    var last = Date.now();
    function touched() { last = Date.now(); }
    ["pointerdown", "keydown", "input"].forEach(function (type) {
      document.addEventListener(type, touched, true);
    });
    function check() {
      if (Date.now() - last >= after) window.location.assign(to);
    }
    window.setInterval(check, 30000);
    // a tablet waking from sleep: its timers were paused
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) check();
    });
  }

  /* --- barcode scanner ------------------------------------------------------------------
   * A scanner is a keyboard: it types the receipt's link and Enter. With the Persian layout
   * active it would type Persian letters, so in the scan box keys are read by their physical
   * position (event.code). Typed anywhere on the page (outside a field), keys go to the box. */
  var CODE_CHARS = { Slash: "/", Period: ".", Minus: "-", Semicolon: ";", Space: " " };

  function charFor(e) {
    var m;
    if ((m = /^Key([A-Z])$/.exec(e.code))) return e.shiftKey ? m[1] : m[1].toLowerCase();
    if ((m = /^(?:Digit|Numpad)(\d)$/.exec(e.code))) return m[1];
    if (e.code === "Semicolon" && e.shiftKey) return ":";
    return CODE_CHARS[e.code] || null;
  }

  function latin(e) {
    // What the scanner meant: the key as typed when it is ASCII or a digit, else the Latin
    // character at that key's position.
    if (e.key.charCodeAt(0) < 128 || /[\u06F0-\u06F9\u0660-\u0669]/.test(e.key)) return e.key;
    return charFor(e) || e.key;
  }

  function initScan() {
    var box = document.querySelector("[data-scan]");
    if (!box) return;
    box.addEventListener("keydown", function (e) {
      if (e.ctrlKey || e.metaKey || e.altKey || e.key.length !== 1) return;
      var ch = latin(e);
      if (ch === e.key) return;
      e.preventDefault();
      box.setRangeText(ch, box.selectionStart, box.selectionEnd, "end");
    });
    document.addEventListener("keydown", function (e) {
      // Not while typing in a field; a focused button or link does not count (reception
      // clicks them all day), but Space still presses it.
      if (typing(document.activeElement) || e.ctrlKey || e.metaKey || e.altKey) return;
      if (e.key.length !== 1 || e.key === " ") return;
      e.preventDefault();
      box.focus();
      box.value = latin(e);  // a new scan starts afresh
    });
  }

  /* --- intake: a known phone number fills the customer's name (never over what was typed) -- */
  function initIntake() {
    document.body.addEventListener("htmx:afterSwap", function (e) {
      if (e.target.id !== "customer-hint") return;
      var found = e.target.querySelector("[data-name]");
      var name = document.getElementById("customer_name");
      var lang = document.getElementById("customer_language");
      if (!found || !name) return;
      if (!name.value.trim()) {
        name.value = found.getAttribute("data-name");
        // the cursor was waiting for the name, which is now there: on to the device
        if (document.activeElement === name) {
          var next = Array.prototype.find.call(
            document.querySelectorAll(".intake-form [data-device] input[required]"),
            function (el) { return !el.value.trim(); });
          if (next) next.focus();
        }
      }
      if (lang) lang.value = found.getAttribute("data-language");
    });
  }

  /* --- the customer's answer at the desk: Enter after the reason declines -----------------
   * The form's first button is "Approved": a browser's Enter presses it, so the reason for a
   * refusal, typed and sent with Enter, approved the estimate and started the repair. */
  function initAnswer() {
    document.addEventListener("keydown", function (e) {
      if (e.key !== "Enter" || e.isComposing || !e.target.matches("input[name=reason]")) return;
      var decline = e.target.form &&
        e.target.form.querySelector("button[name=decision][value=decline]");
      if (!decline) return;
      e.preventDefault();
      decline.click();
    });
  }

  /* --- a step that cannot be taken back, sent in one click: <form data-confirm="question">
   * asks first, and says it asked (confirmed=1); without this script the server shows the
   * step's own form instead. -------------------------------------------------------------- */
  function initConfirm() {
    document.addEventListener("submit", function (e) {
      var form = e.target;
      if (!form.matches || !form.matches("form[data-confirm]")) return;
      if (!window.confirm(form.getAttribute("data-confirm"))) {
        e.preventDefault();
        e.stopImmediatePropagation();
        return;
      }
      form.querySelector("input[name=confirmed]").value = "1";
    }, true);
  }

  /* --- hotkeys: <button data-hotkey="F2"> ------------------------------------------------ */
  function initHotkeys() {
    document.addEventListener("keydown", function (e) {
      if (!/^F\d{1,2}$/.test(e.key)) return;  // function keys only: they type nothing
      var el = document.querySelector('[data-hotkey="' + e.key + '"]');
      if (!el) return;
      e.preventDefault();
      el.click();
    });
  }

  /* --- wall display: a chime when a new number is called ------------------------------- */
  function initDisplay() {
    var toggle = document.querySelector("[data-chime-toggle]");
    var boardHolder = document.getElementById("display-board");
    if (!toggle || !boardHolder) return;
    var audio = null;
    var on = toggle.hasAttribute("data-chime-on") || localStorage.getItem("sd-chime") === "1";
    function label() {
      toggle.textContent = toggle.getAttribute(on ? "data-label-on" : "data-label-off");
    }
    function chime() {
      if (!on) return;
      try {
        audio = audio || new (window.AudioContext || window.webkitAudioContext)();
        [660, 880].forEach(function (freq, i) {
          var osc = audio.createOscillator();
          var gain = audio.createGain();
          var t = audio.currentTime + i * 0.35;
          osc.frequency.value = freq;
          gain.gain.setValueAtTime(0.0001, t);
          gain.gain.exponentialRampToValueAtTime(0.4, t + 0.02);
          gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.6);
          osc.connect(gain).connect(audio.destination);
          osc.start(t);
          osc.stop(t + 0.65);
        });
      } catch (err) { /* no audio device: the flash still shows */ }
    }
    label();
    toggle.addEventListener("click", function () {
      on = !on;
      localStorage.setItem("sd-chime", on ? "1" : "0");
      label();
      chime();  // a click unlocks audio in browsers that need a gesture
    });
    function latest() {
      var b = boardHolder.querySelector("[data-latest]");
      return b ? b.getAttribute("data-latest") : "";
    }
    var last = latest();
    document.body.addEventListener("htmx:afterSwap", function (e) {
      if (e.target !== boardHolder) return;
      var now = latest();
      if (now && now !== last) {
        boardHolder.classList.remove("display-flash");
        void boardHolder.offsetWidth;  // restart the animation
        boardHolder.classList.add("display-flash");
        chime();
      }
      last = now;
    });
  }

  /* --- a field htmx would not send (a row's "Call" with the counter box empty): say so ----
   * htmx checks the fields it includes and stops without a word; the browser's own message
   * on the field, and the cursor in it, tell the receptionist what is missing. */
  function initValidation() {
    document.body.addEventListener("htmx:validation:halted", function (e) {
      var errors = (e.detail && e.detail.errors) || [];
      var first = errors.length ? errors[0].elt : null;
      if (first && first.reportValidity) {
        first.focus();
        first.reportValidity();
      }
    });
  }

  /* --- the delivery desk's amount: selected when the cursor enters it, so what is typed (or
   * the next receipt, scanned) replaces the amount offered instead of joining it. */
  function initSelectOnFocus() {
    document.querySelectorAll("[data-select-on-focus]").forEach(function (field) {
      field.addEventListener("focus", function () { field.select(); });
      if (document.activeElement === field) field.select();
    });
  }

  /* --- the delivery desk's split payment: what is still to split, live; an empty amount
   * entered while something is left takes the rest (typed over, it is the amount typed). ---- */
  /* (forms.js's, read when used: the slips load this file without it) */
  function toRials(box, text) { return window.Servicedesk.toRials(box, text); }

  /* Rials as a money field shows them (servicedesk.i18n.money_input): grouped, in the
   * page's digits, without the unit word. */
  function moneyInput(box, rials) {
    var toman = box.getAttribute("data-money-unit") === "toman";
    var lang = box.getAttribute("data-lang") === "fa" ? "fa-IR" : "en-US";
    return new Intl.NumberFormat(lang, { maximumFractionDigits: toman ? 1 : 0 })
      .format(toman ? rials / 10 : rials);
  }

  function initSplit() {
    document.querySelectorAll("[data-split-parts]").forEach(function (box) {
      var form = box.closest("form");
      var paidField = form.querySelector("[name=amount_paid]");
      var parts = box.querySelectorAll("[data-split-part]");
      var out = box.querySelector("[data-split-rest]");
      function rest() {
        var paid = toRials(box, paidField.value), sum = 0, bad = false, any = false;
        parts.forEach(function (p) {
          if (!p.value.trim()) return;
          var v = toRials(box, p.value);
          if (isNaN(v)) bad = true; else { sum += v; any = true; }
        });
        return { paid: paid, sum: sum, bad: bad || isNaN(paid), any: any };
      }
      function say() {
        var r = rest(), left = r.paid - r.sum, text = "", cls = "small";
        if (!r.bad) {
          if (left > 0) text = box.getAttribute("data-left").replace("{amount}", moneyInput(box, left) + " " + box.getAttribute("data-unit-word"));
          else if (left < 0) { text = box.getAttribute("data-over").replace("{amount}", moneyInput(box, -left) + " " + box.getAttribute("data-unit-word")); cls += " text-danger"; }
          else if (r.any) { text = box.getAttribute("data-even"); cls += " text-success"; }
        }
        out.textContent = text;
        out.className = cls;
        out.setAttribute("data-rest", r.bad ? "" : String(left));
        parts.forEach(function (p) {
          p.placeholder = !r.bad && left > 0 && !p.value.trim() ? moneyInput(box, left) : "";
        });
      }
      parts.forEach(function (p) {
        p.addEventListener("focus", function () {
          var r = rest();
          if (!p.value.trim() && !r.bad && r.any && r.paid - r.sum > 0) {
            p.value = moneyInput(box, r.paid - r.sum);
            say();
          }
          p.select();
        });
      });
      form.addEventListener("input", say);
      form.addEventListener("change", function (e) {
        // "Split" chosen: the cursor goes to the first amount
        if (e.target.name === "payment_method" && e.target.value === "split") parts[0].focus();
        say();
      });
      say();
    });
  }

  ready(function () {
    initSplit();
    initSelectOnFocus();
    initValidation();
    initSlip();
    initKeypad();
    initIdleReload();
    initScan();
    initHotkeys();
    initIntake();
    initAnswer();
    initConfirm();
    initDisplay();
  });
}());
