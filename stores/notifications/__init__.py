"""Storage of the notifications feature."""
