// Live updates for the runboard and running runs: poll a tiny version token every second and,
// when it changes, fetch this page again and swap its <main>. Without JavaScript the page
// still works; it just does not update itself.
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

  async function refresh() {
    const response = await fetch(location.href, { cache: "no-store", credentials: "same-origin" });
    if (!response.ok) throw new Error("HTTP " + response.status);
    const doc = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = doc.getElementById("main");
    const main = document.getElementById("main");
    if (!fresh || !main) return;
    const open = [...main.querySelectorAll("details[id]")].map((d) => [d.id, d.open]);
    main.replaceWith(document.adoptNode(fresh));
    for (const [id, wasOpen] of open) {
      const d = document.getElementById(id);
      if (d) d.open = wasOpen;
    }
    document.title = doc.title;
    version = doc.body.dataset.version || version;
    live = Boolean(doc.body.dataset.live);
    if (!live) badge.hidden = true;
    tick();
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
  schedule();
})();
