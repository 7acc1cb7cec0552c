import { cachedGet, get } from "../api.js";
import { h, replace, sinceText } from "../dom.js";
import * as live from "../live.js";
import { loadRollup, totals } from "../rollup.js";
import { runHeader, setRunMode } from "../runui.js";
import { Timeline } from "../timeline.js";

// Police, fire and EMS: a read-only view of a real run (the API already hides student names and phones).
export async function render(main, runId) {
  let run = await cachedGet(`/runs/${runId}`);
  setRunMode(run.mode, run);
  const header = h("div");
  const facts = h("section", { class: "stats stats-2", "data-testid": "partner-facts" });
  const timeline = new Timeline(runId);

  async function refresh() {
    const [fresh, rollup] = await Promise.all([get(`/runs/${runId}`), loadRollup(runId)]);
    run = fresh;
    setRunMode(run.mode, run);
    replace(header, runHeader(run), h("p", { class: "muted" }, sinceText(run.started_at, "Started ")));
    const t = totals(rollup);
    replace(facts,
      h("div", { class: "stat" }, h("span", { class: "stat-value", text: `${rollup.reported ?? 0}/${rollup.expected ?? 0}` }),
        h("span", { class: "stat-label", text: "rooms reported" })),
      h("div", { class: `stat ${t.missing ? "stat-warn" : ""}` }, h("span", { class: "stat-value", text: String(t.missing ?? 0) }),
        h("span", { class: "stat-label", text: "missing" })),
      h("div", { class: `stat ${t.injured ? "stat-bad" : ""}` }, h("span", { class: "stat-value", text: String(t.injured ?? 0) }),
        h("span", { class: "stat-label", text: "injured" })),
      h("div", { class: "stat" }, h("span", { class: "stat-value", text: String(t.present ?? 0) }),
        h("span", { class: "stat-label", text: "present" })));
  }

  replace(main, header, h("p", { class: "notice", text: "Read-only view for responding agencies." }), facts,
    h("h2", { class: "section-title", text: "Updates" }), timeline.list,
    h("a", { class: "button", href: "#/", text: "Home" }));
  await Promise.all([refresh(), timeline.fill()]);

  return live.followRun(runId, timeline, refresh, 200);
}
