//! Prometheus' text exposition format (version 0.0.4) and the smallest HTTP endpoint that serves
//! it: `GET /metrics`, nothing else. It speaks only what a scraper sends, reads at most a few
//! kilobytes from anyone, and answers a handful of connections at a time.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// The content type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Metrics as text, written family by family.
#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
}

/// A label value as the format quotes it.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A sample value: integers without a fraction, infinities as the format spells them.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

impl Exposition {
    fn header(&mut self, name: &str, kind: &str, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            let inner: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            let _ = write!(self.text, "{{{}}}", inner.join(","));
        }
        let _ = writeln!(self.text, " {}", number(value));
    }

    /// A counter: `name` should end in `_total`.
    pub fn counter(&mut self, name: &str, help: &str, value: f64) {
        self.header(name, "counter", help);
        self.sample(name, &[], value);
    }

    /// A counter split by one label (`reason`, `outcome`, …); an empty family still names itself.
    pub fn counters<'a>(
        &mut self,
        name: &str,
        help: &str,
        label: &str,
        values: impl IntoIterator<Item = (&'a str, f64)>,
    ) {
        self.header(name, "counter", help);
        for (v, n) in values {
            self.sample(name, &[(label, v)], n);
        }
    }

    pub fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.header(name, "gauge", help);
        self.sample(name, &[], value);
    }

    /// A gauge with constant labels, such as a build's version.
    pub fn info(&mut self, name: &str, help: &str, labels: &[(&str, &str)]) {
        self.header(name, "gauge", help);
        self.sample(name, labels, 1.0);
    }

    pub fn histogram(&mut self, name: &str, help: &str, h: &Histogram) {
        self.header(name, "histogram", help);
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0;
        for (bound, n) in h.bounds.iter().zip(&h.counts) {
            cumulative += n;
            self.sample(&bucket, &[("le", &number(*bound))], cumulative as f64);
        }
        self.sample(&bucket, &[("le", "+Inf")], h.count as f64);
        self.sample(&format!("{name}_sum"), &[], h.sum);
        self.sample(&format!("{name}_count"), &[], h.count as f64);
    }

    pub fn finish(self) -> String {
        self.text
    }
}

/// Bucket bounds, in seconds, for latencies from a millisecond to a minute.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Observations counted into buckets (`le` bounds, ascending), with their sum.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Per bucket, not cumulative; what is above the last bound is only in `count`.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    pub fn observe(&mut self, value: f64) {
        if let Some(i) = self.bounds.iter().position(|b| value <= *b) {
            self.counts[i] += 1;
        }
        self.sum += value;
        self.count += 1;
    }

    pub fn count(&self) -> u64 {
        self.count
    }
}

/// The most connections answered at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 8;
/// The most a request may send before its head ends.
const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// How long a client may take to send its request and take the answer.
const CLIENT_PATIENCE: Duration = Duration::from_secs(5);

/// What the endpoint serves: the metrics, rendered afresh for each scrape.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// Serves `GET /metrics` on `listener` until `shutdown`.
pub async fn serve(listener: TcpListener, render: Render, shutdown: CancellationToken) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => return,
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let (stream, _) = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: pass, and try again shortly.
                    tracing::debug!("metrics endpoint: cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let render = render.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(CLIENT_PATIENCE, answer(stream, render.as_ref())).await;
            drop(permit);
        });
    }
}

/// Reads one request and answers it; the connection closes after the answer.
async fn answer(
    mut stream: TcpStream,
    render: &(dyn Fn() -> String + Send + Sync),
) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() > MAX_REQUEST_HEAD {
            return respond(
                &mut stream,
                "431 Request Header Fields Too Large",
                "",
                false,
            )
            .await;
        }
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|b| *b == b'\r').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next(), parts.next(), parts.next());
    if !version.is_some_and(|v| v.starts_with("HTTP/1.")) || parts.next().is_some() {
        return respond(&mut stream, "400 Bad Request", "", false).await;
    }
    let path = target
        .unwrap_or_default()
        .split('?')
        .next()
        .unwrap_or_default();
    match (method.unwrap_or_default(), path) {
        ("GET", "/metrics") => respond(&mut stream, "200 OK", &render(), false).await,
        ("HEAD", "/metrics") => respond(&mut stream, "200 OK", &render(), true).await,
        (_, "/metrics") => respond(&mut stream, "405 Method Not Allowed", "", false).await,
        _ => {
            respond(
                &mut stream,
                "404 Not Found",
                "the metrics are at /metrics\n",
                false,
            )
            .await
        }
    }
}

async fn respond(
    stream: &mut TcpStream,
    status: &str,
    body: &str,
    head_only: bool,
) -> std::io::Result<()> {
    let kind = if status.starts_with("200") {
        CONTENT_TYPE
    } else {
        "text/plain; charset=utf-8"
    };
    let allow = if status.starts_with("405") {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n{allow}Cache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    if !head_only {
        stream.write_all(body.as_bytes()).await?;
    }
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_format_is_written_as_scrapers_read_it() {
        let mut e = Exposition::default();
        e.counter("a_total", "Things.\nMore", 3.0);
        e.counters(
            "b_total",
            "By reason.",
            "reason",
            [("x\"y\\z\n", 1.0), ("ok", 2.5)],
        );
        e.gauge("c", "A level.", f64::INFINITY);
        let mut h = Histogram::new(&[0.125, 1.0]);
        for v in [0.0625, 0.125, 0.5, 7.0] {
            h.observe(v);
        }
        e.histogram("d_seconds", "Latency.", &h);
        e.info("e_info", "Build.", &[("version", "1.0 (git abc)")]);
        assert_eq!(
            e.finish(),
            "# HELP a_total Things.\\nMore\n# TYPE a_total counter\na_total 3\n\
             # HELP b_total By reason.\n# TYPE b_total counter\n\
             b_total{reason=\"x\\\"y\\\\z\\n\"} 1\nb_total{reason=\"ok\"} 2.5\n\
             # HELP c A level.\n# TYPE c gauge\nc +Inf\n\
             # HELP d_seconds Latency.\n# TYPE d_seconds histogram\n\
             d_seconds_bucket{le=\"0.125\"} 2\nd_seconds_bucket{le=\"1\"} 3\n\
             d_seconds_bucket{le=\"+Inf\"} 4\nd_seconds_sum 7.6875\nd_seconds_count 4\n\
             # HELP e_info Build.\n# TYPE e_info gauge\ne_info{version=\"1.0 (git abc)\"} 1\n"
        );
    }

    /// Sends `request` to a running endpoint; the raw answer.
    async fn ask(addr: std::net::SocketAddr, request: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        // The endpoint may answer (and close) before it has read everything it was sent.
        let _ = s.write_all(request).await;
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out).await;
        String::from_utf8_lossy(&out).into_owned()
    }

    #[tokio::test]
    async fn the_endpoint_answers_a_scrape_and_nothing_else() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().unwrap();
        assert!(addr.ip().is_loopback());
        let shutdown = CancellationToken::new();
        let render: Render = Arc::new(|| "x_total 1\n".to_string());
        let server = tokio::spawn(serve(listener, render, shutdown.clone()));

        let ok = ask(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains(CONTENT_TYPE), "{ok}");
        assert!(ok.ends_with("\r\n\r\nx_total 1\n"), "{ok}");
        let with_query = ask(addr, b"GET /metrics?x=1 HTTP/1.0\r\n\r\n").await;
        assert!(
            with_query.starts_with("HTTP/1.1 200 OK\r\n"),
            "{with_query}"
        );
        let head = ask(addr, b"HEAD /metrics HTTP/1.1\r\n\r\n").await;
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n") && head.ends_with("\r\n\r\n"));

        let post = ask(addr, b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n").await;
        assert!(post.starts_with("HTTP/1.1 405 "), "{post}");
        assert!(post.contains("Allow: GET, HEAD"), "{post}");
        let other = ask(addr, b"GET /../etc/passwd HTTP/1.1\r\n\r\n").await;
        assert!(other.starts_with("HTTP/1.1 404 "), "{other}");
        let garbage = ask(addr, b"\x16\x03\x01\x02\x00\x01\x00\r\n\r\n").await;
        assert!(garbage.starts_with("HTTP/1.1 400 "), "{garbage}");
        let huge = ask(addr, &vec![b'a'; 64 * 1024]).await;
        assert!(huge.starts_with("HTTP/1.1 431 "), "{huge}");

        // A client that says nothing holds one slot, not the endpoint.
        let mut silent = Vec::new();
        for _ in 0..MAX_CONNECTIONS - 1 {
            silent.push(TcpStream::connect(addr).await.expect("connect"));
        }
        let still = ask(addr, b"GET /metrics HTTP/1.1\r\n\r\n").await;
        assert!(still.starts_with("HTTP/1.1 200 OK\r\n"), "{still}");

        shutdown.cancel();
        server.await.expect("the endpoint stops when told");
    }
}
