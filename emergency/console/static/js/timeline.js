// A run's timeline kept in step with the server: live events are appended by seq, and any gap
// (a missed event, a reconnect) is filled from GET /runs/{id}/timeline?after_seq=<last seen>.

import { get } from "./api.js";
import { h, replace, time } from "./dom.js";
import { eventText, who } from "./runui.js";

// Live-only summaries reuse the run's last seq; they are not timeline entries.
const NOT_IN_TIMELINE = new Set(["accountability.updated", "alert.delivery"]);
const QUIET = new Set(["alert.delivery", "alert.escalated"]);
// Only this summary may trigger a fill: it goes to the school's few admins. The check-in summary goes
// to every phone, and a teacher's timeline lags it by the rooms' reports they are not sent.
const GAP_HINT = "alert.delivery";

export class Timeline {
  constructor(runId, { onChange } = {}) {
    this.runId = runId;
    this.events = new Map();
    this.lastSeq = 0;
    this.onChange = onChange || (() => {});
    this.list = h("ol", { class: "timeline", "data-testid": "timeline" });
    this.filling = null;
  }

  async fill() {
    if (this.filling) return this.filling;
    this.filling = (async () => {
      try {
        for (;;) {
          const page = await get(`/runs/${this.runId}/timeline`, { after_seq: this.lastSeq });
          this.add(page.events || []);
          if (!page.events || !page.events.length || this.lastSeq >= page.last_seq) break;
        }
      } finally {
        this.filling = null;
      }
    })();
    return this.filling;
  }

  add(events) {
    let added = false;
    for (const event of events) {
      if (this.events.has(event.seq)) continue;
      this.events.set(event.seq, event);
      this.lastSeq = Math.max(this.lastSeq, event.seq);
      added = true;
    }
    if (added) {
      this.draw();
      this.onChange();
    }
  }

  // A live event: append it, or fetch what came before it if something was missed.
  live(name, event) {
    if (typeof event.seq !== "number") return;
    if (name === GAP_HINT && event.seq > this.lastSeq) {
      // The admins' delivery summary (about once a second) carries the run's last seq: an entry
      // published while this screen was still connecting, with nothing after it, is fetched now.
      this.fill().catch(() => {});
      return;
    }
    if (NOT_IN_TIMELINE.has(name)) return;
    if (event.seq > this.lastSeq + 1) {
      this.fill().catch(() => {});
      return;
    }
    this.add([{ seq: event.seq, type: event.type || name, at: event.at, actor: event.actor, payload: event.payload }]);
  }

  draw() {
    const rows = [...this.events.values()].filter((e) => !QUIET.has(e.type)).sort((a, b) => b.seq - a.seq);
    replace(this.list, rows.map((event) => h("li", { class: `timeline-item timeline-${event.type.replace(/\./g, "-")}` },
      h("span", { class: "timeline-time", text: time(event.at) }),
      h("span", { class: "timeline-text", text: eventText(event) }),
      who(event.actor) ? h("span", { class: "timeline-who", text: who(event.actor) }) : null)));
  }
}
