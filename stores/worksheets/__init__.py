"""Worksheets: templates, assignments, their Yjs documents (update log + snapshots) and reminders."""
