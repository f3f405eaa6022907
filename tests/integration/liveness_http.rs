//! The listener under clients that stall: header and body deadlines, a bound on connections, and a
//! shutdown that finishes whatever the clients do.

use std::time::Duration;

use invite_bot::app::serve::{self, HttpHandle, HttpLimits};
use invite_bot::config::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Backend, TestApp};

/// Generous: only there so a hang fails the test instead of holding CI.
const GUARD: Duration = Duration::from_secs(30);

/// Deadlines far beyond the test's own: only the limit under test can end a stalled client.
const PATIENT: HttpLimits = HttpLimits {
    header_timeout: Duration::from_secs(600),
    request_timeout: Duration::from_secs(600),
    max_connections: 64,
    drain: Duration::from_secs(600),
};

struct Listener {
    _app: TestApp,
    addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<HttpHandle>,
}

impl Listener {
    async fn start(limits: HttpLimits) -> Listener {
        let app = TestApp::spawn_with(Backend::Sqlite, |_| {}).await.unwrap();
        let mut config = Config::default();
        config.http.listen = "127.0.0.1:0".into();
        let state = serve::http_state(&config, app.actions.clone()).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handle = serve::start_http_with(&config.http.listen, state, limits, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
        Listener {
            _app: app,
            addr: handle.local_addr,
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.addr).await.unwrap()
    }

    /// Signals shutdown and waits (within the guard) for the listener to finish.
    async fn shut_down(&mut self) {
        let _ = self.stop.take().unwrap().send(());
        let handle = self.handle.take().unwrap();
        tokio::time::timeout(GUARD, handle.wait())
            .await
            .expect("the listener finishes after shutdown whatever its clients do")
            .unwrap();
    }
}

/// Everything the server sends until it closes the connection.
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    tokio::time::timeout(GUARD, stream.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection")
        .ok();
    String::from_utf8_lossy(&answer).into_owned()
}

const HALF_HEADERS: &[u8] = b"POST /api/activate HTTP/1.1\r\nHost: bot\r\nContent-Ty";
const HALF_BODY: &[u8] = b"POST /api/activate HTTP/1.1\r\nHost: bot\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"email\": \"ada@";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_completes_while_clients_stall_mid_request() {
    let mut listener = Listener::start(HttpLimits {
        drain: Duration::from_millis(500),
        ..PATIENT
    })
    .await;
    let mut headers = listener.connect().await;
    headers.write_all(HALF_HEADERS).await.unwrap();
    let mut body = listener.connect().await;
    body.write_all(HALF_BODY).await.unwrap();
    // Both requests are in the server's hands before it is told to stop.
    let mut ready = listener.connect().await;
    ready
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: bot\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    assert!(read_to_close(&mut ready).await.starts_with("HTTP/1.1 200"));
    // Time for the server to read what the stalled clients sent (not needed for the test to pass,
    // only for it to fail on a listener that waits for them).
    tokio::time::sleep(Duration::from_millis(300)).await;

    listener.shut_down().await;
    // The stalled connections were cut, not left open.
    read_to_close(&mut headers).await;
    read_to_close(&mut body).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let mut listener = Listener::start(HttpLimits {
        header_timeout: Duration::from_secs(1),
        ..PATIENT
    })
    .await;
    let mut stalled = listener.connect().await;
    stalled.write_all(HALF_HEADERS).await.unwrap();
    let answer = read_to_close(&mut stalled).await;
    assert!(!answer.contains("200 OK"), "{answer}");
    listener.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_uploaded_too_slowly_gets_408() {
    let mut listener = Listener::start(HttpLimits {
        request_timeout: Duration::from_secs(1),
        ..PATIENT
    })
    .await;
    let mut slow = listener.connect().await;
    slow.write_all(HALF_BODY).await.unwrap();
    let answer = read_to_close(&mut slow).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    listener.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_limit_wait_for_a_free_slot() {
    let mut listener = Listener::start(HttpLimits {
        max_connections: 1,
        ..PATIENT
    })
    .await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let url = format!("http://{}/healthz", listener.addr);
    assert_eq!(client.get(&url).send().await.unwrap().status(), 200);

    // One stalled client holds the only slot: nobody else is served meanwhile.
    let mut stalled = listener.connect().await;
    stalled.write_all(HALF_HEADERS).await.unwrap();
    let waiting = client.get(&url).send().await;
    assert!(waiting.is_err_and(|e| e.is_timeout()));

    // It leaves; the slot is free again.
    drop(stalled);
    let patient = reqwest::Client::builder().timeout(GUARD).build().unwrap();
    assert_eq!(patient.get(&url).send().await.unwrap().status(), 200);
    listener.shut_down().await;
}

#[test]
fn the_limits_come_from_the_config() {
    let config: Config = toml::from_str(
        "[http]\nheader_timeout_seconds = 3\nrequest_timeout_seconds = 7\nmax_connections = 9\nshutdown_grace_seconds = 2\n",
    )
    .unwrap();
    config.validate().unwrap();
    let limits = HttpLimits::from(&config.http);
    assert_eq!(limits.header_timeout, Duration::from_secs(3));
    assert_eq!(limits.request_timeout, Duration::from_secs(7));
    assert_eq!(limits.max_connections, 9);
    assert_eq!(limits.drain, Duration::from_secs(2));
    let zero: Config = toml::from_str("[http]\nmax_connections = 0\n").unwrap();
    assert!(zero
        .validate()
        .unwrap_err()
        .to_string()
        .starts_with("http.max_connections"));
}
