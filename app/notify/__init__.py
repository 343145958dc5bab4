"""Findings sent outside Slack: the ``notices`` rows the engine writes, delivered to PagerDuty
(Events API v2, :mod:`app.notify.pagerduty`) and to signed webhooks
(:mod:`app.notify.webhooks`) by :class:`app.notify.deliverer.Notifier`."""
