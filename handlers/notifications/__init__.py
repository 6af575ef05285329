"""Domain logic of the notifications feature."""
