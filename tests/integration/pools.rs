//! Connection pools: the bot's is opened whole at start (PostgreSQL), one-shot commands open what
//! they use, and SQLite's never outgrows two connections per core.

use std::time::{Duration, Instant};

use invite_bot::store::{ConnectOptions, Store};

use crate::helpers::{fresh_database, Backend};

async fn pool_size_within(store: &Store, wanted: u32, limit: Duration) -> u32 {
    let deadline = Instant::now() + limit;
    loop {
        let size = match store {
            Store::Sqlite(pool, _) => pool.size(),
            Store::Postgres(pool, _) => pool.size(),
        };
        if size >= wanted || Instant::now() >= deadline {
            return size;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bot_opens_its_whole_postgres_pool_at_start_and_commands_do_not() {
    let Some(database) = fresh_database(Backend::Postgres).await else {
        return;
    };
    let options = |warm| ConnectOptions {
        max_connections: 4,
        warm,
        ..ConnectOptions::default()
    };
    let warm = Store::connect(&database.url, &options(true)).await.unwrap();
    assert_eq!(pool_size_within(&warm, 4, Duration::from_secs(10)).await, 4);
    warm.close().await;

    let cold = Store::connect(&database.url, &options(false))
        .await
        .unwrap();
    cold.ping().await.unwrap();
    // Given time to open more, a cold pool still holds only the one connection it used.
    assert_eq!(
        pool_size_within(&cold, 4, Duration::from_millis(300)).await,
        1
    );
    cold.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_pool_never_holds_more_than_two_connections_per_core() {
    let database = fresh_database(Backend::Sqlite).await.unwrap();
    let store = Store::connect(
        &database.url,
        &ConnectOptions {
            max_connections: 64,
            ..ConnectOptions::default()
        },
    )
    .await
    .unwrap();
    store.migrate().await.unwrap();
    // 64 readers at once: the pool grows only to its cap, and every reader is served.
    let readers: Vec<_> = (0..64)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.ping().await })
        })
        .collect();
    for reader in readers {
        reader.await.unwrap().unwrap();
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    let Store::Sqlite(pool, _) = &store else {
        unreachable!()
    };
    assert!(
        pool.size() <= (2 * cores).max(2),
        "{} connections",
        pool.size()
    );
    store.close().await;
}
