from flask import current_app, request
from flask_restful import Resource, abort
from sqlalchemy import text

from .models import Note, db


class Version(Resource):
    """What is being served: the deploy's health check polls this."""

    def get(self):
        try:
            schema = db.session.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except Exception:  # no table yet: `flask db upgrade` has not run
            db.session.rollback()
            schema = None
        return {
            "version": current_app.config["APP_VERSION"],
            "revision": current_app.config["APP_REVISION"],
            "schema": schema,
        }


class NoteList(Resource):
    def get(self):
        notes = db.session.execute(db.select(Note).order_by(Note.id)).scalars()
        return {"notes": [n.to_json() for n in notes]}

    def post(self):
        body = request.get_json(silent=True) or {}
        note_text = body.get("text")
        if not isinstance(note_text, str) or not note_text.strip():
            abort(400, message='"text" must be a non-empty string')
        note = Note(text=note_text.strip())
        db.session.add(note)
        db.session.commit()
        return note.to_json(), 201
