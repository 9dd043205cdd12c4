"""Customer SMS: the outbox (written in the event's transaction), its templates, the backends
that send, and the delivery job that claims a row, sends it and records the outcome."""
