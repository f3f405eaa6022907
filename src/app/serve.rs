//! `invite-bot serve`: the long-running bot. Today it runs the HTTP listener (health, readiness,
//! metrics, provider webhooks); the Discord client starts next to it when configured.
//!
//! Every component gets the same shutdown signal and drains before `run` returns, so SIGINT/SIGTERM
//! finish in-flight requests instead of cutting them off; what has not finished within
//! `[http] shutdown_grace_seconds` is cut off, so a stalled client or a silent mail server cannot
//! keep the process alive.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::response::IntoResponse;
use axum::Router;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tower::ServiceExt;

use crate::actions::Actions;
use crate::config::{Config, DiscordMode, HttpConfig};
use crate::discord::endpoint::InteractionsEndpoint;
use crate::drain::Drain;
use crate::http::{router_with, HttpState};
use crate::providers::{WebhookConfigError, Webhooks};
use crate::store::{Lead, Store};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("config: {0}")]
    Config(#[from] WebhookConfigError),
    #[error("the HTTP listener failed: {0}")]
    Http(#[source] std::io::Error),
    #[error("the HTTP listener stopped unexpectedly: {0}")]
    Crashed(#[source] tokio::task::JoinError),
    #[error(transparent)]
    Discord(#[from] crate::discord::DiscordError),
}

/// What `serve` runs besides the listener.
#[derive(Default)]
pub struct ServeOptions {
    /// `--no-discord`: run the HTTP listener alone, even when a Discord token is configured.
    pub no_discord: bool,
    /// Background work besides the built-in retries (the product's sync), run by the one process
    /// that leads the background work.
    pub jobs: Vec<BackgroundJob>,
    /// How the Discord edge answers (tests shorten `answer_within` to see deferrals).
    pub discord: crate::discord::DiscordOptions,
}

/// A running HTTP listener.
pub struct HttpHandle {
    /// Where it listens (the real port when the config asked for port 0).
    pub local_addr: SocketAddr,
    task: JoinHandle<std::io::Result<()>>,
}

impl HttpHandle {
    /// Waits until the listener has drained after its shutdown signal.
    pub async fn wait(self) -> Result<(), ServeError> {
        match self.task.await {
            Ok(result) => result.map_err(ServeError::Http),
            Err(join) => Err(ServeError::Crashed(join)),
        }
    }
}

/// The state the HTTP edge shares, built from the config and the actions.
pub fn http_state(config: &Config, actions: Actions) -> Result<HttpState, ServeError> {
    let webhooks = Webhooks::from_config(&config.providers)?;
    Ok(
        HttpState::new(actions, webhooks, config.http.max_body_bytes)
            .with_push(crate::http::push::PushApi::from_config(config)),
    )
}

/// The deadlines and bounds of the HTTP listener.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// A client must send a request's headers within this (idle kept-alive connections too).
    pub header_timeout: Duration,
    /// From the headers to the response, the body's upload included; slower requests get 408.
    pub request_timeout: Duration,
    /// Connections served at once; further clients wait in the system's accept queue.
    pub max_connections: usize,
    /// After the shutdown signal, how long open connections get before they are cut.
    pub drain: Duration,
}

impl From<&HttpConfig> for HttpLimits {
    fn from(config: &HttpConfig) -> Self {
        HttpLimits {
            header_timeout: Duration::from_secs(config.header_timeout_seconds),
            request_timeout: Duration::from_secs(config.request_timeout_seconds),
            max_connections: config.max_connections,
            drain: Duration::from_secs(config.shutdown_grace_seconds),
        }
    }
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits::from(&HttpConfig::default())
    }
}

/// Binds `listen` and serves `state` until `shutdown` completes, with the default [`HttpLimits`].
pub async fn start_http(
    listen: &str,
    state: HttpState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<HttpHandle, ServeError> {
    start_http_with(listen, state, HttpLimits::default(), shutdown).await
}

/// Binds `listen` and serves `state` within `limits` until `shutdown` completes.
pub async fn start_http_with(
    listen: &str,
    state: HttpState,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<HttpHandle, ServeError> {
    start_http_routes(listen, state, Router::new(), limits, shutdown).await
}

/// Like [`start_http_with`], with `extra` routes beside the listener's own (the Discord
/// interactions endpoint in http mode).
pub async fn start_http_routes(
    listen: &str,
    state: HttpState,
    extra: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<HttpHandle, ServeError> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: listen.to_owned(),
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: listen.to_owned(),
        source,
    })?;
    let app = router_with(state, extra);
    let task = tokio::spawn(serve_http(listener, app, limits, shutdown));
    tracing::info!(%local_addr, "HTTP listener started");
    Ok(HttpHandle { local_addr, task })
}

/// The accept loop. Not `axum::serve`: that one sets no header timeout, has no connection bound,
/// and waits for every connection to finish on shutdown, however long a client takes to upload
/// (one held `serve` 98 s after SIGTERM).
async fn serve_http(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    tokio::pin!(shutdown);
    let (stop, stopped) = watch::channel(false);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let (stream, remote) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: the error repeats at once, so wait a
                    // little rather than spin. A client that hung up before we accepted is nothing.
                    if !matches!(
                        error.kind(),
                        std::io::ErrorKind::ConnectionAborted | std::io::ErrorKind::ConnectionReset
                    ) {
                        tracing::warn!(%error, "cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    continue;
                }
            },
        };
        connections.spawn(serve_connection(
            stream,
            remote,
            app.clone(),
            limits,
            stopped.clone(),
            slot,
        ));
    }
    drop(listener);
    let _ = stop.send(true);
    let drained = tokio::time::timeout(limits.drain, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            "connections still open after the shutdown grace period; closing them"
        );
        connections.shutdown().await;
    }
    Ok(())
}

/// Serves one connection until the client closes it, a deadline passes, or shutdown (then the
/// request in progress may finish).
async fn serve_connection(
    stream: TcpStream,
    remote: SocketAddr,
    app: Router,
    limits: HttpLimits,
    mut stopped: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    let service = hyper::service::service_fn(move |request: hyper::Request<_>| {
        let app = app.clone();
        async move {
            let mut request = request.map(axum::body::Body::new);
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(remote));
            // The handler reads the body: this bounds a slow upload as well as a slow handler.
            let response =
                match tokio::time::timeout(limits.request_timeout, app.oneshot(request)).await {
                    Ok(Ok(response)) => response,
                    Ok(Err(infallible)) => match infallible {},
                    Err(_) => (
                        axum::http::StatusCode::REQUEST_TIMEOUT,
                        [(axum::http::header::CONNECTION, "close")],
                        "request timed out\n",
                    )
                        .into_response(),
                };
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let connection = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%error, "connection ended with an error");
            }
        }
        _ = async { stopped.wait_for(|stop| *stop).await.map(|_| ()) } => {
            // Closes an idle connection at once; a request in progress may finish (within the
            // drain's deadline, which cuts this task off otherwise).
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

/// Makes glibc give every block of 1 MiB or more back to the system when it is freed.
///
/// Each wrong guess at `/api/activate` hashes with Argon2, which allocates one 19 MiB block on a
/// blocking thread. Left to itself, glibc raises its mmap threshold past 19 MiB after the first
/// such block is freed; every later one then comes from the calling thread's arena and stays
/// there after the hash. With many blocking threads that held about 250 MB for good after a
/// few dozen guesses, and 200 guesses at once peaked at 407 MB (`invite-bot-bench --hostile`).
/// A fixed threshold stops the dynamic adjustment: each hash maps its block and unmaps it.
fn return_large_blocks_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is safe to call at any time.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024);
    }
}

/// Runs the bot until `shutdown` completes, then stops every component and waits for them.
/// `on_listening` is told the HTTP address once it is bound (the CLI prints it; tests connect to it).
pub async fn run(
    config: &Config,
    actions: Actions,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send,
    on_listening: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    return_large_blocks_to_the_system();
    // Held until `run` returns: a second `serve` on the same SQLite file sees it.
    let replica = actions.engine().store().claim_replica();
    if replica.shared {
        tracing::warn!(
            "another invite-bot serve already uses this SQLite database file: SQLite means one \
             replica (one host, one writer, background work run by each). Stop the other process, \
             or use PostgreSQL to run several replicas"
        );
    }
    let (stop, stopped) = watch::channel(false);
    let wait_for_stop = |mut stopped: watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };

    let retries = tokio::spawn(background_work(
        actions.engine().store().clone(),
        background_jobs(&actions, options.jobs),
        wait_for_stop(stopped.clone()),
    ));
    let discord_actions = actions.clone();
    // Begun at the signal: readiness fails and new interactions are refused while the ones in
    // flight finish.
    let drain = Drain::default();
    let state = http_state(config, actions)?.with_drain(drain.clone());
    let limits = HttpLimits::from(&config.http);
    let discord_on = !options.no_discord && config.discord.token.is_some();
    let http_mode = discord_on && config.discord.mode == DiscordMode::Http;
    let endpoint = if http_mode {
        let endpoint = InteractionsEndpoint::new(
            discord_actions.clone(),
            config,
            options.discord.clone(),
            drain.clone(),
        )?;
        // In the background: a slow or unreachable Discord API must not hold the listener back.
        let registering = endpoint.clone();
        tokio::spawn(async move { registering.register_commands().await });
        tracing::info!(
            path = crate::discord::endpoint::PATH,
            "Discord interactions are answered over HTTP"
        );
        endpoint.router()
    } else {
        Router::new()
    };
    let http = start_http_routes(
        &config.http.listen,
        state,
        endpoint,
        limits,
        wait_for_stop(stopped.clone()),
    )
    .await?;
    on_listening(http.local_addr);

    let discord = if !discord_on {
        tracing::info!("Discord is not started (no token configured, or --no-discord)");
        None
    } else if http_mode {
        None
    } else {
        let (actions, config, stop, discord_options) = (
            discord_actions,
            config.clone(),
            wait_for_stop(stopped.clone()),
            options.discord,
        );
        Some(tokio::spawn(async move {
            crate::discord::run_with(actions, &config, discord_options, stop).await
        }))
    };

    // Runs until the signal, unless the Discord connection ends first (a bad token, say): then the
    // whole bot stops with that error rather than limping on without its chat.
    let mut failure = None;
    match discord {
        Some(mut task) => {
            tokio::select! {
                () = shutdown => {
                    drain_in_flight(&drain, limits.drain).await;
                    let _ = stop.send(true);
                    // The gateway gets its close handshake (`discord::run` waits up to 10 s for
                    // it), but a shard that never lets go does not hold the process.
                    let close = limits.drain.max(Duration::from_secs(15));
                    match tokio::time::timeout(close, &mut task).await {
                        Ok(Ok(Err(error))) => failure = Some(error),
                        Ok(_) => {}
                        Err(_) => {
                            tracing::warn!("the Discord connection did not close in time; dropping it");
                            task.abort();
                        }
                    }
                }
                result = &mut task => {
                    let _ = stop.send(true);
                    failure = Some(match result {
                        Ok(Err(error)) => error,
                        Ok(Ok(())) | Err(_) => crate::discord::DiscordError::Stopped,
                    });
                }
            }
        }
        None => {
            shutdown.await;
            drain_in_flight(&drain, limits.drain).await;
        }
    }
    tracing::info!("shutting down");
    let _ = stop.send(true);
    // A send in flight gets the grace period, then is cut off: its email stays queued (the next
    // start retries it), and a silent mail server does not hold the process.
    let mut retries = retries;
    if tokio::time::timeout(limits.drain, &mut retries)
        .await
        .is_err()
    {
        tracing::warn!(
            "queued sends still running after the shutdown grace period; they stay queued"
        );
        retries.abort();
    }
    http.wait().await?;
    match failure {
        Some(error) => Err(error.into()),
        None => Ok(()),
    }
}

/// Fails readiness, refuses new interactions, and waits (at most `grace`) for those in flight to
/// finish, their follow-ups included. The listener keeps answering meanwhile, so a load balancer
/// sees readyz 503 and Discord's requests get 503, not a closed port.
async fn drain_in_flight(drain: &Drain, grace: Duration) {
    drain.begin();
    let in_flight = drain.in_flight();
    if in_flight > 0 {
        tracing::info!(
            in_flight,
            "draining: waiting for the interactions in flight"
        );
    }
    if tokio::time::timeout(grace, drain.idle()).await.is_err() {
        tracing::warn!(
            in_flight = drain.in_flight(),
            "interactions still in flight after the shutdown grace period; cutting them off"
        );
    }
}

/// How often queued invitations and undelivered escalations are retried while serving.
const RETRY_INTERVAL: Duration = Duration::from_secs(60);
/// How often a process that does not lead the background work tries to take it over: a leader
/// that died is replaced within this (plus the time its database session takes to close).
const LEAD_RETRY: Duration = Duration::from_secs(10);

/// One piece of background work and how often it runs (only on the process that leads).
pub struct BackgroundJob {
    pub name: &'static str,
    pub every: Duration,
    pub run: Box<dyn Fn() -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>,
}

/// The background work of `serve`: what a crash or an outage left waiting (sends, escalation
/// webhooks), old rows, and the jobs given (the product's sync).
fn background_jobs(actions: &Actions, extra: Vec<BackgroundJob>) -> Vec<BackgroundJob> {
    let actions = actions.clone();
    let retry = BackgroundJob {
        name: "retry-pending",
        every: RETRY_INTERVAL,
        run: Box::new(move || {
            let actions = actions.clone();
            Box::pin(async move { retry_pending_once(&actions).await })
        }),
    };
    std::iter::once(retry).chain(extra).collect()
}

/// Runs the jobs while this process leads the background work, until `stop`. Several processes on
/// one PostgreSQL database elect one leader (an advisory lock); the others stand by and take over
/// within [`LEAD_RETRY`] when it goes.
async fn background_work(store: Store, jobs: Vec<BackgroundJob>, stop: impl Future<Output = ()>) {
    tokio::pin!(stop);
    let mut lead: Option<Lead> = None;
    let mut due: Vec<tokio::time::Instant> = vec![tokio::time::Instant::now(); jobs.len()];
    loop {
        if let Some(held) = &mut lead {
            if !held.still_held().await {
                tracing::warn!("lost the lead of background work (its database session ended)");
                lead = None;
            }
        }
        if lead.is_none() {
            match store.try_lead("background").await {
                Ok(Some(taken)) => {
                    tracing::info!("leading background work");
                    lead = Some(taken);
                    due.iter_mut()
                        .for_each(|at| *at = tokio::time::Instant::now());
                }
                Ok(None) => {}
                Err(error) => tracing::warn!(
                    error = %crate::error::error_chain(&error),
                    "cannot ask for the lead of background work"
                ),
            }
        }
        let mut wake = tokio::time::Instant::now() + LEAD_RETRY;
        if lead.is_some() {
            for (job, at) in jobs.iter().zip(due.iter_mut()) {
                if *at <= tokio::time::Instant::now() {
                    tracing::debug!(job = job.name, "running background job");
                    // A job that stops is cut off here, not the loop.
                    tokio::select! {
                        () = &mut stop => break,
                        () = (job.run)() => {}
                    }
                    *at = tokio::time::Instant::now() + job.every;
                }
                wake = wake.min(*at);
            }
        }
        tokio::select! {
            () = &mut stop => break,
            () = tokio::time::sleep_until(wake) => {}
        }
    }
    if let Some(lead) = lead {
        lead.release().await;
    }
}

/// Sends what a crash or an outage left waiting and prunes old rows, once.
async fn retry_pending_once(actions: &Actions) {
    match actions.prune_old_rows(chrono::Utc::now()).await {
        Ok((0, 0)) => {}
        Ok((buttons, audit)) => tracing::info!(buttons, audit, "pruned old rows"),
        Err(error) => {
            tracing::warn!(error = %crate::error::error_chain(&error), "pruning old rows failed")
        }
    }
    match actions.send_due_invitations().await {
        Ok(0) => {}
        Ok(sent) => tracing::info!(sent, "sent queued invitations"),
        Err(error) => {
            tracing::warn!(error = %crate::error::error_chain(&error), "retrying queued invitations failed")
        }
    }
    match actions.deliver_due_escalations().await {
        Ok(0) => {}
        Ok(delivered) => tracing::info!(delivered, "delivered pending escalations"),
        Err(error) => {
            tracing::warn!(error = %crate::error::error_chain(&error), "retrying escalation webhooks failed")
        }
    }
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM (what `docker stop` and systemd send).
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}
