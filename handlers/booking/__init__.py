"""Domain logic of the booking feature."""
