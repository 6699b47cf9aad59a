//! Operational figures of towns, per town and per source, for a council's operator and for
//! `/metrics`: pushes and rejections per day, identity review queues, open transfers and how
//! far each change-feed consumer lags. Counts and names only, never personal data.

use std::collections::BTreeMap;

use diesel::prelude::*;
use diesel::upsert::excluded;
use serde::Serialize;
use utoipa::ToSchema;

use super::tables::{
    feed_cursors, identity_queue, municipalities, push_days, push_rejections, record_versions,
    transfers,
};
use super::{DbConn, StoreResult, now_rfc3339};
use crate::identity::QueueStatus;
use crate::transfer::TransferStatus;
use crate::{on_conn, write_tx};

/// One push as counted for the operational views.
pub struct PushTally<'a> {
    pub municipality: &'a str,
    pub source: &'a str,
    pub received: u64,
    pub rejected: u64,
    /// Rejected records per error code.
    pub codes: BTreeMap<&'a str, u64>,
}

/// Today's UTC date, the day a push is counted under.
fn today() -> String {
    chrono::Utc::now().format("%Y-%m-%d").to_string()
}

/// Add a push to its source's figures of the day.
pub fn record_push(conn: &mut DbConn, push: &PushTally) -> StoreResult<()> {
    let (day, now) = (today(), now_rfc3339());
    let day_row = (
        push_days::municipality_code.eq(push.municipality),
        push_days::source.eq(push.source),
        push_days::day.eq(&day),
        push_days::received.eq(push.received as i64),
        push_days::rejected.eq(push.rejected as i64),
        push_days::last_push_at.eq(&now),
    );
    // One town's figures: on PostgreSQL this runs beside other towns' writes.
    write_tx!(conn, town = push.municipality, |c| {
        diesel::insert_into(push_days::table)
            .values(day_row)
            .on_conflict((
                push_days::municipality_code,
                push_days::source,
                push_days::day,
            ))
            .do_update()
            .set((
                push_days::received.eq(push_days::received + excluded(push_days::received)),
                push_days::rejected.eq(push_days::rejected + excluded(push_days::rejected)),
                push_days::last_push_at.eq(excluded(push_days::last_push_at)),
            ))
            .execute(c)?;
        for (code, records) in &push.codes {
            diesel::insert_into(push_rejections::table)
                .values((
                    push_rejections::municipality_code.eq(push.municipality),
                    push_rejections::source.eq(push.source),
                    push_rejections::day.eq(&day),
                    push_rejections::code.eq(*code),
                    push_rejections::records.eq(*records as i64),
                ))
                .on_conflict((
                    push_rejections::municipality_code,
                    push_rejections::source,
                    push_rejections::day,
                    push_rejections::code,
                ))
                .do_update()
                .set(
                    push_rejections::records
                        .eq(push_rejections::records + excluded(push_rejections::records)),
                )
                .execute(c)?;
        }
        Ok::<_, diesel::result::Error>(())
    })?;
    Ok(())
}

/// Remember where a client's last change-feed page of a town ended.
pub fn record_feed_read(
    conn: &mut DbConn,
    municipality: &str,
    client_id: i64,
    client_name: &str,
    cursor: i64,
) -> StoreResult<()> {
    let now = now_rfc3339();
    write_tx!(conn, town = municipality, |c| diesel::insert_into(
        feed_cursors::table
    )
    .values((
        feed_cursors::municipality_code.eq(municipality),
        feed_cursors::client_id.eq(client_id),
        feed_cursors::client_name.eq(client_name),
        feed_cursors::cursor_seq.eq(cursor),
        feed_cursors::read_at.eq(&now),
    ))
    .on_conflict((feed_cursors::municipality_code, feed_cursors::client_id))
    .do_update()
    .set((
        feed_cursors::client_name.eq(client_name),
        feed_cursors::cursor_seq.eq(cursor),
        feed_cursors::read_at.eq(&now),
    ))
    .execute(c))?;
    Ok(())
}

/// A source's pushes of one day.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PushDay {
    /// UTC date.
    pub day: String,
    /// Records received (accepted and rejected).
    pub received: i64,
    pub rejected: i64,
    /// `rejected / received` (0 when nothing was received).
    pub rejection_rate: f64,
    /// Rejected records per error code.
    pub rejections_by_code: BTreeMap<String, i64>,
}

/// What one source of a town sent.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SourceOperations {
    pub source: String,
    pub last_push_at: Option<String>,
    /// The days it pushed in the window, oldest first.
    #[schema(max_items = 90)]
    pub days: Vec<PushDay>,
    /// Its records waiting in the identity queue: no candidate yet (`pending`), or for a
    /// person to decide (`review`).
    pub identity_pending: i64,
    pub identity_review: i64,
}

/// Transfers not yet decided.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct OpenTransfers {
    /// Offered or held by the town.
    pub outgoing: i64,
    /// Offered to the town.
    pub incoming: i64,
    /// Of these, escalated past their deadline.
    pub escalated: i64,
}

/// How far a client reading the town's change feed is behind.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FeedConsumer {
    pub client: String,
    /// Where its last page ended.
    pub cursor: i64,
    /// Versions of the town recorded after the cursor.
    pub lag: i64,
    pub last_read_at: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TownOperations {
    pub municipality_code: String,
    pub name: String,
    #[schema(max_items = 1000)]
    pub sources: Vec<SourceOperations>,
    pub transfers: OpenTransfers,
    #[schema(max_items = 10000)]
    pub feed_consumers: Vec<FeedConsumer>,
}

fn source_entry<'m>(
    sources: &'m mut BTreeMap<(String, String), SourceOperations>,
    town: &str,
    source: &str,
) -> &'m mut SourceOperations {
    sources
        .entry((town.to_string(), source.to_string()))
        .or_insert_with(|| SourceOperations {
            source: source.to_string(),
            last_push_at: None,
            days: Vec::new(),
            identity_pending: 0,
            identity_review: 0,
        })
}

/// The operational figures of `towns` (every registered town when `None`), with pushes from
/// `since` (a UTC date) on; `None` counts every day.
pub fn town_operations(
    conn: &mut DbConn,
    towns: Option<&[String]>,
    since: Option<&str>,
) -> StoreResult<Vec<TownOperations>> {
    let since = since.unwrap_or("");
    let (names, days, rejections, queue, open, cursors) = on_conn!(conn, |c| {
        let mut names = municipalities::table
            .select((municipalities::municipality_code, municipalities::name))
            .order(municipalities::municipality_code)
            .into_boxed();
        let mut days = push_days::table
            .filter(push_days::day.ge(since))
            .order((push_days::source, push_days::day))
            .into_boxed();
        let mut rejections = push_rejections::table
            .filter(push_rejections::day.ge(since))
            .select((
                push_rejections::municipality_code,
                push_rejections::source,
                push_rejections::day,
                push_rejections::code,
                push_rejections::records,
            ))
            .into_boxed();
        let waiting = [QueueStatus::Pending.as_str(), QueueStatus::Review.as_str()];
        let mut queue = identity_queue::table
            .filter(identity_queue::status.eq_any(waiting))
            .group_by((
                identity_queue::municipality_code,
                identity_queue::source,
                identity_queue::status,
            ))
            .select((
                identity_queue::municipality_code,
                identity_queue::source,
                identity_queue::status,
                diesel::dsl::count_star(),
            ))
            .into_boxed();
        let undecided = [
            TransferStatus::Offered.as_str(),
            TransferStatus::Held.as_str(),
        ];
        let mut open = transfers::table
            .filter(transfers::status.eq_any(undecided))
            .select((
                transfers::municipality_code,
                transfers::destination_code,
                transfers::escalated_at.is_not_null(),
            ))
            .into_boxed();
        let mut cursors = feed_cursors::table
            .order((feed_cursors::municipality_code, feed_cursors::client_name))
            .into_boxed();
        if let Some(towns) = towns {
            names = names.filter(municipalities::municipality_code.eq_any(towns));
            days = days.filter(push_days::municipality_code.eq_any(towns));
            rejections = rejections.filter(push_rejections::municipality_code.eq_any(towns));
            queue = queue.filter(identity_queue::municipality_code.eq_any(towns));
            open = open.filter(
                transfers::municipality_code
                    .eq_any(towns)
                    .or(transfers::destination_code.eq_any(towns)),
            );
            cursors = cursors.filter(feed_cursors::municipality_code.eq_any(towns));
        }
        Ok::<_, diesel::result::Error>((
            names.load::<(String, String)>(c)?,
            days.load::<(String, String, String, i64, i64, String)>(c)?,
            rejections.load::<(String, String, String, String, i64)>(c)?,
            queue.load::<(String, String, String, i64)>(c)?,
            open.load::<(String, Option<String>, bool)>(c)?,
            cursors.load::<(String, i64, String, i64, String)>(c)?,
        ))
    })?;

    let mut by_code: BTreeMap<(String, String, String), BTreeMap<String, i64>> = BTreeMap::new();
    for (town, source, day, code, records) in rejections {
        by_code
            .entry((town, source, day))
            .or_default()
            .insert(code, records);
    }
    let mut sources: BTreeMap<(String, String), SourceOperations> = BTreeMap::new();
    for (town, source, day, received, rejected, last_push_at) in days {
        let entry = source_entry(&mut sources, &town, &source);
        if entry
            .last_push_at
            .as_ref()
            .is_none_or(|t| *t < last_push_at)
        {
            entry.last_push_at = Some(last_push_at);
        }
        entry.days.push(PushDay {
            rejection_rate: if received == 0 {
                0.0
            } else {
                rejected as f64 / received as f64
            },
            rejections_by_code: by_code
                .remove(&(town, source, day.clone()))
                .unwrap_or_default(),
            day,
            received,
            rejected,
        });
    }
    for (town, source, status, n) in queue {
        let entry = source_entry(&mut sources, &town, &source);
        if status == QueueStatus::Pending.as_str() {
            entry.identity_pending = n;
        } else {
            entry.identity_review = n;
        }
    }
    let mut figures = Vec::with_capacity(names.len());
    for (code, name) in names {
        let mut transfers = OpenTransfers::default();
        for (origin, destination, escalated) in &open {
            let outgoing = *origin == code;
            let incoming = destination.as_deref() == Some(code.as_str());
            transfers.outgoing += i64::from(outgoing);
            transfers.incoming += i64::from(incoming);
            transfers.escalated += i64::from(escalated & (outgoing || incoming));
        }
        let mut feed_consumers = Vec::new();
        for (town, _, client, cursor, read_at) in cursors.iter().filter(|c| c.0 == code) {
            let lag = on_conn!(conn, |c| record_versions::table
                .filter(record_versions::municipality_code.eq(town))
                .filter(record_versions::seq.gt(cursor))
                .count()
                .get_result::<i64>(c))?;
            feed_consumers.push(FeedConsumer {
                client: client.clone(),
                cursor: *cursor,
                lag,
                last_read_at: read_at.clone(),
            });
        }
        let town_sources = sources
            .iter()
            .filter(|((town, _), _)| *town == code)
            .map(|(_, s)| s.clone())
            .collect();
        figures.push(TownOperations {
            municipality_code: code,
            name,
            sources: town_sources,
            transfers,
            feed_consumers,
        });
    }
    Ok(figures)
}
