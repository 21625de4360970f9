"""Infrastructure every service stands on: settings, database, outbox, consumers, metrics."""
