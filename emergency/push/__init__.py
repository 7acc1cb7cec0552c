"""Web Push: the devices people registered, the VAPID keys, and what a notification carries."""
