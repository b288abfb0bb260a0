"""Compatibility: the settings moved to the ground floor, :mod:`core.settings`."""

from core.settings import ENV_DATA_DIR, ENV_DATABASE_URL, code_version, data_dir, database_url

__all__ = ["ENV_DATABASE_URL", "ENV_DATA_DIR", "code_version", "data_dir", "database_url"]
