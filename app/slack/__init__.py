"""The Slack side: the Bolt app and its connection, who may do what, the front desk, the modal,
and what follows run changes into Slack (cards, digests, the App Home tab) through the outbox.
The listeners themselves are in ``handlers/``."""
