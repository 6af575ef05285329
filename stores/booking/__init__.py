"""Storage of the booking feature."""
