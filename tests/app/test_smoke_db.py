from app.db import Database


async def test_it_migrates_to_head(db: Database) -> None:
    current, head = await db.schema_state()
    assert current == head
