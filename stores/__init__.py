"""MongoDB and Redis access: one class per collection or concern."""
