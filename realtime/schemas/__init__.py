"""Marshmallow schemas of every namespace: requests (validated on the way in) and what the server sends."""
