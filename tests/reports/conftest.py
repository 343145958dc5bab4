"""The report suite's ``db`` and ``engine_url``: the engine suite's (one migrated database per
module and back end, emptied before each test)."""

from tests.engine.conftest import db, engine_url

__all__ = ["db", "engine_url"]
