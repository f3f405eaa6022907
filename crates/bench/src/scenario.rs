//! Runs one scenario: a list of operations, `concurrency` tokio tasks pulling from it, each
//! operation timed on its own.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::BenchError;

/// What a scenario produced: one latency per operation, the wall time of the whole run, and each
/// operation's result (in completion order).
pub struct ScenarioRun<R> {
    pub latencies: Vec<Duration>,
    pub wall: Duration,
    pub results: Vec<R>,
}

/// Runs `op` once per item, with at most `concurrency` operations in flight.
pub async fn run_scenario<T, R, F, Fut>(
    items: Vec<T>,
    concurrency: usize,
    op: F,
) -> Result<ScenarioRun<R>, BenchError>
where
    T: Clone + Send + Sync + 'static,
    R: Send + 'static,
    F: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, BenchError>> + Send + 'static,
{
    let items = Arc::new(items);
    let op = Arc::new(op);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency.max(1) {
        let (items, op, next) = (items.clone(), op.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut results = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                let item = item.clone();
                let start = Instant::now();
                let result = op(item).await?;
                latencies.push(start.elapsed());
                results.push(result);
            }
            Ok::<_, BenchError>((latencies, results))
        }));
    }
    let mut run = ScenarioRun {
        latencies: Vec::with_capacity(items.len()),
        wall: Duration::ZERO,
        results: Vec::with_capacity(items.len()),
    };
    for task in tasks {
        let (latencies, results) = task.await.map_err(|e| BenchError::Task(e.to_string()))??;
        run.latencies.extend(latencies);
        run.results.extend(results);
    }
    run.wall = started.elapsed();
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_item_runs_once_and_concurrency_is_bounded() {
        let in_flight = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let (f, m) = (in_flight.clone(), most.clone());
        let run = run_scenario((0..200u32).collect(), 4, move |i| {
            let (f, m) = (f.clone(), m.clone());
            async move {
                let now = f.fetch_add(1, Ordering::SeqCst) + 1;
                m.fetch_max(now, Ordering::SeqCst);
                tokio::task::yield_now().await;
                f.fetch_sub(1, Ordering::SeqCst);
                Ok(i)
            }
        })
        .await
        .unwrap();
        let mut results = run.results;
        results.sort_unstable();
        assert_eq!(results, (0..200).collect::<Vec<_>>());
        assert_eq!(run.latencies.len(), 200);
        assert!(most.load(Ordering::SeqCst) <= 4);
    }

    #[tokio::test]
    async fn an_operation_error_fails_the_scenario() {
        let run = run_scenario(vec![1, 2, 3], 2, |i| async move {
            if i == 2 {
                Err(BenchError::InvalidOptions("boom".into()))
            } else {
                Ok(i)
            }
        })
        .await;
        assert!(matches!(run, Err(BenchError::InvalidOptions(_))));
    }
}
