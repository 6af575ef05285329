"""Domain logic of the chat feature."""
