import { api, ApiError, get, optional, user } from "../api.js";
import { dateTime, h, replace, toast } from "../dom.js";

const STATUS = {
  met: { mark: "✓", className: "check-met", words: "Every requirement is met." },
  on_track: { mark: "•", className: "check-on-track", words: "On track so far this school year." },
  behind: { mark: "!", className: "check-behind", words: "Behind: schedule the missing drills." },
  not_applicable: { mark: "–", className: "check-na", words: "No requirement applies yet." },
};

function drillCount(n = 0) {
  return n === 1 ? "1 drill" : `${n} drills`;
}

function ruleRow(rule) {
  const look = STATUS[rule.status] || STATUS.not_applicable;
  return h("li", { class: `check ${look.className}`, "data-testid": "rule", "data-status": rule.status },
    h("span", { class: "check-mark", "aria-hidden": "true", text: look.mark }),
    h("span", { class: "check-label", text: rule.description || rule.rule }),
    h("span", { class: "check-progress", text: `${rule.done ?? 0} of ${rule.required ?? 0}` }),
    rule.detail ? h("small", { class: "check-detail", text: rule.detail }) : null);
}

// The printable report needs the bearer token, so it is fetched and saved as a file; opened from
// there it keeps its own styles (as a page of this app it would fall under the console's policy).
async function saveReport(runId) {
  try {
    const html = await api("GET", `/runs/${runId}/report`, { query: { format: "html" }, raw: true });
    const url = URL.createObjectURL(new Blob([html], { type: "text/html" }));
    const link = h("a", { href: url, download: `run-${runId}-after-action-report.html` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  } catch (err) {
    toast(err instanceof ApiError && err.status === 404 ? "This report is not available." : err.message, "error");
  }
}

export async function render(main) {
  const me = user();
  const schools = me.schools || [];
  const schoolSelect = h("select", { id: "compliance-school" },
    schools.map((s) => h("option", { value: s.id, text: s.name })));
  const yearSelect = h("select", { id: "compliance-year" });
  const result = h("section", { class: "stack", "data-testid": "compliance" });
  const runsBox = h("section", { class: "stack" });

  async function refresh() {
    const schoolId = Number(schoolSelect.value);
    const [report, page] = await Promise.all([
      optional("/compliance", { school_id: schoolId, year: yearSelect.value }),
      get("/runs", { school_id: schoolId, per_page: 20 }),
    ]);
    if (!report) {
      replace(result, h("p", { class: "muted", text: "The compliance summary is not available on this server." }));
    } else {
      if (!yearSelect.value) {
        replace(yearSelect, [report.year, report.year - 1, report.year - 2].map((y) => h("option", {
          value: y, text: `School year ${y}–${String(y + 1).slice(2)}` })));
      }
      const summary = report.summary || {};
      const look = STATUS[summary.status] || STATUS.not_applicable;
      replace(result,
        h("p", { class: `notice ${summary.status === "behind" ? "notice-warn" : summary.status === "met" ? "notice-good" : ""}`,
          "data-testid": "compliance-summary", text: look.words }),
        h("p", { class: "muted", text: `${drillCount((report.drills || {}).total)} recorded · rules: ${
          (report.rules_file || {}).name || ""}` }),
        h("ul", { class: "checks", "data-testid": "requirements" }, (report.rules || []).map(ruleRow)));
    }
    const runs = (page.runs || []).filter((r) => r.state !== "active");
    replace(runsBox, h("h2", { class: "section-title", text: "After-action reports" }),
      runs.length ? runs.map((run) => {
        const save = h("button", { type: "button", class: "button", "data-testid": "open-report", text: "Save report" });
        save.addEventListener("click", () => saveReport(run.id));
        return h("article", { class: `record record-${run.mode}` },
          h("p", { class: "record-title", text: `${run.mode === "drill" ? "Drill" : "REAL"}: ${(run.playbook && run.playbook.name) || run.action}` }),
          h("p", { class: "muted", text: `${dateTime(run.started_at)} · ${(run.end_reason || run.state).replace("_", " ")}` }),
          save);
      }) : h("p", { class: "muted", text: "No finished drills or emergencies yet." }));
  }

  const reload = () => refresh().catch((e) => toast(e.message, "error"));
  schoolSelect.addEventListener("change", reload);
  yearSelect.addEventListener("change", reload);
  replace(main, h("h1", { text: "Drill compliance" }),
    h("label", { for: "compliance-school", text: "School" }), schoolSelect,
    h("label", { for: "compliance-year", text: "School year" }), yearSelect,
    result, runsBox, h("a", { class: "button", href: "#/", text: "Home" }));
  await refresh();
}
