//! The bench's result, as a text table for people and one JSON object for scripts.

use serde_json::{json, Value};

use super::seed::Seeding;
use super::stats::LatencyStats;
use super::{BenchOptions, Hits};
use invite_bot::store::Backend;

#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioReport {
    pub name: &'static str,
    pub stats: LatencyStats,
    /// This scenario's p50 over the baseline's p50.
    pub ratio_to_baseline: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BenchReport {
    pub backend: Backend,
    pub members: u64,
    pub workspaces: u32,
    pub concurrency: usize,
    pub checks: usize,
    pub scenarios: Vec<ScenarioReport>,
    pub hits: Hits,
    pub db_size_mb: f64,
    pub peak_rss_mb: Option<f64>,
    pub seeding: Seeding,
}

/// Serialized as [`BenchReport::to_json`] gives it, so `--format json` prints the same object.
impl serde::Serialize for BenchReport {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl BenchReport {
    /// The first scenario is the baseline every ratio is taken against.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        backend: Backend,
        options: &BenchOptions,
        scenarios: Vec<(&'static str, LatencyStats)>,
        hits: Hits,
        db_size_mb: f64,
        peak_rss_mb: Option<f64>,
        seeding: Seeding,
    ) -> Self {
        let baseline_p50 = scenarios.first().map(|(_, s)| s.p50_ms).unwrap_or(0.0);
        let scenarios = scenarios
            .into_iter()
            .map(|(name, stats)| ScenarioReport {
                name,
                ratio_to_baseline: if baseline_p50 > 0.0 {
                    stats.p50_ms / baseline_p50
                } else {
                    0.0
                },
                stats,
            })
            .collect();
        Self {
            backend,
            members: options.members,
            workspaces: options.workspaces,
            concurrency: options.concurrency,
            checks: options.checks,
            scenarios,
            hits,
            db_size_mb,
            peak_rss_mb,
            seeding,
        }
    }

    /// `{"backend", "members", "scenarios": [{"name", "p50_ms", "p95_ms", "p99_ms", "max_ms",
    /// "throughput_per_s", "ratio_to_baseline"}], "suggestion_hit_rate", "db_size_mb", "peak_rss_mb"}`
    pub fn to_json(&self) -> Value {
        json!({
            "backend": self.backend.as_str(),
            "members": self.members,
            "scenarios": self.scenarios.iter().map(|s| json!({
                "name": s.name,
                "p50_ms": round3(s.stats.p50_ms),
                "p95_ms": round3(s.stats.p95_ms),
                "p99_ms": round3(s.stats.p99_ms),
                "max_ms": round3(s.stats.max_ms),
                "throughput_per_s": round3(s.stats.throughput_per_s),
                "ratio_to_baseline": round3(s.ratio_to_baseline),
            })).collect::<Vec<_>>(),
            "suggestion_hit_rate": round3(self.hits.rate()),
            "db_size_mb": round3(self.db_size_mb),
            "peak_rss_mb": self.peak_rss_mb.map(round3),
        })
    }

    pub fn to_text(&self) -> String {
        let mut out = format!(
            "invite-bot bench: {}, {} members in {} workspace{}, {} operations per scenario at concurrency {}\n\n",
            self.backend.as_str(),
            self.members,
            self.workspaces,
            if self.workspaces == 1 { "" } else { "s" },
            self.checks,
            self.concurrency,
        );
        out.push_str(&format!(
            "{:<18} {:>8} {:>8} {:>8} {:>8} {:>10} {:>11}\n",
            "scenario", "p50 ms", "p95 ms", "p99 ms", "max ms", "per second", "x baseline"
        ));
        for s in &self.scenarios {
            out.push_str(&format!(
                "{:<18} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>10.0} {:>11.1}\n",
                s.name,
                s.stats.p50_ms,
                s.stats.p95_ms,
                s.stats.p99_ms,
                s.stats.max_ms,
                s.stats.throughput_per_s,
                s.ratio_to_baseline,
            ));
        }
        out.push_str(&format!(
            "\nsuggestion hit rate: {:.1}% ({} of {} typo checks suggested the intended member first)\n",
            self.hits.rate() * 100.0,
            self.hits.hits,
            self.hits.attempts
        ));
        out.push_str(&format!("database size: {:.1} MB\n", self.db_size_mb));
        match self.peak_rss_mb {
            Some(rss) => out.push_str(&format!("peak RSS: {rss:.1} MB (after seeding)\n")),
            None => out.push_str("peak RSS: unknown (no /proc/self/status)\n"),
        }
        out
    }
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(p50: f64) -> LatencyStats {
        LatencyStats {
            count: 10,
            p50_ms: p50,
            p95_ms: p50 * 2.0,
            p99_ms: p50 * 3.0,
            max_ms: p50 * 4.0,
            throughput_per_s: 1234.5678,
        }
    }

    fn report() -> BenchReport {
        BenchReport::new(
            Backend::Postgres,
            &BenchOptions {
                database_url: "postgres://x/y".into(),
                members: 2000,
                workspaces: 1,
                concurrency: 4,
                checks: 10,
            },
            vec![
                ("baseline", stats(0.2)),
                ("check, registered", stats(0.5)),
                ("check, typo", stats(2.0)),
                ("check, unknown", stats(1.0)),
            ],
            Hits {
                hits: 9,
                attempts: 10,
            },
            12.3456,
            Some(21.5),
            Seeding::Reused,
        )
    }

    #[test]
    fn json_has_exactly_the_documented_keys() {
        let json = report().to_json();
        let mut keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "backend",
                "db_size_mb",
                "members",
                "peak_rss_mb",
                "scenarios",
                "suggestion_hit_rate"
            ]
        );
        assert_eq!(json["backend"], "postgres");
        assert_eq!(json["members"], 2000);
        assert_eq!(json["suggestion_hit_rate"], 0.9);
        assert_eq!(json["db_size_mb"], 12.346);
        let scenarios = json["scenarios"].as_array().unwrap();
        let names: Vec<&str> = scenarios
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "baseline",
                "check, registered",
                "check, typo",
                "check, unknown"
            ]
        );
        let mut scenario_keys: Vec<&str> = scenarios[1]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        scenario_keys.sort_unstable();
        assert_eq!(
            scenario_keys,
            [
                "max_ms",
                "name",
                "p50_ms",
                "p95_ms",
                "p99_ms",
                "ratio_to_baseline",
                "throughput_per_s"
            ]
        );
        assert_eq!(scenarios[0]["ratio_to_baseline"], 1.0);
        assert_eq!(scenarios[1]["ratio_to_baseline"], 2.5);
        assert_eq!(scenarios[2]["ratio_to_baseline"], 10.0);
        assert_eq!(scenarios[1]["throughput_per_s"], 1234.568);
    }

    #[test]
    fn text_table_has_a_row_per_scenario_and_the_totals() {
        let text = report().to_text();
        assert!(
            text.starts_with("invite-bot bench: postgres, 2000 members in 1 workspace,"),
            "{text}"
        );
        for name in [
            "baseline",
            "check, registered",
            "check, typo",
            "check, unknown",
        ] {
            assert!(
                text.lines().any(|l| l.starts_with(name)),
                "{name} missing:\n{text}"
            );
        }
        assert!(
            text.contains("suggestion hit rate: 90.0% (9 of 10"),
            "{text}"
        );
        assert!(text.contains("database size: 12.3 MB"), "{text}");
        assert!(text.contains("peak RSS: 21.5 MB"), "{text}");
    }
}
