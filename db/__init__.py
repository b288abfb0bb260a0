"""Study database: SQLAlchemy models, engine/session factories and Alembic migrations."""
