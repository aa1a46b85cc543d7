"""The app factory: `flask --app app db upgrade` and `wsgi.py` both call it."""

import os
import subprocess
from pathlib import Path

from flask import Flask
from flask_migrate import Migrate
from flask_restful import Api

from .models import db
from .resources import NoteList, Version

APP_DIR = Path(__file__).resolve().parent.parent


def _read_version() -> str:
    return (APP_DIR / "VERSION").read_text(encoding="utf-8").strip()


def _read_revision() -> str:
    """The git commit this process runs, read once at import.

    A gunicorn worker imports the app when it boots, so after `kill -HUP` the
    new workers report the new commit while the old ones still report the old
    one: the deploy's health check waits for the new value.
    """
    if os.environ.get("APP_REVISION"):
        return os.environ["APP_REVISION"]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=APP_DIR, capture_output=True, text=True, timeout=5, check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


VERSION = _read_version()
REVISION = _read_revision()

migrate = Migrate()


def create_app(config: dict | None = None) -> Flask:
    app = Flask(__name__, instance_path=str(APP_DIR / "instance"))
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.update(
        SQLALCHEMY_DATABASE_URI=os.environ.get(
            "DATABASE_URL", f"sqlite:///{Path(app.instance_path) / 'app.db'}"
        ),
        APP_VERSION=VERSION,
        APP_REVISION=REVISION,
    )
    if config:
        app.config.update(config)

    db.init_app(app)
    # render_as_batch: SQLite cannot ALTER most things; batch mode makes
    # `flask db migrate` write migrations that work on it.
    migrate.init_app(app, db, render_as_batch=True)

    api = Api(app)
    api.add_resource(Version, "/version")
    api.add_resource(NoteList, "/notes")
    return app
