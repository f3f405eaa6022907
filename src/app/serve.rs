//! `invite-bot serve`: the long-running bot. Today it runs the HTTP listener (health, readiness,
//! metrics, provider webhooks); the Discord client starts next to it when configured.
//!
//! Every component gets the same shutdown signal and drains before `run` returns, so SIGINT/SIGTERM
//! finish in-flight requests instead of cutting them off.

use std::future::Future;
use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::actions::Actions;
use crate::app::config::Config;
use crate::http::{router, HttpState};
use crate::providers::{WebhookConfigError, Webhooks};

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
#[derive(Debug, Clone, Copy, Default)]
pub struct ServeOptions {
    /// `--no-discord`: run the HTTP listener alone, even when a Discord token is configured.
    pub no_discord: bool,
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
    Ok(HttpState::new(
        actions,
        webhooks,
        config.http.max_body_bytes,
    ))
}

/// Binds `listen` and serves `state` until `shutdown` completes.
pub async fn start_http(
    listen: &str,
    state: HttpState,
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
    let app = router(state);
    let task = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
    });
    tracing::info!(%local_addr, "HTTP listener started");
    Ok(HttpHandle { local_addr, task })
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
    let (stop, stopped) = watch::channel(false);
    let wait_for_stop = |mut stopped: watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };

    let retries = tokio::spawn(retry_pending_work(
        actions.clone(),
        wait_for_stop(stopped.clone()),
    ));
    let discord_actions = actions.clone();
    let state = http_state(config, actions)?;
    let http = start_http(&config.http.listen, state, wait_for_stop(stopped.clone())).await?;
    on_listening(http.local_addr);

    let discord = if options.no_discord || config.discord.token.is_none() {
        tracing::info!("Discord is not started (no token configured, or --no-discord)");
        None
    } else {
        let (actions, config, stop) = (
            discord_actions,
            config.clone(),
            wait_for_stop(stopped.clone()),
        );
        Some(tokio::spawn(async move {
            crate::discord::run(actions, &config, stop).await
        }))
    };

    // Runs until the signal, unless the Discord connection ends first (a bad token, say): then the
    // whole bot stops with that error rather than limping on without its chat.
    let mut failure = None;
    match discord {
        Some(mut task) => {
            tokio::select! {
                () = shutdown => {
                    let _ = stop.send(true);
                    if let Ok(Err(error)) = (&mut task).await {
                        failure = Some(error);
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
        None => shutdown.await,
    }
    tracing::info!("shutting down");
    let _ = stop.send(true);
    let _ = retries.await;
    http.wait().await?;
    match failure {
        Some(error) => Err(error.into()),
        None => Ok(()),
    }
}

/// How often queued invitations and undelivered escalations are retried while serving.
const RETRY_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// Sends what a crash or an outage left waiting, at start-up and then every minute, until `stop`.
async fn retry_pending_work(actions: Actions, stop: impl Future<Output = ()>) {
    tokio::pin!(stop);
    loop {
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
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(RETRY_INTERVAL) => {}
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
