"""Domain logic per feature; knows nothing about sockets or HTTP."""
