import { api, ApiError, get, optional, user } from "../api.js";
import { dateTime, h, replace, toast } from "../dom.js";

const YES = new Set([true, "met", "ok", "complete", "done", "pass", "passed"]);

function label(item) {
  return item.label || item.name || item.title || item.description || item.rule || item.key || item.category || "Requirement";
}

function progress(item) {
  const done = item.done ?? item.count ?? item.actual ?? item.completed;
  const needed = item.required ?? item.minimum ?? item.min ?? item.target ?? item.expected;
  if (done === undefined && needed === undefined) return "";
  return needed === undefined ? String(done) : `${done ?? 0} of ${needed}`;
}

function met(item) {
  const value = item.met ?? item.ok ?? item.satisfied ?? item.status;
  return YES.has(value);
}

function requirements(report) {
  const list = report.requirements || report.rules || report.checks || report.results || [];
  if (!list.length) return h("p", { class: "muted", text: "No requirements to show." });
  return h("ul", { class: "checks", "data-testid": "requirements" }, list.map((item) => h("li", {
    class: `check ${met(item) ? "check-met" : "check-open"}` },
  h("span", { class: "check-mark", "aria-hidden": "true", text: met(item) ? "✓" : "!" }),
  h("span", { class: "check-label", text: label(item) }),
  h("span", { class: "check-progress", text: progress(item) }),
  item.message || item.detail ? h("small", { class: "check-detail", text: item.message || item.detail }) : null)));
}

// The report needs the bearer token, so it is fetched and opened as a local copy.
async function openReport(runId) {
  const popup = window.open("", "_blank");
  try {
    const html = await api("GET", `/runs/${runId}/report`, { query: { format: "html" }, raw: true });
    const url = URL.createObjectURL(new Blob([html], { type: "text/html" }));
    if (popup) popup.location.href = url;
    else location.href = url;
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  } catch (err) {
    if (popup) popup.close();
    toast(err instanceof ApiError && err.status === 404 ? "Reports are not available yet." : err.message, "error");
  }
}

export async function render(main) {
  const me = user();
  const schools = me.schools || [];
  const year = new Date().getMonth() >= 6 ? new Date().getFullYear() : new Date().getFullYear() - 1;
  const schoolSelect = h("select", { id: "compliance-school" },
    schools.map((s) => h("option", { value: s.id, text: s.name })));
  const yearSelect = h("select", { id: "compliance-year" },
    [year, year - 1, year - 2].map((y) => h("option", { value: y, text: `${y}–${String(y + 1).slice(2)}` })));
  const result = h("section", { class: "stack", "data-testid": "compliance" });
  const runsBox = h("section", { class: "stack" });

  async function refresh() {
    const schoolId = Number(schoolSelect.value);
    replace(result, h("p", { class: "muted", text: "Loading…" }));
    const [report, page] = await Promise.all([
      optional("/compliance", { school_id: schoolId, year: yearSelect.value }),
      get("/runs", { school_id: schoolId, per_page: 30 }),
    ]);
    if (!report) {
      replace(result, h("p", { class: "muted", text: "The compliance summary is not available on this server yet." }));
    } else {
      const ok = report.compliant ?? report.met ?? report.ok;
      replace(result,
        ok === undefined ? null : h("p", { class: `notice ${ok ? "notice-good" : "notice-warn"}`,
          text: ok ? "On track: every requirement is met so far." : "Not yet compliant: see what is missing." }),
        report.summary && typeof report.summary === "string" ? h("p", { text: report.summary }) : null,
        requirements(report));
    }
    const runs = (page.runs || []).filter((r) => r.state !== "active");
    replace(runsBox, h("h2", { class: "section-title", text: "Drill and incident records" }),
      runs.length ? runs.map((run) => {
        const open = h("button", { type: "button", class: "button", "data-testid": "open-report",
          text: "After-action report" });
        open.addEventListener("click", () => openReport(run.id));
        return h("article", { class: `record record-${run.mode}` },
          h("p", { class: "record-title", text: `${run.mode === "drill" ? "Drill" : "REAL"}: ${(run.playbook && run.playbook.name) || run.action}` }),
          h("p", { class: "muted", text: `${dateTime(run.started_at)} · ${run.end_reason || run.state}` }),
          open);
      }) : h("p", { class: "muted", text: "No finished runs yet." }));
  }

  schoolSelect.addEventListener("change", () => refresh().catch((e) => toast(e.message, "error")));
  yearSelect.addEventListener("change", () => refresh().catch((e) => toast(e.message, "error")));
  replace(main, h("h1", { text: "Drill compliance" }),
    h("label", { for: "compliance-school", text: "School" }), schoolSelect,
    h("label", { for: "compliance-year", text: "School year" }), yearSelect,
    result, runsBox, h("a", { class: "button", href: "#/", text: "Home" }));
  await refresh();
}
