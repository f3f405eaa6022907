//! Running the bench binary, and a fresh migrated store per backend.

use std::path::Path;
use std::process::Output;

use invite_bot::store::{ConnectOptions, Store};
use invite_bot_testkit::database::{fresh_database, Backend, FreshDatabase};
use invite_bot_testkit::process::run_binary;

pub fn bench_exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_invite-bot-bench"))
}

/// `invite-bot-bench ARGS` in `dir`, with no inherited configuration.
pub fn run_bench(dir: &Path, args: &[&str]) -> Output {
    run_binary(bench_exe(), dir, &[], args)
}

/// `invite-bot ARGS` in `dir`: the bench binary running as the bot, as the Discord scenario runs it.
pub fn run_bot(dir: &Path, args: &[&str]) -> Output {
    run_binary(
        bench_exe(),
        dir,
        &[(invite_bot_bench::discord::RUN_AS_BOT, "1")],
        args,
    )
}

/// A fresh database on `backend`, migrated, connected as the bot connects; `None` when PostgreSQL
/// is not configured for tests (and not required).
pub async fn fresh_store(backend: Backend) -> Option<(Store, FreshDatabase)> {
    let database = fresh_database(backend).await?;
    let store = Store::connect(&database.url, &ConnectOptions::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    Some((store, database))
}

/// Defines each test twice, once per backend: `mod name { fn sqlite(); fn postgres(); }`.
macro_rules! both_backends {
    ($(async fn $name:ident($store:ident) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let ($store, _database) = $crate::helpers::fresh_store(
                        invite_bot_testkit::database::Backend::Sqlite,
                    )
                    .await
                    .unwrap();
                    $body
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let Some(($store, _database)) = $crate::helpers::fresh_store(
                        invite_bot_testkit::database::Backend::Postgres,
                    )
                    .await
                    else {
                        return;
                    };
                    $body
                }
            }
        )*
    };
}
pub(crate) use both_backends;
