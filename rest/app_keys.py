"""The typed keys under which the app keeps its resources (set in server.py, read by REST views and tests)."""
from __future__ import annotations

from aiohttp import web

from config import Config
from handlers.billing.feature import BillingFeature
from handlers.chat.feature import ChatFeature
from handlers.feature import Shared
from handlers.jobs import Periodic
from handlers.metrics import Metrics
from handlers.notifications.feature import NotificationsFeature
from stores.database import Connections
from stores.mongo import Database

CONFIG = web.AppKey("config", Config)
METRICS = web.AppKey("metrics", Metrics)
CONNECTIONS = web.AppKey("connections", Connections)
MONGO_DB = web.AppKey("mongo_db", Database)
SHARED = web.AppKey("shared", Shared)
JOBS = web.AppKey("jobs", list[Periodic])  # every feature's periodic jobs (run here unless RUN_WORKER_IN_WEB=false)
HANDLERS = web.AppKey("handlers", dict[str, object])  # each feature's handler by namespace (tests, tools)
CHAT = web.AppKey("chat", ChatFeature)
NOTIFICATIONS = web.AppKey("notifications", NotificationsFeature)
BILLING = web.AppKey("billing", BillingFeature)
