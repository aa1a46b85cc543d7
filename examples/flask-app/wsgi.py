"""gunicorn's entry point: `python -m gunicorn -c gunicorn.conf.py wsgi:app`."""

from app import create_app

app = create_app()
