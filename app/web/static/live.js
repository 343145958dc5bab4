// Live updates for the runboard and running runs: poll a tiny version token every second and,
// when it changes, fetch this page again and swap the parts of its <main> that changed,
// keeping the reader's focus, open details and scroll position; a screen reader hears the
// page's [data-announce] line (an aria-live region) when it changes. Without JavaScript the
// page still works; it just does not update itself.
(() => {
  "use strict";
  const POLL_MS = 1000;
  const body = document.body;
  const badge = document.getElementById("live");

  function ago(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    if (s < 120) return s + " s ago";
    if (s < 7200) return Math.floor(s / 60) + " min ago";
    if (s < 172800) return Math.floor(s / 3600) + " h ago";
    return Math.floor(s / 86400) + " d ago";
  }

  function tick() {
    for (const el of document.querySelectorAll("time.ago")) {
      const at = Date.parse(el.dateTime);
      if (!Number.isNaN(at)) el.textContent = ago((Date.now() - at) / 1000);
    }
  }
  setInterval(tick, 1000);

  const api = body.dataset.live;
  if (!api || !badge) return;
  let version = body.dataset.version;
  let failures = 0;
  let timer = 0;
  let busy = false;
  let live = true;
  let lastSaid = "";
  badge.hidden = false;

  function show(ok) {
    badge.className = ok ? "live on" : "live off";
    badge.textContent = ok ? "live" : "offline — retrying";
  }

  function schedule() {
    clearTimeout(timer);
    if (!live) return;
    const wait = failures ? Math.min(10000, POLL_MS * 2 ** failures) : POLL_MS;
    timer = setTimeout(poll, wait);
  }

  // What has focus, as a selector and its place among the matches, to find it again after the
  // region holding it was replaced: its id, its <details>' id for a <summary>, else its link.
  function remember(el, main) {
    if (!el || el === document.body || !main.contains(el)) return null;
    let key = null;
    if (el.id) key = "#" + CSS.escape(el.id);
    else if (el.tagName === "SUMMARY" && el.parentElement && el.parentElement.id) {
      key = "#" + CSS.escape(el.parentElement.id) + " > summary";
    } else if (el.getAttribute("href")) {
      key = el.tagName.toLowerCase() + '[href="' + CSS.escape(el.getAttribute("href")) + '"]';
    }
    if (!key) return null;
    return [key, [...main.querySelectorAll(key)].indexOf(el)];
  }

  function restore(place) {
    if (!place) return;
    const [key, index] = place;
    const found = document.getElementById("main").querySelectorAll(key);
    const el = found[Math.max(0, Math.min(index, found.length - 1))];
    if (el && el !== document.activeElement) el.focus({ preventScroll: true });
  }

  function shape(el) {
    return [...el.children].map((c) => c.tagName + "#" + c.id + "." + c.className).join("|");
  }

  // Replace only the parts of <main> that changed (all of it when its layout did), so what
  // the reader is on stays where it is.
  function swap(main, fresh) {
    if (shape(main) !== shape(fresh)) {
      main.replaceWith(document.adoptNode(fresh));
      return;
    }
    const now = [...fresh.children];
    [...main.children].forEach((old, i) => {
      if (old.outerHTML !== now[i].outerHTML) old.replaceWith(document.adoptNode(now[i]));
    });
  }

  function announce() {
    const said = document.querySelector("#main [data-announce]");
    const news = document.getElementById("live-news");
    if (!said || !news) return;
    const text = said.textContent.trim();
    if (text && text !== lastSaid) news.textContent = text;
    lastSaid = text;
  }

  async function refresh() {
    const response = await fetch(location.href, { cache: "no-store", credentials: "same-origin" });
    if (!response.ok) throw new Error("HTTP " + response.status);
    const doc = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = doc.getElementById("main");
    const main = document.getElementById("main");
    if (!fresh || !main) return;
    const open = [...main.querySelectorAll("details[id]")].map((d) => [d.id, d.open]);
    const focus = remember(document.activeElement, main);
    const y = window.scrollY;
    swap(main, fresh);
    for (const [id, wasOpen] of open) {
      const d = document.getElementById(id);
      if (d) d.open = wasOpen;
    }
    restore(focus);
    if (window.scrollY !== y) window.scrollTo(0, y);
    document.title = doc.title;
    version = doc.body.dataset.version || version;
    live = Boolean(doc.body.dataset.live);
    if (!live) badge.hidden = true;
    tick();
    announce();
  }

  async function poll() {
    if (document.hidden || busy) return schedule();
    busy = true;
    try {
      const response = await fetch(api, { cache: "no-store", credentials: "same-origin" });
      if (!response.ok) throw new Error("HTTP " + response.status);
      const latest = (await response.json()).version;
      if (latest !== version) {
        await refresh();
        version = latest;
      }
      failures = 0;
      show(true);
    } catch (error) {
      failures += 1;
      show(false);
    } finally {
      busy = false;
      schedule();
    }
  }

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) poll();
  });
  show(true);
  const first = document.querySelector("#main [data-announce]");
  lastSaid = first ? first.textContent.trim() : "";
  schedule();
})();
