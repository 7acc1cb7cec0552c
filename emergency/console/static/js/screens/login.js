import { login, session } from "../api.js";
import { h, replace } from "../dom.js";

export function render(main) {
  if (session.get()) {
    location.replace("#/");
    return;
  }
  const error = h("p", { class: "notice notice-error", role: "alert", hidden: true });
  const email = h("input", { id: "email", name: "email", type: "email", autocomplete: "username", required: true,
    inputmode: "email", autocapitalize: "none", spellcheck: "false" });
  const password = h("input", { id: "password", name: "password", type: "password", autocomplete: "current-password",
    required: true });
  const submit = h("button", { class: "button button-primary button-big", type: "submit", text: "Log in" });
  const form = h("form", { class: "stack", novalidate: true },
    h("label", { for: "email", text: "Email" }), email,
    h("label", { for: "password", text: "Password" }), password,
    error, submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    submit.disabled = true;
    submit.textContent = "Logging in…";
    try {
      await login(email.value.trim(), password.value);
      location.replace("#/");
    } catch (err) {
      error.textContent = err.status === 401 || err.status === 422 ? "Wrong email or password." : err.message;
      error.hidden = false;
      submit.disabled = false;
      submit.textContent = "Log in";
    }
  });
  replace(main, h("section", { class: "login" },
    h("h1", { text: "Log in" }),
    h("p", { class: "muted", text: "School emergencies and drills" }),
    form));
  email.focus();
}
