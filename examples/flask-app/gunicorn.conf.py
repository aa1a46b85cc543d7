# Read by gunicorn at start and again on every SIGHUP.
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# The deploy's reload step does `kill -HUP "$(cat <pidfile>)"`: same user, no sudo.
pidfile = os.environ.get("GUNICORN_PIDFILE", "/run/gunicorn/flask-app.pid")
workers = 2
# No preload_app: the master never imports the app, so on SIGHUP the fresh
# workers import the code that is on disk now. With preload_app = True a HUP
# would keep serving the old code until a full restart.
preload_app = False
# Let in-flight requests finish when old workers are replaced.
graceful_timeout = 30
accesslog = "-"
