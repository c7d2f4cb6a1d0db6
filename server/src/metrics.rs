//! Prometheus metrics: requests by route and status, a latency histogram per
//! route, transitions by branch and stage, and gauges read from the services
//! when rendered, as text exposition.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use parking_lot::Mutex;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Latency observations of one route.
#[derive(Default)]
struct Histogram {
    /// Count per bucket (not cumulative; summed when rendered).
    buckets: [u64; BUCKETS.len()],
    /// Observations above the last bucket.
    overflow: u64,
    /// Sum of observations, seconds.
    sum: f64,
}

/// Everything counted, under one lock: updates are a few map lookups, far
/// cheaper than the request they describe.
#[derive(Default)]
struct Inner {
    /// (method, route, status) → count.
    requests: BTreeMap<(String, String, u16), u64>,
    /// (method, route) → latency.
    latency: BTreeMap<(String, String), Histogram>,
    /// (branch, stage) → transitions into that stage.
    transitions: BTreeMap<(String, String), u64>,
}

/// The server's metrics.
#[derive(Default)]
pub struct Metrics {
    /// The counters.
    inner: Mutex<Inner>,
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// Records one finished request.
    pub fn request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let mut m = self.inner.lock();
        *m.requests
            .entry((method.to_string(), route.to_string(), status))
            .or_default() += 1;
        let h = m
            .latency
            .entry((method.to_string(), route.to_string()))
            .or_default();
        h.sum += secs;
        match BUCKETS.iter().position(|b| secs <= *b) {
            Some(i) => h.buckets[i] += 1,
            None => h.overflow += 1,
        }
    }

    /// Records a deal entering `stage` in `branch`.
    pub fn transition(&self, branch: &str, stage: &str) {
        *self
            .inner
            .lock()
            .transitions
            .entry((branch.to_string(), stage.to_string()))
            .or_default() += 1;
    }

    /// The Prometheus text exposition, with `gauges` (name, help, value)
    /// read at the time of the request.
    pub fn render(&self, gauges: &[(&str, &str, u64)]) -> String {
        let m = self.inner.lock();
        let mut out = String::new();
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        out.push_str("# HELP dealflow_http_requests_total HTTP requests by route and status.\n");
        out.push_str("# TYPE dealflow_http_requests_total counter\n");
        for ((method, route, status), n) in &m.requests {
            let _ = writeln!(
                out,
                "dealflow_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
                escape(method),
                escape(route)
            );
        }
        out.push_str("# HELP dealflow_http_request_duration_seconds HTTP request latency.\n");
        out.push_str("# TYPE dealflow_http_request_duration_seconds histogram\n");
        for ((method, route), h) in &m.latency {
            let labels = format!("method=\"{}\",route=\"{}\"", escape(method), escape(route));
            let mut cumulative = 0;
            for (bound, n) in BUCKETS.iter().zip(h.buckets.iter()) {
                cumulative += n;
                let _ = writeln!(
                    out,
                    "dealflow_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                );
            }
            let count = cumulative + h.overflow;
            let _ = writeln!(
                out,
                "dealflow_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "dealflow_http_request_duration_seconds_sum{{{labels}}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "dealflow_http_request_duration_seconds_count{{{labels}}} {count}"
            );
        }
        out.push_str(
            "# HELP dealflow_transitions_total Deal transitions by branch and target stage.\n",
        );
        out.push_str("# TYPE dealflow_transitions_total counter\n");
        for ((branch, stage), n) in &m.transitions {
            let _ = writeln!(
                out,
                "dealflow_transitions_total{{branch=\"{}\",stage=\"{}\"}} {n}",
                escape(branch),
                escape(stage)
            );
        }
        out
    }
}
