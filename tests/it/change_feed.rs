//! The change feed under concurrent writers on PostgreSQL: a town's writes never wait for
//! another town's open transaction, and a consumer polling one town's feed never misses a
//! change that commits after a change with a larger number was already read.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use kodomo_hub::keys::KeyPaths;
use kodomo_hub::store::records::changes;
use kodomo_hub::store::{Location, PreparedRecord, Store, StoreError, in_town_write_transaction};

use crate::common::{Backend, Hub, OTHER_TOWN, PG_SKIP, TOWN, pg_url, record};

const SOURCE: &str = "feed-test";

fn prepared(id: &str, resident_no: &str, absence_days: i64) -> PreparedRecord {
    let mut value = record("school-attendance", id, resident_no);
    value["absence_days"] = absence_days.into();
    PreparedRecord::from_record(0, &value)
}

/// A store on the hub's PostgreSQL database, beside the running hub.
fn store_of(hub: &Hub) -> Store {
    let url = hub.pg_database_url().expect("a PostgreSQL hub");
    Store::open(
        &Location::Postgres(url.to_string()),
        &KeyPaths::in_dir(hub.data_dir()),
    )
    .expect("open the hub's database")
}

/// Write `record` into `town` in one transaction that stays open for `hold` after the write.
fn write_and_hold(store: &Store, town: &str, record: &PreparedRecord, hold: Duration) {
    let mut conn = store.conn().expect("conn");
    in_town_write_transaction(&mut conn, town, |tx| {
        tx.upsert_in_tx(town, SOURCE, std::slice::from_ref(record))?;
        std::thread::sleep(hold);
        Ok(())
    })
    .expect("write");
}

#[test]
fn towns_never_wait_for_each_other_and_the_feed_misses_nothing() {
    if pg_url().is_none() {
        println!("{PG_SKIP}");
        return;
    }
    let hub = Hub::start(Backend::Postgres);
    hub.add_town(TOWN, "町A");
    hub.add_town(OTHER_TOWN, "町B");
    let store = store_of(&hub);

    // Another town's transaction stays open for 3 s; this town's write goes through meanwhile.
    let (written, other_town_wrote) = mpsc::channel();
    let holder = {
        let store = store.clone();
        std::thread::spawn(move || {
            let mut conn = store.conn().expect("conn");
            in_town_write_transaction(&mut conn, OTHER_TOWN, |tx| {
                tx.upsert_in_tx(OTHER_TOWN, SOURCE, &[prepared("b-1", "9000000001", 1)])?;
                written.send(()).expect("signal");
                std::thread::sleep(Duration::from_secs(3));
                Ok(())
            })
            .expect("other town's write")
        })
    };
    other_town_wrote.recv().expect("the other town wrote");
    let started = Instant::now();
    write_and_hold(
        &store,
        TOWN,
        &prepared("a-0", "1000000000", 0),
        Duration::ZERO,
    );
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(1500),
        "a write in {TOWN} waited {took:?} for an open transaction of {OTHER_TOWN}"
    );
    holder.join().expect("holder");

    // Writers in one town, each holding its transaction open a while after its write (so later
    // change-feed numbers are drawn meanwhile), and a reader polling the town's feed.
    let writers = 4;
    let per_writer = 12;
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (store, done) = (store.clone(), done.clone());
        std::thread::spawn(move || {
            let mut conn = store.conn().expect("conn");
            let mut cursor = 0;
            let mut seen = BTreeSet::new();
            loop {
                let finished = done.load(Ordering::SeqCst);
                for change in changes(&mut conn, TOWN, cursor, 1000).expect("feed") {
                    cursor = change.version.seq;
                    seen.insert((change.version.source_record_id, change.version.version));
                }
                if finished {
                    return seen;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let handles: Vec<_> = (0..writers)
        .map(|w| {
            let store = store.clone();
            std::thread::spawn(move || {
                for n in 0..per_writer {
                    // Two writers share each record, so versions 1 and 2 both appear.
                    let id = format!("a-{}-{}", w / 2, n);
                    let hold = Duration::from_millis(((w * 7 + n * 5) % 20) as u64);
                    write_and_hold(&store, TOWN, &prepared(&id, "1000000001", w as i64), hold);
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().expect("writer");
    }
    done.store(true, Ordering::SeqCst);
    let seen = reader.join().expect("reader");

    let mut conn = store.conn().expect("conn");
    let all: BTreeSet<(String, i32)> = changes(&mut conn, TOWN, 0, 100_000)
        .expect("feed")
        .into_iter()
        .map(|c| (c.version.source_record_id, c.version.version))
        .collect();
    assert_eq!(
        all.len(),
        1 + writers / 2 * per_writer * 2,
        "every write is in the feed"
    );
    let missed: Vec<_> = all.difference(&seen).collect();
    assert!(missed.is_empty(), "the polling reader missed {missed:?}");

    // A town's transaction holds no lock on another town's feed: it may not write there.
    let refused = in_town_write_transaction(&mut conn, TOWN, |tx| {
        tx.upsert_in_tx(OTHER_TOWN, SOURCE, &[prepared("b-2", "9000000002", 2)])
    });
    assert!(
        matches!(refused, Err(StoreError::Invalid(_))),
        "a write to another town: {refused:?}"
    );
}
