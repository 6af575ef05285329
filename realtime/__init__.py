"""Socket.IO transport: one namespace per feature."""
