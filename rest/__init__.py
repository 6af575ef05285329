"""Thin aiohttp views: health, readiness, metrics, and feature endpoints."""
