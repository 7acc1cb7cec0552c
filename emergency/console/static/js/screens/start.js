import { ApiError, get, isAdmin, post, user } from "../api.js";
import { h, newKey, replace, toast } from "../dom.js";
import { holdButton } from "../hold.js";
import { loadPlaybooks } from "../playbooks.js";
import { setRunMode, SRP } from "../runui.js";

export async function render(main, schoolId) {
  const me = user();
  const school = (me.schools || []).find((s) => s.id === schoolId) || { id: schoolId, name: `School ${schoolId}` };
  const playbooks = (await loadPlaybooks()).filter((p) => p.can_start && (p.can_start.drill || p.can_start.real));
  if (!playbooks.length) {
    replace(main, h("p", { class: "notice", text: "You cannot start drills or emergencies at this school." }),
      h("a", { class: "button", href: "#/", text: "Back" }));
    return;
  }
  const canDrill = playbooks.some((p) => p.can_start.drill);
  const canReal = playbooks.some((p) => p.can_start.real);
  let mode = canDrill && isAdmin(me) ? "drill" : canReal ? "real" : "drill";

  const modeBox = h("div", { class: "segmented", role: "radiogroup", "aria-label": "Drill or real" });
  const actions = h("div", { class: "start-actions" });
  const others = h("div", { class: "stack" });
  const panel = h("section", { class: "confirm-panel", hidden: true, "data-testid": "confirm-panel" });

  // Nothing has started yet: no DRILL or REAL EMERGENCY banner until a run exists.
  function drawMode() {
    setRunMode(null);
    replace(modeBox, ["drill", "real"].map((m) => {
      const allowed = m === "drill" ? canDrill : canReal;
      const button = h("button", {
        type: "button", role: "radio", "aria-checked": String(mode === m), disabled: !allowed,
        class: `segment segment-${m} ${mode === m ? "selected" : ""}`, "data-testid": `mode-${m}`,
        text: m === "drill" ? "Drill" : "Real emergency",
      });
      button.addEventListener("click", () => { mode = m; panel.hidden = true; drawMode(); drawActions(); });
      return button;
    }));
  }

  function actionButton(playbook, big) {
    const allowed = playbook.can_start[mode] && (playbook.modes || ["drill", "real"]).includes(mode);
    const button = h("button", {
      type: "button", disabled: !allowed, "data-testid": `playbook-${playbook.key}`,
      class: `action-button action-${playbook.action} ${big ? "action-big" : ""}`,
    }, h("span", { class: "action-name", text: playbook.name }),
    h("span", { class: "action-directive", text: playbook.directive || "" }));
    button.addEventListener("click", () => confirm(playbook));
    return button;
  }

  function drawActions() {
    const srp = SRP.map((action) => playbooks.find((p) => p.key === action || p.action === action)).filter(Boolean);
    // Lockdown is what a frightened person reaches for: it gets the biggest button.
    replace(actions, srp.map((p) => actionButton(p, p.action === "lockdown")));
    replace(others, playbooks.filter((p) => !srp.includes(p)).map((p) => actionButton(p, false)));
  }

  function confirm(playbook) {
    // One key per intended start: a double tap or a retry after a lost response starts one run.
    const key = newKey();
    const locationInput = h("input", { id: "start-location", type: "text", maxlength: "200",
      placeholder: playbook.action === "evacuate" ? "Assembly point" : "Where is the threat?" });
    const noteInput = h("input", { id: "start-note", type: "text", maxlength: "2000", placeholder: "Anything staff should know" });
    const status = h("p", { class: "muted", role: "status" });
    // Told before the drill, not after: who replied STOP to our texts and will only get a call.
    const optOuts = h("p", { class: "notice", "data-testid": "opt-outs", hidden: true });
    if (isAdmin(me)) {
      get(`/schools/${school.id}/opt-outs`).then((body) => {
        const names = (body.opt_outs || []).map((o) => o.name);
        if (names.length) {
          optOuts.textContent = `${names.length} opted out of texts (replied STOP) and will only get a call: `
            + names.join(", ") + ".";
          optOuts.hidden = false;
        }
      }).catch(() => {});
    }

    async function send() {
      status.textContent = "Starting…";
      try {
        const run = await post("/runs", {
          school_id: school.id, playbook: playbook.key, mode, confirm: mode === "real",
          location: locationInput.value.trim() || null, note: noteInput.value.trim() || null,
        }, { "Idempotency-Key": key });
        location.hash = `#/run/${run.id}`;
      } catch (err) {
        status.textContent = "";
        if (err instanceof ApiError && err.body.active_run_id) {
          replace(status, h("a", { class: "button", href: `#/run/${err.body.active_run_id}`, text: "Open the active run" }));
        }
        toast(err.message, "error");
        go.enable ? go.enable() : (go.disabled = false);
      }
    }

    const what = `${playbook.name.toUpperCase()} ${mode === "drill" ? "DRILL" : ""}`.trim();
    let go;
    if (mode === "real") {
      go = holdButton({ label: `Hold to start REAL ${playbook.name.toUpperCase()}`, className: "button-danger",
        onConfirm: send, testid: "confirm-start" });
    } else {
      go = h("button", { type: "button", class: "button button-primary button-big", "data-testid": "confirm-start",
        text: `Start ${what}` });
      go.addEventListener("click", () => { go.disabled = true; send(); });
    }
    const back = h("button", { type: "button", class: "button", text: "Back" });
    back.addEventListener("click", () => { panel.hidden = true; window.scrollTo(0, 0); });
    replace(panel,
      h("h2", { class: `confirm-title confirm-${mode}`, text: mode === "drill" ? `${what} at ${school.name}`
        : `REAL ${playbook.name.toUpperCase()} at ${school.name}` }),
      h("p", { class: "run-directive", text: playbook.directive || "" }),
      mode === "real" ? h("p", { class: "notice notice-error",
        text: "Everyone at the school, and police and fire, will be alerted now. Press and hold for 2 seconds." })
        : h("p", { class: "muted", text: "Staff will get messages marked “DRILL — THIS IS A DRILL”." }),
      optOuts,
      go, status,
      h("label", { for: "start-location", text: "Location (optional)" }), locationInput,
      h("label", { for: "start-note", text: "Note (optional)" }), noteInput,
      back);
    panel.hidden = false;
    panel.scrollIntoView({ block: "start" });
  }

  replace(main,
    h("h1", { text: `Start at ${school.name}` }),
    modeBox, panel, actions,
    playbooks.some((p) => !SRP.includes(p.action)) ? h("h2", { class: "section-title", text: "Other playbooks" }) : null,
    others,
    h("a", { class: "button", href: "#/", text: "Cancel" }));
  drawMode();
  drawActions();
}
