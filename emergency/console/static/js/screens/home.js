import { cachedGet, isAdmin, isPartner, user } from "../api.js";
import { h, replace, sinceText } from "../dom.js";
import * as live from "../live.js";
import { canStartAny, loadPlaybooks } from "../playbooks.js";
import { modeLabel } from "../runui.js";

function runCard(run, me) {
  const primary = isPartner(me) ? ["view", "Open live view"] : isAdmin(me) ? ["board", "Open live board"]
    : ["checkin", "Check in my room"];
  return h("article", { class: `run-card run-card-${run.mode}`, "data-testid": "active-run", "data-run-id": run.id },
    h("p", { class: "run-card-mode", text: modeLabel(run.mode) }),
    h("h2", { class: "run-card-action", text: (run.playbook && run.playbook.name) || run.action }),
    h("p", { class: "run-card-directive", text: run.directive || "" }),
    h("p", { class: "muted" }, `${run.school ? run.school.name : ""} · `, sinceText(run.started_at, "started ")),
    h("a", { class: "button button-primary button-big", href: `#/run/${run.id}/${primary[0]}`, text: primary[1] }),
    isAdmin(me) ? h("a", { class: "button", href: `#/run/${run.id}/checkin`, text: "Check in a room" }) : null);
}

export async function render(main) {
  const me = user();
  const runsBox = h("div", { class: "stack", "data-testid": "active-runs" });
  const schoolsBox = h("div", { class: "stack" });

  async function refresh() {
    const page = await cachedGet("/runs", { state: "active" });
    const runs = page.runs || [];
    replace(runsBox, runs.length ? runs.map((run) => runCard(run, me))
      : h("p", { class: "calm", "data-testid": "no-active-run", text: "No drill or emergency is active." }));
  }

  const playbooks = isPartner(me) ? [] : await loadPlaybooks();
  const mayStart = canStartAny(playbooks);
  replace(schoolsBox, (me.schools || []).map((school) => h("article", { class: "school-card" },
    h("h2", { text: school.name }),
    mayStart ? h("a", {
      class: `button ${isAdmin(me) ? "button-secondary" : "button-danger"} button-big`,
      href: `#/start/${school.id}`, "data-testid": `start-${school.code}`,
      text: isAdmin(me) ? "Start a drill or emergency" : "Report an emergency",
    }) : null)));

  replace(main,
    h("p", { class: "hello", text: `${me.name}` }),
    h("p", { class: "muted", text: isPartner(me) ? "Partner · real emergencies at the schools you cover"
      : me.role.replace("_", " ") }),
    runsBox,
    h("h2", { class: "section-title", text: isPartner(me) ? "Schools you cover" : "Your schools" }),
    schoolsBox,
    isAdmin(me) ? h("a", { class: "button", href: "#/compliance", text: "Drill compliance and reports" }) : null);
  await refresh();

  let timer = null;
  const soon = () => { clearTimeout(timer); timer = setTimeout(() => refresh().catch(() => {}), 250); };
  const offEvents = live.subscribe((name) => {
    if (name.startsWith("run.")) soon();
  });
  const offResync = live.onResync(soon);
  // Without a live connection (congested network), look again every 20 seconds.
  const poll = setInterval(() => { if (!live.connected()) soon(); }, 20000);
  return () => { offEvents(); offResync(); clearInterval(poll); clearTimeout(timer); };
}
