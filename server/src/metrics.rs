//! Prometheus metrics, through the Prometheus project's own client
//! (`prometheus-client`): requests by route and status, a latency histogram
//! per route, transitions by branch and stage, and gauges read from the
//! services when rendered, as OpenMetrics text.
//!
//! Recording a request allocates nothing: methods are static names, and
//! routes, branches and stages are interned once (a request's labels are
//! then an `Arc` clone each), so the hot path is a read-locked hash lookup
//! and an atomic add.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A label value shared by every series that carries it.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct Label(Arc<str>);

impl EncodeLabelValue for Label {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(&self.0)
    }
}

/// An HTTP method's name (the standard ones; anything else is `OTHER`).
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct Verb(&'static str);

impl EncodeLabelValue for Verb {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.0)
    }
}

/// The labels of a request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: Verb,
    route: Label,
    status: u16,
}

/// The labels of a latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: Verb,
    route: Label,
}

/// The labels of the transition counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    branch: Label,
    stage: Label,
}

/// A histogram with [`BUCKETS`].
fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// The server's metrics.
pub struct Metrics {
    /// Every family, for rendering.
    registry: Registry,
    /// Requests by method, route and status.
    requests: Family<RequestLabels, Counter>,
    /// Latency by method and route.
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    /// Transitions by branch and target stage.
    transitions: Family<StageLabels, Counter>,
    /// Open `GET /v1/events` streams, set when rendered.
    subscribers: Gauge,
    /// Label values seen so far (routes, branches, stages).
    interned: RwLock<HashSet<Arc<str>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let latency: Family<RouteLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        let transitions = Family::<StageLabels, Counter>::default();
        let subscribers = Gauge::default();
        registry.register(
            "dealflow_http_requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        registry.register(
            "dealflow_http_request_duration_seconds",
            "HTTP request latency",
            latency.clone(),
        );
        registry.register(
            "dealflow_transitions",
            "Deal transitions by branch and target stage",
            transitions.clone(),
        );
        registry.register(
            "dealflow_event_subscribers",
            "Open GET /v1/events streams",
            subscribers.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            transitions,
            subscribers,
            interned: RwLock::default(),
        }
    }
}

/// The static name of a method.
fn verb(method: &str) -> Verb {
    Verb(match method {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "OTHER",
    })
}

impl Metrics {
    /// The shared value of `text` (allocated once, the first time).
    fn intern(&self, text: &str) -> Label {
        if let Some(v) = self.interned.read().get(text) {
            return Label(Arc::clone(v));
        }
        let mut set = self.interned.write();
        if let Some(v) = set.get(text) {
            return Label(Arc::clone(v));
        }
        let v: Arc<str> = Arc::from(text);
        set.insert(Arc::clone(&v));
        Label(v)
    }

    /// Records one finished request (`route` is the matched route pattern,
    /// so the label set stays bounded).
    pub fn request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let (method, route) = (verb(method), self.intern(route));
        self.latency
            .get_or_create(&RouteLabels {
                method: method.clone(),
                route: route.clone(),
            })
            .observe(elapsed.as_secs_f64());
        self.requests
            .get_or_create(&RequestLabels {
                method,
                route,
                status,
            })
            .inc();
    }

    /// Records a deal entering `stage` in `branch`.
    pub fn transition(&self, branch: &str, stage: &str) {
        self.transitions
            .get_or_create(&StageLabels {
                branch: self.intern(branch),
                stage: self.intern(stage),
            })
            .inc();
    }

    /// The OpenMetrics text ([`CONTENT_TYPE`]), with the open event
    /// streams counted now.
    pub fn render(&self, event_subscribers: u64) -> String {
        self.subscribers
            .set(i64::try_from(event_subscribers).unwrap_or(i64::MAX));
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_transitions_and_gauges_render_as_openmetrics() {
        let m = Metrics::default();
        m.request("GET", "/v1/brands", 200, Duration::from_millis(3));
        m.request("GET", "/v1/brands", 200, Duration::from_millis(30));
        m.transition("sh", "qualify");
        let text = m.render(2);
        assert!(text.contains(
            "dealflow_http_requests_total{method=\"GET\",route=\"/v1/brands\",status=\"200\"} 2"
        ));
        assert!(text.contains(
            "dealflow_http_request_duration_seconds_count{method=\"GET\",route=\"/v1/brands\"} 2"
        ));
        assert!(text.contains("dealflow_transitions_total{branch=\"sh\",stage=\"qualify\"} 1"));
        assert!(text.contains("dealflow_event_subscribers 2"));
        assert!(text.ends_with("# EOF\n"));
    }
}
