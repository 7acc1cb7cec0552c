// A press-and-hold button: the action fires only after the finger stays down for `ms`.
// A tap from a pocket or a child lets go long before that, and nothing happens.

import { h } from "./dom.js";

export function holdButton({ label, holdingLabel = "Keep holding…", ms = 2000, className = "", onConfirm, testid }) {
  const fill = h("span", { class: "hold-fill", "aria-hidden": "true" });
  const text = h("span", { class: "hold-text", text: label });
  const button = h("button", { type: "button", class: `button button-big hold ${className}`, "data-testid": testid },
    fill, text);
  let timer = null;
  let started = 0;
  let frame = null;

  function progress() {
    const ratio = Math.min(1, (performance.now() - started) / ms);
    fill.style.transform = `scaleX(${ratio})`;
    if (ratio < 1) frame = requestAnimationFrame(progress);
  }

  function begin(event) {
    if (button.disabled || timer) return;
    if (event.type === "pointerdown") button.setPointerCapture?.(event.pointerId);
    event.preventDefault();
    started = performance.now();
    text.textContent = holdingLabel;
    button.classList.add("holding");
    frame = requestAnimationFrame(progress);
    timer = setTimeout(() => {
      reset();
      button.disabled = true;
      onConfirm();
    }, ms);
  }

  function reset() {
    clearTimeout(timer);
    cancelAnimationFrame(frame);
    timer = null;
    fill.style.transform = "scaleX(0)";
    text.textContent = label;
    button.classList.remove("holding");
  }

  button.addEventListener("pointerdown", begin);
  for (const type of ["pointerup", "pointercancel", "lostpointercapture"]) button.addEventListener(type, reset);
  button.addEventListener("contextmenu", (event) => event.preventDefault());
  button.addEventListener("keydown", (event) => {
    if ((event.key === " " || event.key === "Enter") && !event.repeat) begin(event);
  });
  button.addEventListener("keyup", (event) => { if (event.key === " " || event.key === "Enter") reset(); });
  button.addEventListener("blur", reset);
  button.enable = () => { button.disabled = false; reset(); };
  return button;
}
