"""Conversations and their messages in the catalogue database: create, append, list, read, delete."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from ember.platform.db import Database
from ember.platform.errors import InvalidInputError, NotFoundError
from ember.platform.tables import Collection, Conversation, Message, utcnow

TITLE_CHARS = 80


@dataclass(frozen=True)
class MessageRecord:
    id: int
    role: str
    content: str
    rewritten_query: str | None
    citations: list[dict[str, Any]]
    steps: list[dict[str, Any]]
    metadata: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class ConversationRecord:
    id: int
    title: str
    mode: str
    collection: str | None
    created_at: datetime
    updated_at: datetime
    message_count: int
    messages: list[MessageRecord] = field(default_factory=list)


def _message(m: Message) -> MessageRecord:
    return MessageRecord(
        m.id, m.role, m.content, m.rewritten_query, m.citations, m.steps, m.meta, m.created_at
    )


class ConversationStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def start(self, collection: str, title: str, mode: str) -> int:
        with self.db.session() as session:
            collection_id = session.scalar(select(Collection.id).where(Collection.name == collection))
            if collection_id is None:
                raise NotFoundError(f"collection '{collection}' does not exist")
            conversation = Conversation(collection_id=collection_id, title=title[:TITLE_CHARS], mode=mode)
            session.add(conversation)
            session.flush()
            return conversation.id

    def add(self, conversation_id: int, role: str, content: str, **fields: Any) -> int:
        """Append a message; ``fields`` are rewritten_query, citations, steps and meta."""
        with self.db.session() as session:
            conversation = self._get(session, conversation_id)
            message = Message(conversation_id=conversation.id, role=role, content=content, **fields)
            session.add(message)
            conversation.updated_at = utcnow()
            session.flush()
            return message.id

    def last_query(self, conversation_id: int) -> str | None:
        """The previous user turn's stand-alone query, for rewriting a follow-up."""
        with self.db.session() as session:
            self._get(session, conversation_id)
            row = session.execute(
                select(Message.rewritten_query, Message.content)
                .where(Message.conversation_id == conversation_id, Message.role == "user")
                .order_by(Message.id.desc())
                .limit(1)
            ).first()
        return (row[0] or row[1]) if row else None

    def recent(self, conversation_id: int, turns: int) -> list[MessageRecord]:
        """The last ``turns`` question/answer pairs, oldest first."""
        with self.db.session() as session:
            self._get(session, conversation_id)
            rows = session.scalars(
                select(Message)
                .where(Message.conversation_id == conversation_id)
                .order_by(Message.id.desc())
                .limit(2 * turns)
            ).all()
            return [_message(m) for m in reversed(rows)]

    def list(self, collection: str | None = None) -> list[ConversationRecord]:
        with self.db.session() as session:
            query = (
                select(Conversation, Collection.name, func.count(Message.id))
                .outerjoin(Collection, Conversation.collection_id == Collection.id)
                .outerjoin(Message, Message.conversation_id == Conversation.id)
                .group_by(Conversation.id, Collection.name)
                .order_by(Conversation.updated_at.desc(), Conversation.id.desc())
            )
            if collection is not None:
                query = query.where(Collection.name == collection)
            return [
                ConversationRecord(c.id, c.title, c.mode, name, c.created_at, c.updated_at, count)
                for c, name, count in session.execute(query)
            ]

    def get(self, conversation_id: int) -> ConversationRecord:
        with self.db.session() as session:
            c = self._get(session, conversation_id)
            messages = [_message(m) for m in c.messages]
            name = c.collection_id and session.scalar(
                select(Collection.name).where(Collection.id == c.collection_id)
            )
            return ConversationRecord(
                c.id, c.title, c.mode, name or None, c.created_at, c.updated_at, len(messages), messages
            )

    def delete(self, conversation_id: int) -> None:
        with self.db.session() as session:
            session.delete(self._get(session, conversation_id))

    @staticmethod
    def _get(session, conversation_id: int) -> Conversation:  # noqa: ANN001
        if not isinstance(conversation_id, int) or isinstance(conversation_id, bool):
            raise InvalidInputError(f"conversation id must be an integer, got {conversation_id!r}")
        conversation = session.get(Conversation, conversation_id)
        if conversation is None:
            raise NotFoundError(f"conversation {conversation_id} does not exist")
        return conversation
