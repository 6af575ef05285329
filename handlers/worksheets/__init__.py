"""Worksheets: templates and instruments, assignments, live Yjs documents, scoring, reminders, analytics."""
