//! An organization's messages: the send path's insert, reading one, listing, and events.

use entity::{message, message_event};
use sea_orm::{
    sea_query::{Expr, ExprTrait},
    ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::{delivery::insert_event, rows, Tenant};
use crate::domain::{
    consent::{ConsentSource, ConsentStatus},
    idempotency::Completion,
    lifecycle::{Event, EventKind},
    listing::{ListPosition, MessageFilter},
    message::{Direction, Message},
    Timestamp,
};

use super::delivery::EventDetail;
pub use crate::domain::message::NewMessage;

/// What an inbound message's keyword causes, stored with the message.
#[derive(Debug, Clone, Copy)]
pub struct KeywordEffect {
    /// The keyword, as the list spells it (`STOP`, `START`, `HELP`, …).
    pub word: &'static str,
    /// The consent record it makes, if any (HELP, or a keyword only mentioned, makes none).
    pub consent: Option<ConsentStatus>,
    /// The event it leaves on the message: `keyword`, or `keyword_mentioned`.
    pub event: EventKind,
}

impl Tenant {
    /// Stores a new message with its first event in one transaction: the send path's single
    /// write.
    pub async fn insert_message(
        &self,
        new: NewMessage,
        detail: EventDetail,
    ) -> Result<Message, DbErr> {
        self.insert_message_completing(new, detail, None).await
    }

    /// [`Tenant::insert_message`], recording `completion` (an `Idempotency-Key`'s outcome) in
    /// the same transaction: the message and the answer a retry gets are stored together or not
    /// at all.
    pub async fn insert_message_completing(
        &self,
        new: NewMessage,
        detail: EventDetail,
        completion: Option<&Completion<Message>>,
    ) -> Result<Message, DbErr> {
        let (_turn, txn) = super::begin_write(&self.db, &self.gate).await?;
        let message = self.insert_on(&txn, new, &detail).await?;
        if let Some(completion) = completion {
            let body = (completion.render)(&message);
            self.complete_idempotent(&txn, &completion.hold, completion.status, &body)
                .await?;
        }
        txn.commit().await?;
        self.hooks.committed();
        super::delivery::count_status(message.status, 1);
        Ok(message)
    }

    /// Stores an inbound message and everything its keyword causes in one transaction — the
    /// message with its first event (and webhook event), the consent record with its
    /// `consent.updated` event, the keyword event — so that a crash keeps all or none of them.
    /// A true redelivery (same receiving number, sender, carrier, carrier id and text, in this
    /// organization and mode) stores nothing: the first copy is returned with `true`.
    pub async fn receive_inbound(
        &self,
        new: NewMessage,
        detail: EventDetail,
        keyword: Option<KeywordEffect>,
        media: Vec<crate::domain::media::StoredMedia>,
    ) -> Result<(Message, bool), DbErr> {
        let (_turn, txn) = super::begin_write(&self.db, &self.gate).await?;
        if let Some((carrier, carrier_id)) = &new.carrier {
            // Deliveries of one carrier id to one number take turns: the check below and the
            // insert after it cannot interleave with another copy's.
            let key = format!("inbound:{}:{carrier}:{carrier_id}", new.to.as_str());
            super::one_at_a_time(&txn, &key).await?;
            let first = self
                .messages()
                .filter(message::Column::Direction.eq(Direction::Inbound))
                .filter(message::Column::ToNumber.eq(new.to.as_str()))
                .filter(message::Column::Carrier.eq(carrier.as_str()))
                .filter(message::Column::CarrierMessageId.eq(carrier_id.as_str()))
                .filter(message::Column::FromNumber.eq(new.from.as_str()))
                .filter(message::Column::Body.eq(new.text.as_str()))
                .order_by_asc(message::Column::CreatedAt)
                .one(&txn)
                .await?;
            if let Some(first) = first {
                return Ok((rows::message(first)?, true));
            }
        }
        let sender = new.from.clone();
        let message = self.insert_on(&txn, new, &detail).await?;
        if !media.is_empty() {
            let rows =
                media
                    .into_iter()
                    .enumerate()
                    .map(|(n, item)| entity::message_media::ActiveModel {
                        message_id: sea_orm::Set(message.id),
                        position: sea_orm::Set(i32::try_from(n + 1).unwrap_or(i32::MAX)),
                        content_type: sea_orm::Set(item.content_type),
                        content_id: sea_orm::Set(item.content_id),
                        bytes: sea_orm::Set(item.bytes),
                    });
            entity::message_media::Entity::insert_many(rows)
                .exec(&txn)
                .await?;
        }
        if let Some(effect) = keyword {
            if let Some(status) = effect.consent {
                self.serialize_recipient(&txn, &sender).await?;
                let before = self.state_on(&txn, &sender).await?;
                let evidence = format!("inbound message {} said {}", message.id, effect.word);
                self.insert_consent_on(
                    &txn,
                    &sender,
                    status,
                    ConsentSource::Keyword,
                    Some(&evidence),
                    before,
                )
                .await?;
            }
            let detail = EventDetail {
                stat: Some(effect.word.to_owned()),
                ..Default::default()
            };
            let now = Timestamp::now().as_datetime();
            super::delivery::insert_event_of(
                &txn,
                (message.id, message.org_id),
                effect.event,
                message.status,
                &detail,
                now,
            )
            .await?;
        }
        txn.commit().await?;
        self.hooks.committed();
        super::delivery::count_status(message.status, 1);
        Ok((message, false))
    }

    /// Inserts a message, its first event and its webhook event inside `txn`.
    async fn insert_on(
        &self,
        txn: &DatabaseTransaction,
        new: NewMessage,
        detail: &EventDetail,
    ) -> Result<Message, DbErr> {
        let now = Timestamp::now().as_datetime();
        let created = super::transitions::creation(new.direction, new.send_at.is_some())?;
        let row = super::transitions::message_row(self.org_id, self.mode, new, now, 0)?;
        let model = message::Entity::insert(row)
            .exec_with_returning(txn)
            .await?;
        let number = insert_event(
            txn,
            &model,
            created.event.0,
            created.to,
            detail,
            model.created_at,
        )
        .await?;
        let message = rows::message(model)?;
        if let Some(kind) = created.webhook {
            let entered = [(message.clone(), number, kind)];
            let at = message.created_at.as_datetime();
            super::transitions::raise_webhooks(txn, &self.hooks, &entered, at).await?;
        }
        Ok(message)
    }

    fn messages(&self) -> sea_orm::Select<message::Entity> {
        message::Entity::find()
            .filter(message::Column::OrgId.eq(self.org_id))
            .filter(message::Column::Mode.eq(self.mode))
    }

    pub async fn message(&self, id: Uuid) -> Result<Option<Message>, DbErr> {
        self.messages()
            .filter(message::Column::Id.eq(id))
            .one(&self.db)
            .await?
            .map(rows::message)
            .transpose()
    }

    /// Applies `step` to one of this tenant's messages and records `completion` (an
    /// `Idempotency-Key`'s outcome) in the same transaction: the message after it, or `None`
    /// when its guard no longer held (nothing written, nothing recorded). Fails with
    /// [`super::idempotency::TAKEN_OVER`] when the key's hold was lost.
    pub async fn apply_completing(
        &self,
        step: super::transitions::Step,
        completion: Option<&Completion<Message>>,
    ) -> Result<Option<Message>, DbErr> {
        let now = Timestamp::now().as_datetime();
        let (_turn, txn) = super::begin_write(&self.db, &self.gate).await?;
        let changed =
            super::transitions::apply(&txn, &self.hooks, std::slice::from_ref(&step), now).await?;
        let made = super::transitions::messages(changed)?.pop().flatten();
        if let (Some(message), Some(completion)) = (&made, completion) {
            let body = (completion.render)(message);
            self.complete_idempotent(&txn, &completion.hold, completion.status, &body)
                .await?;
        }
        txn.commit().await?;
        self.hooks.committed();
        if let Some(message) = &made {
            super::delivery::count_status(message.status, 1);
        }
        Ok(made)
    }

    /// Media item `index` (1-based) of this tenant's message `id`, if both exist.
    pub async fn message_media(
        &self,
        id: Uuid,
        index: i32,
    ) -> Result<Option<crate::domain::media::StoredMedia>, DbErr> {
        if self.message(id).await?.is_none() {
            return Ok(None);
        }
        let found = entity::message_media::Entity::find_by_id((id, index))
            .one(&self.db)
            .await?;
        Ok(found.map(|m| crate::domain::media::StoredMedia {
            content_type: m.content_type,
            content_id: m.content_id,
            bytes: m.bytes,
        }))
    }

    /// Up to `limit` messages matching `filter`, newest first (`created_at`, then `id`,
    /// descending), after `after` when given. Keyset pagination: a page costs the same however
    /// deep it is, and rows added meanwhile never shift it.
    pub async fn list_messages(
        &self,
        filter: &MessageFilter,
        after: Option<ListPosition>,
        limit: u64,
    ) -> Result<Vec<Message>, DbErr> {
        let mut query = self.messages();
        if let Some(v) = filter.status {
            query = query.filter(message::Column::Status.eq(v));
        }
        if let Some(v) = filter.direction {
            query = query.filter(message::Column::Direction.eq(v));
        }
        if let Some(v) = &filter.to {
            query = query.filter(message::Column::ToNumber.eq(v.as_str()));
        }
        if let Some(v) = &filter.from {
            query = query.filter(message::Column::FromNumber.eq(v.as_str()));
        }
        if let Some(v) = &filter.tag {
            query = query.filter(message::Column::Tag.eq(v.as_str()));
        }
        if let Some(v) = filter.created_after {
            query = query.filter(message::Column::CreatedAt.gt(v));
        }
        if let Some(v) = filter.created_before {
            query = query.filter(message::Column::CreatedAt.lt(v));
        }
        if let Some(p) = after {
            // A row-value comparison, so that both databases seek the listing index to the
            // position instead of scanning to it.
            query = query.filter(
                Expr::tuple([
                    Expr::col(message::Column::CreatedAt),
                    Expr::col(message::Column::Id),
                ])
                .lt(Expr::tuple([Expr::value(p.created_at), Expr::value(p.id)])),
            );
        }
        let found = query
            .order_by_desc(message::Column::CreatedAt)
            .order_by_desc(message::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?;
        rows::messages(found)
    }

    /// Up to `limit` of a message's events after number `after`, oldest first.
    pub async fn message_events(
        &self,
        message_id: Uuid,
        after: i32,
        limit: u64,
    ) -> Result<Vec<Event>, DbErr> {
        Ok(message_event::Entity::find()
            .filter(message_event::Column::OrgId.eq(self.org_id))
            .filter(message_event::Column::MessageId.eq(message_id))
            .filter(message_event::Column::Number.gt(after))
            .order_by_asc(message_event::Column::Number)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(rows::event)
            .collect())
    }
}
