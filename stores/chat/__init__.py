"""Storage of the chat feature."""
