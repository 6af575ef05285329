"""The typed keys under which the app keeps its resources (set in server.py, read by REST views and tests)."""
from __future__ import annotations

from typing import Any

from aiohttp import web

from config import Config
from handlers.metrics import Metrics

CONFIG = web.AppKey("config", Config)
METRICS = web.AppKey("metrics", Metrics)
SIO = web.AppKey("sio", object)  # socketio.AsyncServer; typed loosely so config.py stays free of socketio
SERVICES = web.AppKey("services", object)  # handlers.services.Services
EMBEDDED_MONGO = web.AppKey("embedded_mongo", object)  # stores.embedded.EmbeddedMongo | None
MONGO_CLIENT = web.AppKey("mongo_client", object)  # pymongo AsyncMongoClient
MONGO_DB = web.AppKey("mongo_db", Any)  # pymongo AsyncDatabase
REDIS = web.AppKey("redis", object)  # redis.asyncio.Redis | None
