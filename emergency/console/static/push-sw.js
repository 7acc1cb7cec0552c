// Web Push in the service worker (imported by sw.js): show the alert, report that it arrived,
// acknowledge from the notification's button without opening the app, open the run on a tap.

const ACK_ACTION = "ack";
const REAL_VIBRATION = [700, 200, 700, 200, 700, 200, 700];
const DRILL_VIBRATION = [200, 150, 200];

function alertOptions(alert) {
  const drill = !!alert.drill;
  // The action's name is in the title; the directive leads the body unless the message already says it.
  const said = alert.body && alert.directive && alert.body.includes(alert.directive);
  const body = said ? alert.body : [alert.directive, alert.body].filter(Boolean).join("\n");
  return {
    body,
    tag: `run-${alert.run_id}`, // an update replaces the run's earlier notification
    renotify: true,
    requireInteraction: true, // stays until the person acts on it
    vibrate: drill ? DRILL_VIBRATION : REAL_VIBRATION,
    icon: "/console/icon.svg",
    badge: "/console/icon.svg",
    timestamp: Date.now(),
    data: alert,
    actions: alert.requires_ack
      ? [{ action: ACK_ACTION, title: "Acknowledge" }, { action: "open", title: drill ? "Open drill" : "Open" }]
      : [{ action: "open", title: "Open" }],
  };
}

async function report(alert, what) {
  if (!alert.alert_id || !alert.receipt) return false;
  try {
    const response = await fetch(`/api/v1/runs/${alert.run_id}/alerts/${alert.alert_id}/${what}`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ receipt: alert.receipt }),
    });
    return response.ok;
  } catch {
    return false;
  }
}

async function showAlert(alert) {
  await self.registration.showNotification(alert.title || "Emergency alert", alertOptions(alert));
  await report(alert, "received");
}

async function openRun(alert) {
  const url = new URL(alert.url || "/", self.location.origin).href;
  const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  for (const client of windows) {
    if (new URL(client.url).origin !== self.location.origin) continue;
    try {
      await client.focus();
      return await client.navigate(url);
    } catch {
      break; // not controlled by this worker: open a new window instead
    }
  }
  return self.clients.openWindow(url);
}

async function onNotificationClick(event) {
  const alert = event.notification.data || {};
  event.notification.close();
  if (event.action === ACK_ACTION) {
    if (await report(alert, "ack")) {
      await self.registration.showNotification(`Acknowledged — ${alert.title || "alert"}`, {
        body: "Your confirmation was recorded.", tag: `run-${alert.run_id}`, data: { ...alert, acknowledged: true },
        requireInteraction: false, silent: true, icon: "/console/icon.svg",
      });
      return;
    }
    // Offline or refused: open the run, where the app can acknowledge (and queue) it.
  }
  await openRun(alert);
}

self.addEventListener("push", (event) => {
  let alert;
  try {
    alert = event.data ? event.data.json() : null;
  } catch {
    alert = null;
  }
  if (!alert) return;
  event.waitUntil(showAlert(alert));
});

self.addEventListener("notificationclick", (event) => event.waitUntil(onNotificationClick(event)));
