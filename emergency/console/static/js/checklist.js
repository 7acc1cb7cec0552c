// The playbook's checklist for the caller's role during a run: each step a checkbox. A tick goes
// through the outbox (so it survives a dead network) and lands on the run's timeline with who and when.

import { cachedGet } from "./api.js";
import { h, replace, time } from "./dom.js";
import * as live from "./live.js";
import * as outbox from "./outbox.js";

export function checklistPanel(container, runId, currentRun) {
  let steps = [];

  function pending(index) {
    const waiting = outbox.queued(runId).filter((item) => item.kind === "checklist" && item.body.step === index);
    return waiting.length ? waiting[waiting.length - 1].body.done : null;
  }

  function draw() {
    const active = currentRun().state === "active";
    if (!steps.length) {
      replace(container);
      return;
    }
    replace(container,
      h("h2", { class: "section-title", id: `checklist-title-${runId}`, text: "Your checklist" }),
      h("ul", { class: "checklist", "data-testid": "checklist", "aria-labelledby": `checklist-title-${runId}` },
        steps.map((step) => {
          const queued = pending(step.index);
          const done = queued === null ? step.done : queued;
          const id = `step-${runId}-${step.index}`;
          const box = h("input", { type: "checkbox", id, checked: done, disabled: !active, "data-testid": "checklist-step",
            "data-step": step.index });
          box.addEventListener("change", () => {
            outbox.enqueue({ runId, kind: "checklist", path: `/runs/${runId}/checklist`,
              body: { step: step.index, done: box.checked }, label: `Checklist: ${step.step}` });
          });
          const others = step.done_by.filter((who) => !(step.done && who.at === step.done_at));
          return h("li", { class: `checklist-item ${done ? "checklist-done" : ""}` }, box,
            h("label", { for: id }, step.step,
              queued !== null ? h("small", { text: " (queued on this phone)" }) : null,
              step.done && queued === null ? h("small", { text: ` ✓ ${time(step.done_at)}` }) : null,
              others.length ? h("small", { class: "checklist-others",
                text: ` Also done by ${others.map((who) => `${who.name} ${time(who.at)}`).join(", ")}` }) : null));
        })));
  }

  async function load() {
    try {
      steps = (await cachedGet(`/runs/${runId}/checklist`)).steps || [];
    } catch {
      steps = [];
    }
    draw();
  }

  let timer = null;
  const soon = () => { clearTimeout(timer); timer = setTimeout(load, 200); };
  const offLive = live.subscribe((name, event) => {
    if (event.run_id === runId && (name === "checklist.ticked" || name.startsWith("run."))) soon();
  });
  const offOutbox = outbox.onChange(soon);
  load();
  return () => { offLive(); offOutbox(); clearTimeout(timer); };
}
