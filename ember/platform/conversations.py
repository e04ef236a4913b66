"""Conversations and their messages in the catalogue database: create, append, list, read, delete."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from sqlalchemy import func, select

from ember.agents.types import Citation, Step
from ember.platform.db import Database
from ember.platform.errors import InvalidInputError, NotFoundError
from ember.platform.tables import Collection, Conversation, Message, utcnow
from ember.platform.types import ConversationRecord, MessageRecord

TITLE_CHARS = 80


def _message(m: Message) -> MessageRecord:
    return MessageRecord(
        m.id,
        m.role,
        m.content,
        m.rewritten_query,
        [Citation(**c) for c in m.citations],
        [Step(**s) for s in m.steps],
        m.meta,
        m.created_at,
    )


class ConversationStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def start(self, collection_id: int, title: str, mode: str) -> int:
        """A new conversation over the collection with this id (the caller has looked it up)."""
        with self.db.session() as session:
            conversation = Conversation(collection_id=collection_id, title=title[:TITLE_CHARS], mode=mode)
            session.add(conversation)
            session.flush()
            return conversation.id

    def add(
        self,
        conversation_id: int,
        role: str,
        content: str,
        rewritten_query: str | None = None,
        citations: Sequence[Citation] = (),
        steps: Sequence[Step] = (),
        meta: dict[str, Any] | None = None,
    ) -> int:
        """Append a message. Citations and steps are stored as JSON and read back as dataclasses."""
        with self.db.session() as session:
            conversation = self._get(session, conversation_id)
            message = Message(
                conversation_id=conversation.id,
                role=role,
                content=content,
                rewritten_query=rewritten_query,
                citations=[asdict(c) for c in citations],
                steps=[asdict(s) for s in steps],
                meta=meta or {},
            )
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
