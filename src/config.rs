//! Layered configuration: built-in defaults < `config.toml` < environment variables.
//!
//! Unknown keys are an error, so a typo fails at start-up instead of silently using a default.
//! Every key is documented in `config.toml.example`.

use std::path::{Path, PathBuf};

use crate::domain::{Permission, WorkspaceSlug};
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{key}: {message}")]
    Invalid { key: &'static str, message: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `sqlite://PATH` (the embedded default) or `postgres://USER@HOST/DB`. Env: `DATABASE_URL`.
    pub database_url: String,
    /// Most connections the bot opens to the database.
    pub database_max_connections: u32,
    /// How long an answer waits for a database connection (opening one included) before it says
    /// the database is not answering. Kept well under Discord's 3 s.
    pub database_connect_timeout_ms: u64,
    /// The longest one statement may run or wait for a lock (PostgreSQL `statement_timeout`,
    /// SQLite's busy timeout). Migrations are exempt.
    pub database_statement_timeout_ms: u64,
    /// A directory of templates that replaces the built-in `prompts/`. Env: `INVITE_BOT_PROMPTS_DIR`.
    pub prompts_dir: Option<PathBuf>,
    pub product: ProductConfig,
    pub checks: ChecksConfig,
    pub discord: DiscordConfig,
    pub actions: ActionsConfig,
    pub smtp: SmtpConfig,
    pub escalation: EscalationConfig,
    pub permissions: PermissionsConfig,
    /// The HTTP listener of `invite-bot serve`: health, readiness, metrics, provider webhooks.
    pub http: HttpConfig,
    /// Delivery data from email providers: one section per provider, each off unless configured.
    pub providers: ProvidersConfig,
    /// How long rows anyone can make the bot write are kept.
    pub retention: RetentionConfig,
    /// The push API (`POST /api/v1/members`, `/api/v1/invitations`) on the HTTP listener.
    pub api: ApiConfig,
    /// How `invite-bot import` reads a product's export (flags override it).
    pub import: ImportConfig,
    /// The product's own database, read by `invite-bot sync` (off unless `url` is set).
    pub source: SourceConfig,
    /// The workspace report (`/invite-report`, `invite-bot report`) and its bulk resend.
    pub report: ReportConfig,
    /// Alerts posted to a workspace's Discord channel when an invitation will not arrive.
    pub alerts: AlertsConfig,
}

/// `[report]`: what the workspace report calls stale, how much it lists, and how a bulk resend runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportConfig {
    /// A delivered invitation not accepted this many days after it was sent needs action. Keep it
    /// under `product.invitation_ttl_hours`: an invitation past its expiry counts as expired.
    pub stale_invite_days: u32,
    /// The company domains with the most failures, at most this many.
    pub top_domains: usize,
    /// The CSV of members needing action holds at most this many rows (the reply says how many
    /// were left out).
    pub max_csv_rows: u32,
    /// One "Resend all eligible" run resends to at most this many members.
    pub bulk_max_members: u32,
    /// A run stops after this many minutes, whatever is left (counted as skipped).
    pub bulk_max_minutes: u32,
    /// The pause between two resends of a run, so the mail server and the limits see one admin
    /// resending, not a flood.
    pub bulk_pause_ms: u64,
    /// The progress message is edited at most this often.
    pub bulk_progress_ms: u64,
    /// A running run renews its claim this often; a claim three times older is taken as a run
    /// whose process stopped.
    pub bulk_lease_seconds: u32,
}

impl Default for ReportConfig {
    fn default() -> Self {
        ReportConfig {
            stale_invite_days: 3,
            top_domains: 5,
            max_csv_rows: 10_000,
            bulk_max_members: 200,
            bulk_max_minutes: 10,
            bulk_pause_ms: 250,
            bulk_progress_ms: 2_000,
            bulk_lease_seconds: 20,
        }
    }
}

/// `[source]`: where the product keeps its members, and the SQL that reads them in the bot's terms.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourceConfig {
    /// `postgres://`, `mysql://` / `mariadb://`, or `sqlite://` (demos). It carries credentials:
    /// prefer the environment. Env: `INVITE_BOT_SOURCE_URL`.
    pub url: Option<secrecy::SecretString>,
    /// Returns the members changed since the watermark (`$1` on PostgreSQL, `?` elsewhere).
    pub members_query: Option<String>,
    /// Returns the invitation emails the product sent itself, changed since the watermark.
    pub invitations_query: Option<String>,
    /// The product's role values -> `learner` / `trainer`.
    pub role_map: std::collections::BTreeMap<String, String>,
    /// The product's status values -> `invited` / `active` / `deactivated`.
    pub status_map: std::collections::BTreeMap<String, String>,
    /// The offset of timestamps written without one (MySQL `DATETIME`): `UTC` or `+02:00`.
    pub timezone: String,
    /// How often `serve` syncs.
    pub interval_seconds: u64,
    /// A check re-reads its one address from the source first.
    pub live_refresh: bool,
    /// How long that re-read may take before the check goes on with the synced data.
    pub live_refresh_timeout_ms: u64,
    /// Data older than this is called stale in checks.
    pub stale_after_seconds: u64,
    /// Rows per page read from the source and per transaction applied to the bot's store.
    pub batch_size: u32,
    /// How long opening a connection to the source may take.
    pub connect_timeout_ms: u64,
    /// The longest one query against the source may run.
    pub statement_timeout_ms: u64,
}

impl Default for SourceConfig {
    fn default() -> Self {
        Self {
            url: None,
            members_query: None,
            invitations_query: None,
            role_map: Default::default(),
            status_map: Default::default(),
            timezone: "UTC".into(),
            interval_seconds: 60,
            live_refresh: false,
            live_refresh_timeout_ms: 300,
            stale_after_seconds: 3600,
            batch_size: 5000,
            connect_timeout_ms: 5000,
            statement_timeout_ms: 60_000,
        }
    }
}

// By hand: the URL holds the product database's password.
impl std::fmt::Debug for SourceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use secrecy::ExposeSecret;
        f.debug_struct("SourceConfig")
            .field(
                "url",
                &self
                    .url
                    .as_ref()
                    .map(|url| crate::urls::redact_url(url.expose_secret())),
            )
            .field("members_query", &self.members_query)
            .field("invitations_query", &self.invitations_query)
            .field("role_map", &self.role_map)
            .field("status_map", &self.status_map)
            .field("timezone", &self.timezone)
            .field("interval_seconds", &self.interval_seconds)
            .field("batch_size", &self.batch_size)
            .finish_non_exhaustive()
    }
}

/// The kind of database a source URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceDialect {
    Postgres,
    MySql,
    Sqlite,
}

impl SourceDialect {
    pub fn of_url(url: &str) -> Option<Self> {
        let scheme = url.split_once(':')?.0.to_ascii_lowercase();
        match scheme.as_str() {
            "postgres" | "postgresql" => Some(SourceDialect::Postgres),
            "mysql" | "mariadb" => Some(SourceDialect::MySql),
            "sqlite" => Some(SourceDialect::Sqlite),
            _ => None,
        }
    }
}

impl SourceConfig {
    /// The source is used at all.
    pub fn is_configured(&self) -> bool {
        self.url.is_some()
    }

    /// The role and status maps, in the bot's terms.
    pub fn value_maps(&self) -> crate::ingest::ValueMaps {
        crate::ingest::ValueMaps {
            role: crate::ingest::ValueMap::new(self.role_map.clone()),
            status: crate::ingest::ValueMap::new(self.status_map.clone()),
        }
    }

    /// The offset of `timezone` (checked by `validate`).
    pub fn zone(&self) -> chrono::FixedOffset {
        crate::ingest::parse_offset(&self.timezone)
            .unwrap_or_else(|_| chrono::FixedOffset::east_opt(0).expect("zero is in range"))
    }

    fn validate(&self) -> Result<(), ConfigError> {
        use secrecy::ExposeSecret;
        let invalid = |key, message: String| Err(ConfigError::Invalid { key, message });
        if crate::ingest::parse_offset(&self.timezone).is_err() {
            return invalid(
                "source.timezone",
                format!(
                    "{:?} is not an offset: use UTC or one like +02:00 (a fixed offset, not a region)",
                    self.timezone
                ),
            );
        }
        if let Err(message) = self.value_maps().check() {
            return invalid("source", message);
        }
        for (key, value) in [
            ("source.interval_seconds", self.interval_seconds),
            (
                "source.live_refresh_timeout_ms",
                self.live_refresh_timeout_ms,
            ),
            ("source.stale_after_seconds", self.stale_after_seconds),
            ("source.batch_size", u64::from(self.batch_size)),
            ("source.connect_timeout_ms", self.connect_timeout_ms),
            ("source.statement_timeout_ms", self.statement_timeout_ms),
        ] {
            if value == 0 {
                return invalid(key, "must be at least 1".into());
            }
        }
        let Some(url) = &self.url else {
            return Ok(());
        };
        // The message names the rule, never the URL: it holds the password.
        if SourceDialect::of_url(url.expose_secret()).is_none() {
            return invalid(
                "source.url",
                "must start with postgres://, mysql://, mariadb:// or sqlite://".into(),
            );
        }
        match self.members_query.as_deref().map(str::trim) {
            None | Some("") => {
                return invalid(
                    "source.members_query",
                    "is required when source.url is set (see README, \"Connect the product's database\")"
                        .into(),
                )
            }
            Some(_) => {}
        }
        if self.invitations_query.as_deref().map(str::trim) == Some("") {
            return invalid(
                "source.invitations_query",
                "is empty: leave it out, or give the SQL".into(),
            );
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImportConfig {
    /// Field = the export's column name, e.g. `email = "Email address"`.
    pub columns: std::collections::BTreeMap<String, String>,
    /// The export's role values to learner / trainer.
    pub role_map: std::collections::BTreeMap<String, String>,
    /// The export's status values to invited / active / deactivated.
    pub status_map: std::collections::BTreeMap<String, String>,
    /// Offset of timestamps written without one: `UTC` or `+HH:MM`.
    pub timezone: String,
    /// The workspace of every row when the export has no workspace column.
    pub workspace: Option<String>,
}

impl Default for ImportConfig {
    fn default() -> Self {
        Self {
            columns: Default::default(),
            role_map: Default::default(),
            status_map: Default::default(),
            timezone: "UTC".to_owned(),
            workspace: None,
        }
    }
}

/// The push API: the product sends its members and invitations, signed the Standard Webhooks way.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// `whsec_` + base64 of at least 24 random bytes; without it the push routes answer 404.
    /// Env: `INVITE_BOT_PUSH_SECRET`.
    pub push_secret: Option<secrecy::SecretString>,
}

/// The key of a Standard Webhooks secret: `whsec_` then base64 of at least
/// [`MIN_SIGNING_KEY_BYTES`] bytes. The message names the rule, never the secret.
pub fn signing_key(secret: &secrecy::SecretString) -> Result<Vec<u8>, &'static str> {
    use base64::Engine as _;
    use secrecy::ExposeSecret;
    let encoded = secret.expose_secret().trim().strip_prefix("whsec_").ok_or(
        "must start with whsec_ (Standard Webhooks), e.g. whsec_$(openssl rand -base64 32)",
    )?;
    let key = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| "must be whsec_ followed by standard base64")?;
    if key.len() < MIN_SIGNING_KEY_BYTES {
        return Err("must hold at least 24 random bytes after whsec_ (openssl rand -base64 32)");
    }
    Ok(key)
}

/// The Standard Webhooks specification asks for keys of 24 to 64 random bytes.
pub const MIN_SIGNING_KEY_BYTES: usize = 24;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Button records older than this are deleted (their buttons stopped working long before).
    pub button_days: u32,
    /// Audit rows older than this are deleted.
    pub audit_days: u32,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            button_days: 30,
            audit_days: 400,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ActionsConfig {
    /// The page the invitation email links to; the token is appended as `?token=...`. Never taken
    /// from request data.
    pub activation_url: String,
    /// At most one resend per member per this many minutes.
    pub resend_min_interval_minutes: u32,
    /// At most this many resends per member per day.
    pub resends_per_member_per_day: u32,
    /// At most this many resends by one admin per hour.
    pub resends_per_actor_per_hour: u32,
    /// How long an activation code stays valid.
    pub activation_code_ttl_hours: u32,
    /// At most this many activation codes per member per day.
    pub activation_codes_per_member_per_day: u32,
    /// Wrong attempts after which an activation code is void.
    pub activation_code_max_attempts: u32,
    /// Redemptions (`/api/activate`, `activate`) tried per workspace and address per hour, right or
    /// wrong; throttled ones are not counted against the code.
    pub redeem_attempts_per_hour: u32,
    /// An escalation of the same member within this many minutes links to the open one.
    pub escalation_dedupe_minutes: u32,
    /// A live activation code younger than this many seconds is not replaced: a second request
    /// (two admins pressing at once) is told who issued it and when.
    pub activation_code_reissue_seconds: u32,
    /// Who does the resend and issues the activation code: the bot itself (`builtin`, its own
    /// tokens, email and `/api/activate`) or the product's own API (`product`, `[actions.product]`).
    pub backend: ActionsBackend,
    /// The product's API, for `backend = "product"`.
    pub product: ProductActionsConfig,
}

/// Who carries out the resend and the activation code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionsBackend {
    /// The bot mints its own tokens and codes, sends its own email and redeems at `/api/activate`.
    #[default]
    Builtin,
    /// Each action is a signed HTTP call to the product's API (`[actions.product]`).
    Product,
}

/// `[actions.product]`: the product's API that resends invitations and issues activation codes.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProductActionsConfig {
    /// Where the product's routes live: `{base_url}/invitations/resend`, `{base_url}/activation-codes`.
    /// https://, or http:// on this machine only.
    pub base_url: Option<String>,
    /// The Standard Webhooks secret (`whsec_` + base64) that signs every call. Env:
    /// `INVITE_BOT_PRODUCT_SECRET`.
    pub secret: Option<secrecy::SecretString>,
    /// One try's whole deadline (connecting, the request, the answer), in milliseconds.
    pub timeout_ms: u64,
    /// Tries per action (the same idempotency key each time) before its outcome is told as unknown.
    pub max_attempts: u32,
    /// First wait between tries, in milliseconds; it doubles each time.
    pub retry_base_ms: u64,
}

// By hand: the URL may hold a token, and configs get printed.
impl std::fmt::Debug for ProductActionsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProductActionsConfig")
            .field(
                "base_url",
                &self.base_url.as_deref().map(crate::urls::redacted_endpoint),
            )
            .field("secret", &self.secret)
            .field("timeout_ms", &self.timeout_ms)
            .field("max_attempts", &self.max_attempts)
            .field("retry_base_ms", &self.retry_base_ms)
            .finish()
    }
}

impl Default for ProductActionsConfig {
    fn default() -> Self {
        Self {
            base_url: None,
            secret: None,
            timeout_ms: 5_000,
            max_attempts: 3,
            retry_base_ms: 250,
        }
    }
}

impl ProductActionsConfig {
    /// Checked only when `backend = "product"`: a URL the bot may send to, a Standard Webhooks
    /// secret, deadlines and attempts that can succeed. Messages name the rule, never the secret.
    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: &str| {
            Err(ConfigError::Invalid {
                key,
                message: message.into(),
            })
        };
        let Some(base_url) = &self.base_url else {
            return invalid(
                "actions.product.base_url",
                "is required when actions.backend = \"product\"",
            );
        };
        if let Some(problem) = crate::urls::https_problem(base_url) {
            return invalid("actions.product.base_url", &problem.to_string());
        }
        let Some(secret) = &self.secret else {
            return invalid(
                "actions.product.secret",
                "is required when actions.backend = \"product\" (env INVITE_BOT_PRODUCT_SECRET)",
            );
        };
        if let Err(problem) = signing_key(secret) {
            return invalid("actions.product.secret", problem);
        }
        if self.timeout_ms == 0 {
            return invalid("actions.product.timeout_ms", "must be at least 1");
        }
        if self.timeout_ms > 60_000 {
            return invalid(
                "actions.product.timeout_ms",
                "must be at most 60000: the person who pressed is waiting",
            );
        }
        if !(1..=10).contains(&self.max_attempts) {
            return invalid("actions.product.max_attempts", "must be between 1 and 10");
        }
        Ok(())
    }
}

impl Default for ActionsConfig {
    fn default() -> Self {
        Self {
            activation_url: "https://app.example.com/activate".into(),
            resend_min_interval_minutes: 15,
            resends_per_member_per_day: 5,
            resends_per_actor_per_hour: 50,
            activation_code_ttl_hours: 24,
            activation_codes_per_member_per_day: 10,
            activation_code_max_attempts: 5,
            redeem_attempts_per_hour: 4,
            escalation_dedupe_minutes: 60,
            activation_code_reissue_seconds: 60,
            backend: ActionsBackend::Builtin,
            product: ProductActionsConfig::default(),
        }
    }
}

/// Outgoing mail. With no host (and no `SMTP_URL`), invitations are written as files to `outbox_dir`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    pub host: Option<String>,
    pub port: Option<u16>,
    /// `none`, `starttls` or `tls`.
    pub security: SmtpSecurity,
    pub username: Option<String>,
    /// Env: `SMTP_PASSWORD`.
    pub password: Option<secrecy::SecretString>,
    /// Connecting to the server (lettre applies its timeout to the connection only).
    pub timeout_seconds: u64,
    /// One whole send: connecting, greeting, TLS, login, the message and the server's answer to it.
    /// A server that goes silent part-way is given up on after this long and the email stays queued.
    pub send_timeout_seconds: u64,
    /// Attempts for a temporary (4xx) failure before the email is left to the background retry.
    pub max_attempts: u32,
    /// First wait between those attempts, in milliseconds; it doubles each time.
    pub retry_base_ms: u64,
    /// How long a sender's claim on a queued email holds unless renewed (milliseconds). A row
    /// whose lease lapsed was left by a process that is gone and is taken over by the next retry.
    pub send_lease_ms: u64,
    /// How often a sender renews that lease while its SMTP conversation lasts (milliseconds);
    /// the lease must be at least three times as long, so one late renewal never loses it.
    pub send_lease_renew_ms: u64,
    /// Where emails go when no SMTP server is configured (lettre's file transport).
    pub outbox_dir: PathBuf,
    /// lettre's URL form, e.g. `smtp://127.0.0.1:2525`; overrides host/port/security. Env: `SMTP_URL`.
    pub url: Option<secrecy::SecretString>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    None,
    #[default]
    Starttls,
    Tls,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            host: None,
            port: None,
            security: SmtpSecurity::default(),
            username: None,
            password: None,
            timeout_seconds: 10,
            send_timeout_seconds: 30,
            max_attempts: 3,
            retry_base_ms: 500,
            send_lease_ms: 20_000,
            send_lease_renew_ms: 5_000,
            outbox_dir: PathBuf::from("outbox"),
            url: None,
        }
    }
}

/// Where escalations go besides the chat channel.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EscalationConfig {
    /// An HTTP endpoint that receives each escalation as JSON. Env: `ESCALATION_WEBHOOK_URL`.
    pub webhook_url: Option<String>,
    /// The Standard Webhooks secret (`whsec_` + base64) that signs each delivery (`webhook-id`,
    /// `webhook-timestamp`, `webhook-signature`). Env: `ESCALATION_WEBHOOK_SECRET`.
    pub webhook_secret: Option<secrecy::SecretString>,
    pub webhook_timeout_seconds: u64,
    /// Tries per delivery round before the escalation is left marked undelivered for a later retry.
    pub webhook_max_attempts: u32,
    /// First wait between webhook attempts, in milliseconds; it doubles each time.
    pub webhook_retry_base_ms: u64,
}

// By hand: the webhook URL may hold a token, and configs get printed.
impl std::fmt::Debug for EscalationConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EscalationConfig")
            .field(
                "webhook_url",
                &self
                    .webhook_url
                    .as_deref()
                    .map(crate::urls::redacted_endpoint),
            )
            .field("webhook_secret", &self.webhook_secret)
            .field("webhook_timeout_seconds", &self.webhook_timeout_seconds)
            .field("webhook_max_attempts", &self.webhook_max_attempts)
            .finish()
    }
}

impl Default for EscalationConfig {
    fn default() -> Self {
        Self {
            webhook_url: None,
            webhook_secret: None,
            webhook_timeout_seconds: 5,
            webhook_max_attempts: 3,
            webhook_retry_base_ms: 200,
        }
    }
}

/// Who may do what. Chat users get the union of every grant that names them or one of their roles.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PermissionsConfig {
    /// What the local operator (the CLI and the local chat without --user) may do.
    pub operator: Vec<Permission>,
    pub grant: Vec<GrantConfig>,
}

impl Default for PermissionsConfig {
    fn default() -> Self {
        Self {
            operator: Permission::ALL.to_vec(),
            grant: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct GrantConfig {
    /// Chat role ids.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Chat user ids.
    #[serde(default)]
    pub users: Vec<String>,
    /// Permissions: check, resend_invite, issue_activation_code, escalate.
    pub allow: Vec<Permission>,
    /// Workspace slugs the grant is limited to; omitted means every workspace.
    pub workspaces: Option<Vec<WorkspaceSlug>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProductConfig {
    /// Where people log in and reset their password. Env: `INVITE_BOT_LOGIN_URL`.
    pub login_url: String,
    /// The sender of invitation emails, the address people look for in spam. Env: `INVITE_BOT_SENDER`.
    pub sender: String,
    /// How long an invitation link stays valid.
    pub invitation_ttl_hours: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChecksConfig {
    /// An invitation younger than this is not resent: the first one may still arrive.
    pub resend_wait_minutes: u32,
    /// How many other recipients at one company domain must have had trouble before the check says
    /// that domain's mail server may be blocking the sender.
    pub domain_alert_threshold: u32,
    /// How far back that domain check looks.
    pub domain_window_days: u32,
    /// At most this many "did you mean" suggestions.
    pub max_suggestions: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: "sqlite://invite-bot.db".into(),
            // Two per core, the usual starting point for a pool: what a database on the same host
            // can run at once (larger pools measured slower: README, "Benchmark: Discord").
            database_max_connections: crate::store::two_per_core(),
            database_connect_timeout_ms: 1500,
            database_statement_timeout_ms: 5000,
            prompts_dir: None,
            product: ProductConfig::default(),
            checks: ChecksConfig::default(),
            discord: DiscordConfig::default(),
            actions: ActionsConfig::default(),
            smtp: SmtpConfig::default(),
            escalation: EscalationConfig::default(),
            permissions: PermissionsConfig::default(),
            retention: RetentionConfig::default(),
            import: ImportConfig::default(),
            http: HttpConfig::default(),
            providers: ProvidersConfig::default(),
            api: ApiConfig::default(),
            source: SourceConfig::default(),
            report: ReportConfig::default(),
            alerts: AlertsConfig::default(),
        }
    }
}

impl Default for ProductConfig {
    fn default() -> Self {
        Self {
            login_url: "https://app.example.com/login".into(),
            sender: "noreply@example.com".into(),
            invitation_ttl_hours: 7 * 24,
        }
    }
}

impl Default for ChecksConfig {
    fn default() -> Self {
        Self {
            resend_wait_minutes: 15,
            domain_alert_threshold: 3,
            domain_window_days: 30,
            max_suggestions: 5,
        }
    }
}

/// The Discord edge (`[discord]`): where the bot listens and whom it may mention.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscordConfig {
    /// The bot token. Env: `DISCORD_TOKEN` (prefer it to the file).
    pub token: Option<secrecy::SecretString>,
    /// Guilds the slash commands are registered in (at once); empty: registered globally.
    pub guild_ids: Vec<u64>,
    /// Channels whose messages naming addresses get "Check ..." buttons.
    pub support_channel_ids: Vec<u64>,
    /// Where escalations are posted (in a thread where the channel allows).
    pub escalation_channel_id: Option<u64>,
    /// The only role an escalation mentions.
    pub support_role_id: Option<u64>,
    /// Guild id (as a string key) -> the workspace checked when `/invite-check` names none.
    pub default_workspaces: std::collections::BTreeMap<String, String>,
    /// Replies to `/invite-check` are visible only to the asker. Set false only for staff-only channels.
    pub ephemeral_replies: bool,
    /// A button older than this answers "run the check again".
    pub button_max_age_minutes: u32,
    /// For tests and benchmarks only: send every Discord request to this local stand-in
    /// (`http://127.0.0.1:PORT` or `http://localhost:PORT`) instead of discord.com.
    pub api_base_url: Option<String>,
    /// How interactions reach the bot: over the gateway (a websocket, one process) or as HTTP
    /// requests to `POST /discord/interactions` (stateless replicas behind any load balancer).
    pub mode: DiscordMode,
    /// The application's Ed25519 public key (64 hex digits, "Public Key" in the developer
    /// portal): every request to the interactions endpoint must be signed with its private key.
    /// Needed in http mode.
    pub public_key: Option<String>,
    /// The application id: follow-ups, edits and command registration name it. Needed in http
    /// mode (the gateway's READY tells it otherwise).
    pub application_id: Option<u64>,
    /// How long a command waits for the engine before it defers (Discord shows "thinking…") and
    /// edits the answer in. Unset: the mode's default ([`DiscordConfig::answer_within`]).
    pub answer_within_ms: Option<u64>,
}

/// Over the gateway a deferral is one more round trip to Discord, so waiting is nearly free.
const GATEWAY_ANSWER_WITHIN_MS: u64 = 1500;
/// In http mode the deferral is the open request's response: deferring early keeps a burst from
/// queueing every answer behind the slowest (the card follows through REST either way).
const HTTP_ANSWER_WITHIN_MS: u64 = 25;
/// Discord drops an interaction unanswered after 3 s; the first response must be out well before.
pub const MAX_ANSWER_WITHIN_MS: u64 = 2000;

impl DiscordConfig {
    /// `answer_within_ms`, or the mode's default.
    pub fn answer_within(&self) -> std::time::Duration {
        let ms = self.answer_within_ms.unwrap_or(match self.mode {
            DiscordMode::Gateway => GATEWAY_ANSWER_WITHIN_MS,
            DiscordMode::Http => HTTP_ANSWER_WITHIN_MS,
        });
        std::time::Duration::from_millis(ms)
    }
}

/// `[discord] mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiscordMode {
    /// One gateway connection (a websocket) per bot: one process.
    #[default]
    Gateway,
    /// Discord POSTs each interaction to the HTTP listener (the "Interactions Endpoint URL").
    Http,
}

impl Default for DiscordConfig {
    fn default() -> Self {
        Self {
            token: None,
            guild_ids: Vec::new(),
            support_channel_ids: Vec::new(),
            escalation_channel_id: None,
            support_role_id: None,
            default_workspaces: Default::default(),
            ephemeral_replies: true,
            button_max_age_minutes: 60,
            api_base_url: None,
            mode: DiscordMode::Gateway,
            public_key: None,
            application_id: None,
            answer_within_ms: None,
        }
    }
}

impl Config {
    /// Loads `path` if given (it must exist), else `./config.toml` if present, else the defaults;
    /// then applies environment overrides from `env`.
    pub fn load(
        path: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let implicit = Path::new("config.toml");
        let file = match path {
            Some(path) => Some(path.to_path_buf()),
            None => implicit.exists().then(|| implicit.to_path_buf()),
        };
        let mut config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                Self::from_toml(&text, &path)?
            }
            None => Config::default(),
        };
        config.apply_env(env);
        config.validate()?;
        Ok(config)
    }

    pub fn from_toml(text: &str, path: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().replace('\n', " "),
        })
    }

    fn apply_env(&mut self, env: &dyn Fn(&str) -> Option<String>) {
        let set = |target: &mut String, key: &str| {
            if let Some(value) = env(key).filter(|v| !v.trim().is_empty()) {
                *target = value;
            }
        };
        set(&mut self.database_url, "DATABASE_URL");
        set(&mut self.product.login_url, "INVITE_BOT_LOGIN_URL");
        set(&mut self.product.sender, "INVITE_BOT_SENDER");
        set(&mut self.http.listen, "INVITE_BOT_HTTP_LISTEN");
        if let Some(token) = env("DISCORD_TOKEN").filter(|v| !v.trim().is_empty()) {
            self.discord.token = Some(secrecy::SecretString::from(token));
        }
        if let Some(dir) = env("INVITE_BOT_PROMPTS_DIR").filter(|v| !v.trim().is_empty()) {
            self.prompts_dir = Some(dir.into());
        }
        let secret = |key: &str| {
            env(key)
                .filter(|v| !v.trim().is_empty())
                .map(secrecy::SecretString::from)
        };
        if let Some(url) = secret("SMTP_URL") {
            self.smtp.url = Some(url);
        }
        if let Some(password) = secret("SMTP_PASSWORD") {
            self.smtp.password = Some(password);
        }
        if let Some(url) = env("ESCALATION_WEBHOOK_URL").filter(|v| !v.trim().is_empty()) {
            self.escalation.webhook_url = Some(url);
        }
        if let Some(key) = secret("ESCALATION_WEBHOOK_SECRET") {
            self.escalation.webhook_secret = Some(key);
        }
        if let Some(key) = secret("INVITE_BOT_PUSH_SECRET") {
            self.api.push_secret = Some(key);
        }
        if let Some(url) = secret("INVITE_BOT_SOURCE_URL") {
            self.source.url = Some(url);
        }
        if let Some(key) = secret("INVITE_BOT_PRODUCT_SECRET") {
            self.actions.product.secret = Some(key);
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: &str| {
            Err(ConfigError::Invalid {
                key,
                message: message.into(),
            })
        };
        if !(self.database_url.starts_with("sqlite:")
            || self.database_url.starts_with("postgres:")
            || self.database_url.starts_with("postgresql:"))
        {
            return invalid("database_url", "must start with sqlite:// or postgres://");
        }
        if !(self.product.login_url.starts_with("https://")
            || self.product.login_url.starts_with("http://"))
        {
            return invalid("product.login_url", "must be an http(s) URL");
        }
        if crate::domain::email::EmailAddress::parse(&self.product.sender).is_err() {
            return invalid("product.sender", "must be an email address");
        }
        if self.product.invitation_ttl_hours == 0 {
            return invalid("product.invitation_ttl_hours", "must be at least 1");
        }
        if self.database_max_connections == 0 {
            return invalid("database_max_connections", "must be at least 1");
        }
        if self.database_connect_timeout_ms == 0 {
            return invalid("database_connect_timeout_ms", "must be at least 1");
        }
        if self.database_statement_timeout_ms == 0 {
            return invalid("database_statement_timeout_ms", "must be at least 1");
        }
        if self.report.stale_invite_days == 0 {
            return invalid("report.stale_invite_days", "must be at least 1");
        }
        if self.report.bulk_max_minutes == 0 || self.report.bulk_max_minutes > 14 {
            // An interaction's token, with which the progress message is edited, lasts 15 minutes.
            return invalid("report.bulk_max_minutes", "must be between 1 and 14");
        }
        if self.report.bulk_lease_seconds == 0 {
            return invalid("report.bulk_lease_seconds", "must be at least 1");
        }
        if self.checks.domain_alert_threshold == 0 {
            return invalid("checks.domain_alert_threshold", "must be at least 1");
        }
        if self.checks.max_suggestions == 0 {
            return invalid("checks.max_suggestions", "must be at least 1");
        }
        if let Some(base) = &self.discord.api_base_url {
            if !is_local_http_base(base) {
                return invalid(
                    "discord.api_base_url",
                    "is for tests and benchmarks only: must be http://127.0.0.1:PORT or http://localhost:PORT",
                );
            }
        }
        if self.discord.button_max_age_minutes == 0 {
            return invalid("discord.button_max_age_minutes", "must be at least 1");
        }
        if self
            .discord
            .answer_within_ms
            .is_some_and(|ms| ms == 0 || ms > MAX_ANSWER_WITHIN_MS)
        {
            return invalid(
                "discord.answer_within_ms",
                "must be between 1 and 2000: Discord drops an interaction unanswered after 3 seconds",
            );
        }
        self.discord.validate_http_mode()?;
        for (guild, workspace) in &self.discord.default_workspaces {
            if guild.parse::<u64>().is_err() {
                return invalid("discord.default_workspaces", "keys must be guild ids");
            }
            if crate::domain::workspace::WorkspaceSlug::parse(workspace).is_err() {
                return invalid(
                    "discord.default_workspaces",
                    "values must be workspace slugs",
                );
            }
        }
        if !(self.actions.activation_url.starts_with("https://")
            || self.actions.activation_url.starts_with("http://"))
        {
            return invalid("actions.activation_url", "must be an http(s) URL");
        }
        if self.actions.redeem_attempts_per_hour >= self.actions.activation_code_max_attempts {
            return invalid(
                "actions.redeem_attempts_per_hour",
                "must be below activation_code_max_attempts, or a stranger guessing for an hour could void a live code",
            );
        }
        if self.actions.activation_code_max_attempts == 0
            || self.smtp.max_attempts == 0
            || self.escalation.webhook_max_attempts == 0
        {
            return invalid("actions", "attempt limits must be at least 1");
        }
        if self.smtp.send_lease_renew_ms == 0 {
            return invalid("smtp.send_lease_renew_ms", "must be at least 1");
        }
        if self.smtp.send_lease_ms < self.smtp.send_lease_renew_ms.saturating_mul(3) {
            return invalid(
                "smtp.send_lease_ms",
                "must be at least three times smtp.send_lease_renew_ms, or a late renewal lets another process send the same email",
            );
        }
        if self.actions.activation_code_reissue_seconds == 0 {
            return invalid(
                "actions.activation_code_reissue_seconds",
                "must be at least 1",
            );
        }
        // A zero deadline would fail every send, connection or request at once.
        for (key, value) in [
            ("smtp.timeout_seconds", self.smtp.timeout_seconds),
            ("smtp.send_timeout_seconds", self.smtp.send_timeout_seconds),
            (
                "escalation.webhook_timeout_seconds",
                self.escalation.webhook_timeout_seconds,
            ),
        ] {
            if value == 0 {
                return invalid(key, "must be at least 1");
            }
        }
        if self.escalation.webhook_url.is_some() && self.escalation.webhook_secret.is_none() {
            return invalid(
                "escalation.webhook_secret",
                "is required when escalation.webhook_url is set",
            );
        }
        // The message names the rule, never the URL: it may hold the desk's token.
        if let Some(problem) = self
            .escalation
            .webhook_url
            .as_deref()
            .and_then(crate::urls::https_problem)
        {
            return invalid("escalation.webhook_url", &problem.to_string());
        }
        if let Some(secret) = &self.escalation.webhook_secret {
            if let Err(problem) = signing_key(secret) {
                return invalid("escalation.webhook_secret", problem);
            }
        }
        if let Some(secret) = &self.api.push_secret {
            if let Err(problem) = signing_key(secret) {
                return invalid("api.push_secret", problem);
            }
        }
        if self.actions.backend == ActionsBackend::Product {
            self.actions.product.validate()?;
        }
        self.validate_http()?;
        self.source.validate()?;
        self.alerts.validate()?;
        Ok(())
    }
}

impl DiscordConfig {
    /// http mode needs the key that signs Discord's requests and the application id.
    fn validate_http_mode(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: &str| {
            Err(ConfigError::Invalid {
                key,
                message: message.into(),
            })
        };
        if let Some(key) = &self.public_key {
            if let Err(message) = parse_public_key(key) {
                return invalid("discord.public_key", message);
            }
        }
        if self.application_id == Some(0) {
            return invalid(
                "discord.application_id",
                "must be the application's id, not 0",
            );
        }
        if self.mode == DiscordMode::Http {
            if self.public_key.is_none() {
                return invalid(
                    "discord.public_key",
                    "is needed with mode = \"http\": the application's public key (64 hex digits) from the Discord developer portal",
                );
            }
            if self.application_id.is_none() {
                return invalid(
                    "discord.application_id",
                    "is needed with mode = \"http\": the application id from the Discord developer portal",
                );
            }
        }
        Ok(())
    }
}

/// The application's Ed25519 public key from its 64 hex digits.
pub fn parse_public_key(hex_key: &str) -> Result<ed25519_dalek::VerifyingKey, &'static str> {
    let bytes: [u8; 32] = hex::decode(hex_key.trim())
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or("must be 64 hex digits (a 32-byte Ed25519 public key)")?;
    ed25519_dalek::VerifyingKey::from_bytes(&bytes).map_err(|_| "is not a valid Ed25519 public key")
}

/// `http://127.0.0.1[:port]` or `http://localhost[:port]`, nothing after the authority but `/`:
/// the token must never be sent anywhere but discord.com or a stand-in on this machine.
fn is_local_http_base(base: &str) -> bool {
    let Some(rest) = base.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    (host == "127.0.0.1" || host == "localhost")
        && port.is_none_or(|p| !p.is_empty() && p.parse::<u16>().is_ok())
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address the listener binds to; port 0 picks a free port. Env: `INVITE_BOT_HTTP_LISTEN`.
    pub listen: String,
    /// A client must send a request's headers within this; an idle kept-alive connection is
    /// closed after it too.
    pub header_timeout_seconds: u64,
    /// From the headers to the response, reading the body included; slower requests get 408.
    pub request_timeout_seconds: u64,
    /// Connections served at once; further clients wait in the system's accept queue.
    pub max_connections: usize,
    /// After SIGTERM/SIGINT, how long requests and sends in flight get to finish before they are
    /// cut off (an email cut off stays queued for the next start).
    pub shutdown_grace_seconds: u64,
    /// Largest request body accepted, in bytes; larger requests get 413 before they are read.
    pub max_body_bytes: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            header_timeout_seconds: 10,
            request_timeout_seconds: 30,
            max_connections: 256,
            shutdown_grace_seconds: 10,
            max_body_bytes: 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProvidersConfig {
    /// How long a live suppression look-up may take before the check uses stored data instead.
    /// Kept below the chat's reply deadline.
    pub lookup_timeout_ms: Option<u64>,
    pub postmark: Option<PostmarkConfig>,
    pub sendgrid: Option<SendgridConfig>,
    pub mailgun: Option<MailgunConfig>,
    pub ses: Option<SesConfig>,
}

impl ProvidersConfig {
    pub const DEFAULT_LOOKUP_TIMEOUT_MS: u64 = 1500;

    pub fn lookup_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(
            self.lookup_timeout_ms
                .unwrap_or(Self::DEFAULT_LOOKUP_TIMEOUT_MS),
        )
    }
}

/// Postmark signs nothing: the webhook URL carries HTTP Basic credentials that only Postmark knows.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostmarkConfig {
    pub webhook_username: String,
    pub webhook_password: secrecy::SecretString,
    /// Server API token, for live look-ups of the address's bounces and suppressions (optional).
    pub api_token: Option<secrecy::SecretString>,
    #[serde(default = "PostmarkConfig::default_api_base")]
    pub api_base: String,
}

impl PostmarkConfig {
    fn default_api_base() -> String {
        "https://api.postmarkapp.com".into()
    }
}

/// SendGrid signs each batch with ECDSA P-256; the verification key is shown in its settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendgridConfig {
    /// The "Verification Key": base64 DER (as SendGrid shows it) or PEM.
    pub public_key: String,
    /// Requests whose signed timestamp is further than this from now are refused (replays).
    #[serde(default = "default_max_age_seconds")]
    pub max_age_seconds: u64,
    /// API key with suppression read access, for live look-ups (optional).
    pub api_key: Option<secrecy::SecretString>,
    #[serde(default = "SendgridConfig::default_api_base")]
    pub api_base: String,
}

impl SendgridConfig {
    fn default_api_base() -> String {
        "https://api.sendgrid.com".into()
    }
}

/// Mailgun puts an HMAC-SHA256 of timestamp + token, made with the webhook signing key, in the body.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailgunConfig {
    pub signing_key: secrecy::SecretString,
    #[serde(default = "default_max_age_seconds")]
    pub max_age_seconds: u64,
    /// Private API key, for live look-ups of the domain's bounces, complaints and unsubscribes.
    pub api_key: Option<secrecy::SecretString>,
    /// The sending domain whose suppression lists are looked up (needed with `api_key`).
    pub domain: Option<String>,
    #[serde(default = "MailgunConfig::default_api_base")]
    pub api_base: String,
}

impl MailgunConfig {
    fn default_api_base() -> String {
        "https://api.mailgun.net".into()
    }
}

/// Amazon SES publishes events to an SNS topic, which posts signed notifications.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SesConfig {
    /// Only notifications from this topic are accepted.
    pub topic_arn: String,
    /// Regular expression the signing certificate's host must match in full.
    #[serde(default = "SesConfig::default_cert_host_pattern")]
    pub cert_host_pattern: String,
    /// Notifications older than this (SNS `Timestamp`) are refused; SNS retries for up to an hour.
    #[serde(default = "SesConfig::default_max_age_seconds")]
    pub max_age_seconds: u64,
    /// Confirm subscriptions to `topic_arn` by visiting their SubscribeURL.
    #[serde(default = "SesConfig::default_confirm")]
    pub confirm_subscriptions: bool,
    /// For live look-ups with SES `GetSuppressedDestination` (optional; all three needed).
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<secrecy::SecretString>,
    /// Default `https://email.{region}.amazonaws.com`.
    pub api_base: Option<String>,
}

impl SesConfig {
    fn default_cert_host_pattern() -> String {
        r"sns\.[a-z0-9-]+\.amazonaws\.com".into()
    }
    fn default_max_age_seconds() -> u64 {
        3600
    }
    fn default_confirm() -> bool {
        true
    }
}

fn default_max_age_seconds() -> u64 {
    300
}

impl Config {
    fn validate_http(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: String| Err(ConfigError::Invalid { key, message });
        if self.http.listen.parse::<std::net::SocketAddr>().is_err() {
            return invalid("http.listen", "must be IP:PORT, e.g. 127.0.0.1:8080".into());
        }
        for (key, value) in [
            (
                "http.header_timeout_seconds",
                self.http.header_timeout_seconds,
            ),
            (
                "http.request_timeout_seconds",
                self.http.request_timeout_seconds,
            ),
            ("http.max_connections", self.http.max_connections as u64),
        ] {
            if value == 0 {
                return invalid(key, "must be at least 1".into());
            }
        }
        if self.http.max_body_bytes < 1024 {
            return invalid("http.max_body_bytes", "must be at least 1024".into());
        }
        if let Some(ses) = &self.providers.ses {
            if let Err(e) = regex::Regex::new(&ses.cert_host_pattern) {
                return invalid("providers.ses.cert_host_pattern", e.to_string());
            }
        }
        if let Some(mailgun) = &self.providers.mailgun {
            if mailgun.api_key.is_some() && mailgun.domain.is_none() {
                return invalid(
                    "providers.mailgun.domain",
                    "is needed for live look-ups with api_key".into(),
                );
            }
        }
        Ok(())
    }
}

/// `[alerts]`: which workspace's problems go to which Discord channel, and how they are held and
/// grouped. Off while `channels` is empty: unmapped workspaces get no alerts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Workspace slug -> the Discord channel id its alerts are posted to.
    pub channels: std::collections::BTreeMap<String, u64>,
    /// The only role an alert mentions (by id); nobody is mentioned without it.
    pub mention_role: Option<u64>,
    /// An invitation deferred for longer than this is alerted about.
    pub deferred_alert_hours: u32,
    /// `HH:MM-HH:MM` local time (`timezone`): alerts found then are held and posted as one digest
    /// per channel when the quiet hours end.
    pub quiet_hours: Option<String>,
    /// The offset of `quiet_hours`: `UTC`, `+02:00`, `-05:00`.
    pub timezone: String,
    /// This many problems at one company domain of one workspace ...
    pub burst_threshold: u32,
    /// ... within this many minutes become one alert for the domain, with the count.
    pub burst_window_minutes: u32,
    /// How often `serve` scans for new problems and posts what is due.
    pub scan_interval_seconds: u64,
    /// A post Discord refused or did not answer is retried this many times in all, then given up.
    pub max_post_attempts: u32,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            channels: Default::default(),
            mention_role: None,
            deferred_alert_hours: 12,
            quiet_hours: None,
            timezone: "UTC".into(),
            burst_threshold: 5,
            burst_window_minutes: 30,
            scan_interval_seconds: 60,
            max_post_attempts: 5,
        }
    }
}

impl AlertsConfig {
    /// True when some workspace has an alert channel.
    pub fn is_enabled(&self) -> bool {
        !self.channels.is_empty()
    }

    /// The quiet hours at their offset, when configured (checked at start-up by `validate`).
    pub fn quiet_hours(&self) -> Result<Option<crate::domain::alert::QuietHours>, ConfigError> {
        let invalid = |key, message: String| ConfigError::Invalid { key, message };
        let offset = crate::ingest::parse_offset(&self.timezone)
            .map_err(|message| invalid("alerts.timezone", message))?;
        self.quiet_hours
            .as_deref()
            .map(|text| {
                crate::domain::alert::QuietHours::parse(text, offset)
                    .map_err(|e| invalid("alerts.quiet_hours", e.to_string()))
            })
            .transpose()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: &str| {
            Err(ConfigError::Invalid {
                key,
                message: message.into(),
            })
        };
        for (slug, channel) in &self.channels {
            if crate::domain::workspace::WorkspaceSlug::parse(slug).is_err() {
                return invalid("alerts.channels", "keys must be workspace slugs");
            }
            if *channel == 0 {
                return invalid("alerts.channels", "values must be channel ids (not 0)");
            }
        }
        if self.mention_role == Some(0) {
            return invalid("alerts.mention_role", "must be a role id (not 0)");
        }
        for (key, value) in [
            ("alerts.deferred_alert_hours", self.deferred_alert_hours),
            ("alerts.burst_threshold", self.burst_threshold),
            ("alerts.burst_window_minutes", self.burst_window_minutes),
            ("alerts.max_post_attempts", self.max_post_attempts),
        ] {
            if value == 0 {
                return invalid(key, "must be at least 1");
            }
        }
        if self.scan_interval_seconds == 0 {
            return invalid("alerts.scan_interval_seconds", "must be at least 1");
        }
        self.quiet_hours()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults_work_without_a_file() {
        let config = Config::load(None, &no_env).unwrap();
        assert_eq!(config.database_url, "sqlite://invite-bot.db");
        assert_eq!(config.checks.resend_wait_minutes, 15);
        assert_eq!(config.checks.domain_alert_threshold, 3);
    }

    #[test]
    fn the_send_lease_and_the_reissue_window_default_to_their_old_constants() {
        let config = Config::load(None, &no_env).unwrap();
        assert_eq!(config.smtp.send_lease_ms, 20_000);
        assert_eq!(config.smtp.send_lease_renew_ms, 5_000);
        assert_eq!(config.actions.activation_code_reissue_seconds, 60);
        let settings = crate::actions::ActionSettings::from(&config);
        assert_eq!(settings.outbox_lease, chrono::Duration::seconds(20));
        assert_eq!(
            settings.outbox_lease_renewal,
            std::time::Duration::from_secs(5)
        );
        assert_eq!(
            settings.activation_code_reissue_after,
            chrono::Duration::seconds(60)
        );
    }

    #[test]
    fn a_send_lease_not_well_above_its_renewal_is_refused() {
        let short = "[smtp]\nsend_lease_ms = 1000\nsend_lease_renew_ms = 500\n";
        let err = Config::from_toml(short, Path::new("c.toml"))
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains("smtp.send_lease_ms"), "{err}");
        let fine = "[smtp]\nsend_lease_ms = 1500\nsend_lease_renew_ms = 500\n\n[actions]\nactivation_code_reissue_seconds = 5\n";
        let config = Config::from_toml(fine, Path::new("c.toml")).unwrap();
        config.validate().unwrap();
        let settings = crate::actions::ActionSettings::from(&config);
        assert_eq!(settings.outbox_lease, chrono::Duration::milliseconds(1500));
        assert_eq!(
            settings.activation_code_reissue_after,
            chrono::Duration::seconds(5)
        );
        let zero = "[actions]\nactivation_code_reissue_seconds = 0\n";
        let err = Config::from_toml(zero, Path::new("c.toml"))
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains("activation_code_reissue_seconds"), "{err}");
    }

    #[test]
    fn unknown_keys_are_errors() {
        let err = Config::from_toml("[checks]\nresend_wait_minuts = 3\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("c.toml") && err.contains("resend_wait_minuts"),
            "{err}"
        );
    }

    #[test]
    fn environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "database_url = \"sqlite://file.db\"\n").unwrap();
        let env = |key: &str| (key == "DATABASE_URL").then(|| "postgres://x@y/z".to_owned());
        assert_eq!(
            Config::load(Some(&path), &env).unwrap().database_url,
            "postgres://x@y/z"
        );
        assert_eq!(
            Config::load(Some(&path), &no_env).unwrap().database_url,
            "sqlite://file.db"
        );
    }

    #[test]
    fn the_discord_api_base_url_must_be_local() {
        for good in [
            "http://127.0.0.1:9000",
            "http://localhost:80/",
            "http://127.0.0.1",
        ] {
            assert!(super::is_local_http_base(good), "{good}");
        }
        for bad in [
            "https://127.0.0.1:9000",
            "http://127.0.0.1.evil.example:80",
            "http://localhost@evil.example",
            "http://evil.example",
            "http://127.0.0.1:9000/api",
            "http://127.0.0.1:",
        ] {
            assert!(!super::is_local_http_base(bad), "{bad}");
        }
    }

    #[test]
    fn the_discord_token_comes_from_the_environment_and_stays_secret() {
        use secrecy::ExposeSecret;
        let env = |key: &str| (key == "DISCORD_TOKEN").then(|| "tok-123".to_owned());
        let config = Config::load(None, &env).unwrap();
        let token = config.discord.token.as_ref().unwrap();
        assert_eq!(token.expose_secret(), "tok-123");
        assert!(!format!("{config:?}").contains("tok-123"));
        assert!(config.discord.ephemeral_replies);
        let bad = Config::from_toml(
            "[discord.default_workspaces]\n\"123\" = \"Not A Slug\"\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("discord.default_workspaces"));
    }

    #[test]
    fn http_mode_needs_a_valid_public_key_and_the_application_id() {
        let key = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
        let load = |text: &str| {
            Config::from_toml(text, Path::new("c.toml"))
                .unwrap()
                .validate()
        };
        let error = |text: &str| load(text).unwrap_err().to_string();
        assert_eq!(Config::default().discord.mode, super::DiscordMode::Gateway);
        load(&format!(
            "[discord]\nmode = \"http\"\npublic_key = \"{key}\"\napplication_id = 42\n"
        ))
        .unwrap();
        assert!(error("[discord]\nmode = \"http\"\napplication_id = 42\n")
            .starts_with("discord.public_key: is needed"));
        assert!(error(&format!(
            "[discord]\nmode = \"http\"\npublic_key = \"{key}\"\n"
        ))
        .starts_with("discord.application_id: is needed"));
        for bad in [
            "abc",
            &key[..62],
            &format!("{}zz", &key[..62]),
            &format!("{key}00"),
        ] {
            assert!(
                error(&format!(
                    "[discord]\nmode = \"http\"\npublic_key = \"{bad}\"\napplication_id = 42\n"
                ))
                .starts_with("discord.public_key: must be 64 hex digits"),
                "{bad}"
            );
        }
        assert!(
            Config::from_toml("[discord]\nmode = \"websocket\"\n", Path::new("c.toml"))
                .unwrap_err()
                .to_string()
                .contains("unknown variant")
        );
        assert!(error("[discord]\napplication_id = 0\n").starts_with("discord.application_id"));
    }

    #[test]
    fn the_answer_deadline_defaults_by_mode_and_stays_within_discords_three_seconds() {
        use std::time::Duration;
        let key = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
        let load = |text: &str| {
            let config = Config::from_toml(text, Path::new("c.toml")).unwrap();
            config.validate().map(|()| config.discord.answer_within())
        };
        let http =
            format!("[discord]\nmode = \"http\"\npublic_key = \"{key}\"\napplication_id = 42\n");
        assert_eq!(load("").unwrap(), Duration::from_millis(1500));
        assert_eq!(load(&http).unwrap(), Duration::from_millis(25));
        assert_eq!(
            load(&format!("{http}answer_within_ms = 300\n")).unwrap(),
            Duration::from_millis(300)
        );
        assert_eq!(
            load("[discord]\nanswer_within_ms = 2000\n").unwrap(),
            Duration::from_millis(2000)
        );
        for bad in ["0", "2001"] {
            let error = load(&format!("[discord]\nanswer_within_ms = {bad}\n"))
                .unwrap_err()
                .to_string();
            assert!(error.starts_with("discord.answer_within_ms"), "{error}");
        }
    }

    #[test]
    fn the_example_config_is_valid_and_complete() {
        let text = include_str!("../config.toml.example");
        let config = Config::from_toml(text, Path::new("config.toml.example")).unwrap();
        config.validate().unwrap();
    }

    #[test]
    fn bad_values_name_the_key() {
        let config =
            Config::from_toml("database_url = \"mysql://x\"\n", Path::new("c.toml")).unwrap();
        assert!(config
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("database_url:"));
    }

    #[test]
    fn a_source_is_checked_at_start_up() {
        let load = |text: &str| {
            Config::from_toml(text, Path::new("c.toml"))
                .and_then(|config| config.validate().map(|()| config))
                .map_err(|e| e.to_string())
        };
        let good =
            "[source]\nurl = \"mysql://bot:s3cret@db/product\"\nmembers_query = \"SELECT 1\"\n\
                    timezone = \"+02:00\"\n[source.status_map]\n\"0\" = \"invited\"\n";
        let config = load(good).unwrap();
        assert_eq!(config.source.zone().local_minus_utc(), 7200);
        assert_eq!(config.source.batch_size, 5000);
        assert!(!format!("{config:?}").contains("s3cret"));

        let bad_scheme =
            load("[source]\nurl = \"oracle://bot:s3cret@db\"\nmembers_query = \"x\"\n")
                .unwrap_err();
        assert!(
            bad_scheme.starts_with("source.url:") && !bad_scheme.contains("s3cret"),
            "{bad_scheme}"
        );
        let no_query = load("[source]\nurl = \"postgres://db/p\"\n").unwrap_err();
        assert!(no_query.starts_with("source.members_query:"), "{no_query}");
        let unknown_word = load("[source.status_map]\n\"9\" = \"banned\"\n").unwrap_err();
        assert!(unknown_word.contains("banned"), "{unknown_word}");
        let region = load("[source]\ntimezone = \"Europe/Paris\"\n").unwrap_err();
        assert!(region.starts_with("source.timezone:"), "{region}");

        let env =
            |key: &str| (key == "INVITE_BOT_SOURCE_URL").then(|| "postgres://x@y/z".to_owned());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "[source]\nmembers_query = \"SELECT 1\"\n").unwrap();
        assert!(Config::load(Some(&path), &env)
            .unwrap()
            .source
            .is_configured());
    }

    #[test]
    fn a_typo_in_a_grant_fails_at_start_up_naming_the_key() {
        let typo =
            "[[permissions.grant]]\nroles = [\"1\"]\nallow = [\"check\", \"resnd_invite\"]\n";
        let message = Config::from_toml(typo, Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(message.contains("allow"), "{message}");
        assert!(message.contains("resnd_invite"), "{message}");

        let bad_slug = "[[permissions.grant]]\nroles = [\"1\"]\nallow = [\"check\"]\nworkspaces = [\"Not A Slug\"]\n";
        let message = Config::from_toml(bad_slug, Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(message.contains("workspaces"), "{message}");

        let operator = "[permissions]\noperator = [\"chek\"]\n";
        let message = Config::from_toml(operator, Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(message.contains("operator"), "{message}");
    }

    #[test]
    fn alert_settings_are_checked_at_start_up() {
        let parse = |text: &str| {
            Config::from_toml(text, Path::new("t.toml")).and_then(|c| c.validate().map(|_| c))
        };
        let good = parse(
            "[alerts]\nquiet_hours = \"22:00-07:00\"\ntimezone = \"+02:00\"\nmention_role = 7\n[alerts.channels]\nacme = 5\n",
        )
        .unwrap();
        assert!(good.alerts.is_enabled());
        assert!(good.alerts.quiet_hours().unwrap().is_some());
        assert!(!Config::default().alerts.is_enabled());
        for (text, key) in [
            ("[alerts]\nquiet_hours = \"22-07\"\n", "alerts.quiet_hours"),
            (
                "[alerts]\nquiet_hours = \"07:00-07:00\"\n",
                "alerts.quiet_hours",
            ),
            ("[alerts]\ntimezone = \"Mars\"\n", "alerts.timezone"),
            (
                "[alerts]\ndeferred_alert_hours = 0\n",
                "alerts.deferred_alert_hours",
            ),
            ("[alerts]\nburst_threshold = 0\n", "alerts.burst_threshold"),
            (
                "[alerts]\nmax_post_attempts = 0\n",
                "alerts.max_post_attempts",
            ),
            ("[alerts]\nmention_role = 0\n", "alerts.mention_role"),
            ("[alerts.channels]\nacme = 0\n", "alerts.channels"),
            (
                "[alerts.channels]\n\"Not A Slug!\" = 5\n",
                "alerts.channels",
            ),
        ] {
            match parse(text) {
                Err(ConfigError::Invalid { key: found, .. }) => assert_eq!(found, key, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }
}
