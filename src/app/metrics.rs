//! Prometheus metrics: a small process-wide registry of counters and latency histograms, rendered in
//! the Prometheus text exposition format at `GET /metrics`.
//!
//! Hand-written rather than a metrics crate: the bot needs a handful of counters and one histogram,
//! and the text format is simple. Label values come from code (verdicts, route patterns, provider
//! names), never from request input, so the number of series stays bounded.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{LazyLock, Mutex};

/// Upper bounds (seconds) of the request-latency buckets.
const LATENCY_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

struct Family {
    help: &'static str,
    kind: &'static str,
}

/// Every metric family the bot exposes, so `/metrics` lists them (with HELP/TYPE) even at zero.
const FAMILIES: &[(&str, Family)] = &[
    (
        "invite_bot_checks_total",
        Family {
            help: "Delivery checks run, by verdict.",
            kind: "counter",
        },
    ),
    (
        "invite_bot_actions_total",
        Family {
            help: "Actions taken (resend, activation code, escalation), by kind and outcome.",
            kind: "counter",
        },
    ),
    (
        "invite_bot_refusals_total",
        Family {
            help: "Requests refused (permissions, limits, bad input), by reason.",
            kind: "counter",
        },
    ),
    (
        "invite_bot_webhook_events_total",
        Family {
            help: "Provider webhook requests, by provider and result (accepted or rejected).",
            kind: "counter",
        },
    ),
    (
        "invite_bot_smtp_sends_total",
        Family {
            help: "Emails handed to the SMTP server, by result (sent or failed).",
            kind: "counter",
        },
    ),
    (
        "invite_bot_suppression_lookups_total",
        Family {
            help: "Live suppression look-ups at providers, by provider and outcome.",
            kind: "counter",
        },
    ),
    (
        "invite_bot_http_request_duration_seconds",
        Family {
            help: "HTTP request latency, by route.",
            kind: "histogram",
        },
    ),
];

type Labels = Vec<(&'static str, String)>;

#[derive(Default)]
struct Histogram {
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Registry {
    counters: BTreeMap<(&'static str, Labels), u64>,
    histograms: BTreeMap<(&'static str, Labels), Histogram>,
}

static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(|| Mutex::new(Registry::default()));

fn with_registry(update: impl FnOnce(&mut Registry)) {
    // A poisoned lock only means another thread panicked mid-update; the counters are still usable.
    let mut registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    update(&mut registry);
}

fn increment(name: &'static str, labels: Labels) {
    with_registry(|r| *r.counters.entry((name, labels)).or_insert(0) += 1);
}

/// One check finished with `verdict`.
pub fn record_check(verdict: &str) {
    increment("invite_bot_checks_total", vec![("verdict", verdict.into())]);
}

/// An action (`resend_invite`, `issue_activation_code`, `escalate`) ended with `outcome`.
pub fn record_action(kind: &str, outcome: &str) {
    increment(
        "invite_bot_actions_total",
        vec![("kind", kind.into()), ("outcome", outcome.into())],
    );
}

/// A request was refused for `reason` (a short stable code).
pub fn record_refusal(reason: &str) {
    increment("invite_bot_refusals_total", vec![("reason", reason.into())]);
}

/// A webhook request from `provider` was accepted or rejected (bad signature, malformed body...).
pub fn record_webhook(provider: &str, accepted: bool) {
    let result = if accepted { "accepted" } else { "rejected" };
    increment(
        "invite_bot_webhook_events_total",
        vec![("provider", provider.into()), ("result", result.into())],
    );
}

/// An email was handed to the SMTP server (`ok`) or the hand-over failed.
pub fn record_smtp(ok: bool) {
    let result = if ok { "sent" } else { "failed" };
    increment(
        "invite_bot_smtp_sends_total",
        vec![("result", result.into())],
    );
}

/// A live suppression look-up at `provider` ended with `outcome` (suppressed, clear, timeout, error).
pub fn record_lookup(provider: &str, outcome: &str) {
    increment(
        "invite_bot_suppression_lookups_total",
        vec![("provider", provider.into()), ("outcome", outcome.into())],
    );
}

/// One HTTP request to `route` (the route pattern, not the raw path) took `seconds`.
pub fn observe_request(route: &str, seconds: f64) {
    with_registry(|r| {
        let histogram = r
            .histograms
            .entry((
                "invite_bot_http_request_duration_seconds",
                vec![("route", route.into())],
            ))
            .or_default();
        for (bucket, bound) in histogram.buckets.iter_mut().zip(LATENCY_BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        histogram.count += 1;
        histogram.sum += seconds;
    });
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn label_text(labels: &[(&'static str, String)], extra: Option<(&str, String)>) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    if let Some((k, v)) = extra {
        parts.push(format!("{k}=\"{v}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

/// The whole registry in the Prometheus text format (version 0.0.4).
pub fn render() -> String {
    let registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = String::new();
    for (name, family) in FAMILIES {
        let _ = writeln!(out, "# HELP {name} {}", family.help);
        let _ = writeln!(out, "# TYPE {name} {}", family.kind);
        for ((series, labels), value) in &registry.counters {
            if series == name {
                let _ = writeln!(out, "{name}{} {value}", label_text(labels, None));
            }
        }
        for ((series, labels), histogram) in &registry.histograms {
            if series != name {
                continue;
            }
            for (count, bound) in histogram.buckets.iter().zip(LATENCY_BUCKETS) {
                let _ = writeln!(
                    out,
                    "{name}_bucket{} {count}",
                    label_text(labels, Some(("le", bound.to_string())))
                );
            }
            let _ = writeln!(
                out,
                "{name}_bucket{} {}",
                label_text(labels, Some(("le", "+Inf".into()))),
                histogram.count
            );
            let _ = writeln!(
                out,
                "{name}_sum{} {}",
                label_text(labels, None),
                histogram.sum
            );
            let _ = writeln!(
                out,
                "{name}_count{} {}",
                label_text(labels, None),
                histogram.count
            );
        }
    }
    out
}

/// What the database knows of each way the product's data comes in, as metrics: it is shared by
/// every replica, so these are read from it at scrape time rather than counted in the process.
pub fn render_sources(
    states: &[crate::store::SourceState],
    now: chrono::DateTime<chrono::Utc>,
) -> String {
    let mut out = String::new();
    let families: [(&str, &str, &str); 3] = [
        (
            "invite_bot_source_rows_applied_total",
            "counter",
            "Member and invitation rows applied from the product (sync, import, push), by source.",
        ),
        (
            "invite_bot_source_sync_errors_total",
            "counter",
            "Syncs of the product's database that failed, by source.",
        ),
        (
            "invite_bot_source_age_seconds",
            "gauge",
            "Seconds since the data of each source was last brought up to date (the sync's lag).",
        ),
    ];
    for (name, kind, help) in families {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for state in states {
            // Source names are the bot's own four words, never request input.
            let labels = format!("{{source=\"{}\"}}", state.name);
            let value = match name {
                "invite_bot_source_rows_applied_total" => state.rows_applied.to_string(),
                "invite_bot_source_sync_errors_total" => state.errors.to_string(),
                _ => match state.last_success_at {
                    Some(at) => ((now - at).num_milliseconds() as f64 / 1000.0).to_string(),
                    None => continue,
                },
            };
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    }
    out
}

/// The current value of one counter series, for tests and diagnostics.
pub fn counter_value(name: &str, labels: &[(&str, &str)]) -> u64 {
    let registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    registry
        .counters
        .iter()
        .find(|((series, series_labels), _)| {
            *series == name
                && series_labels.len() == labels.len()
                && series_labels
                    .iter()
                    .zip(labels)
                    .all(|((k, v), (lk, lv))| k == lk && v == lv)
        })
        .map(|(_, value)| *value)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_histograms_render_in_the_text_format() {
        record_webhook("unit-test-provider", true);
        record_webhook("unit-test-provider", false);
        record_webhook("unit-test-provider", false);
        observe_request("/unit-test", 0.02);
        observe_request("/unit-test", 3.0);
        let text = render();
        assert!(text.contains("# TYPE invite_bot_webhook_events_total counter"));
        assert!(text.contains(
            "invite_bot_webhook_events_total{provider=\"unit-test-provider\",result=\"rejected\"} 2"
        ));
        assert!(text.contains(
            "invite_bot_http_request_duration_seconds_bucket{route=\"/unit-test\",le=\"0.025\"} 1"
        ));
        assert!(text.contains(
            "invite_bot_http_request_duration_seconds_bucket{route=\"/unit-test\",le=\"+Inf\"} 2"
        ));
        assert!(
            text.contains("invite_bot_http_request_duration_seconds_count{route=\"/unit-test\"} 2")
        );
        assert_eq!(
            counter_value(
                "invite_bot_webhook_events_total",
                &[("provider", "unit-test-provider"), ("result", "accepted")]
            ),
            1
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
