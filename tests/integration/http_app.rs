//! The HTTP edge under test: the real router on 127.0.0.1:0, a real client, the test's database.

use std::time::Duration;

use invite_bot::app::serve::{self, HttpHandle};
use invite_bot::config::Config;
use invite_bot::http::HttpState;

use crate::helpers::TestApp;

/// Members with one invitation each, known to providers by their message ids.
pub const MEMBERS: &str = r#"
[[workspace]]
slug = "acme"
name = "Acme Academy"

[[member]]
workspace = "acme"
email = "ada@school.example"
role = "learner"
status = "invited"

[[invitation]]
workspace = "acme"
email = "ada@school.example"
sent_at = "2 hours ago"
message_id = "msg-ada"

[[member]]
workspace = "acme"
email = "bob@school.example"
role = "learner"
status = "invited"

[[invitation]]
workspace = "acme"
email = "bob@school.example"
sent_at = "2 hours ago"
message_id = "msg-bob"

[[member]]
workspace = "acme"
email = "cyd@school.example"
role = "trainer"
status = "invited"

[[invitation]]
workspace = "acme"
email = "cyd@school.example"
sent_at = "2 hours ago"
message_id = "msg-cyd"
"#;

pub struct HttpApp {
    pub app: TestApp,
    pub base: String,
    pub client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<HttpHandle>,
}

pub struct Reply {
    pub status: u16,
    pub body: String,
    /// The `content-type` header, empty when there is none.
    pub content_type: String,
}

impl Reply {
    fn read(response: reqwest::Response) -> impl std::future::Future<Output = Reply> {
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        async move {
            Reply {
                status,
                body: response.text().await.unwrap(),
                content_type,
            }
        }
    }
}

impl HttpApp {
    /// Starts the router for `app` with the config `configure` makes.
    pub async fn start(app: TestApp, configure: impl FnOnce(&mut Config)) -> HttpApp {
        Self::start_with(app, configure, |_| {}).await
    }

    /// Like [`start`], with a chance to prepare the state first (pre-load certificates).
    pub async fn start_with(
        app: TestApp,
        configure: impl FnOnce(&mut Config),
        prepare: impl FnOnce(&HttpState),
    ) -> HttpApp {
        let mut config = Config::default();
        config.http.listen = "127.0.0.1:0".into();
        configure(&mut config);
        let state = serve::http_state(&config, app.actions.clone()).expect("valid provider config");
        prepare(&state);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handle = serve::start_http(&config.http.listen, state, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
        let base = format!("http://{}", handle.local_addr);
        HttpApp {
            app,
            base,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        Reply::read(response).await
    }

    pub async fn post(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Vec<u8>>,
    ) -> Reply {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.into());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Reply::read(request.send().await.unwrap()).await
    }

    /// Rows in delivery_events, suppressions and webhook_tokens.
    pub async fn stored(&self) -> (i64, i64) {
        (
            self.app.count("delivery_events").await,
            self.app.count("suppressions").await,
        )
    }

    /// Stops the listener and waits for it to drain.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle.wait().await.unwrap();
        }
    }
}

impl Drop for HttpApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The verdict of `email` in `acme`, as the engine (and so every edge) sees it now.
pub async fn verdict(app: &TestApp, email: &str) -> &'static str {
    app.check(email, "acme").await.verdict.as_str()
}

/// Rows of delivery_events as (event, bounce_kind, attached to an invitation, message_id).
pub async fn events(app: &TestApp) -> Vec<(String, Option<String>, bool, Option<String>)> {
    let sql = "SELECT event, bounce_kind, invitation_id IS NOT NULL, message_id FROM delivery_events ORDER BY id";
    match app.engine.store() {
        invite_bot::store::Store::Sqlite(pool, _) => {
            sqlx::query_as(sql).fetch_all(pool).await.unwrap()
        }
        invite_bot::store::Store::Postgres(pool, _) => {
            sqlx::query_as(sql).fetch_all(pool).await.unwrap()
        }
    }
}
