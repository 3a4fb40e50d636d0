//! The collector's metrics over HTTP: `GET /metrics` (and `HEAD`), nothing else, served by hyper.
//! It reads at most a few kilobytes of request head from anyone, gives each client a few seconds,
//! and answers a handful of connections at a time; more wait in the kernel's backlog.

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The most connections answered at once.
const MAX_CONNECTIONS: usize = 8;
/// The most a request may send before its head ends (hyper's smallest read buffer).
const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// The most header lines a request may have.
const MAX_HEADERS: usize = 32;
/// How long a client may take to send its request and take the answer.
const CLIENT_PATIENCE: Duration = Duration::from_secs(5);

/// What the endpoint serves: the metrics, rendered afresh for each scrape, and their content type.
#[derive(Clone)]
pub struct Scrape {
    pub render: Arc<dyn Fn() -> String + Send + Sync>,
    pub content_type: &'static str,
}

/// Serves `GET /metrics` on `listener` until `shutdown`.
pub async fn serve(listener: TcpListener, scrape: Scrape, shutdown: CancellationToken) {
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
        let scrape = scrape.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let answer = answer(&request, &scrape);
                async move { Ok::<_, Infallible>(answer) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(CLIENT_PATIENCE)
                .max_buf_size(MAX_REQUEST_HEAD)
                .max_headers(MAX_HEADERS)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = shutdown.cancelled() => {}
                done = tokio::time::timeout(CLIENT_PATIENCE, connection) => {
                    if let Ok(Err(e)) = done {
                        tracing::debug!("metrics endpoint: a request failed: {e}");
                    }
                }
            }
            drop(permit);
        });
    }
}

fn answer(request: &Request<Incoming>, scrape: &Scrape) -> Response<Full<Bytes>> {
    let plain = "text/plain; charset=utf-8";
    let reply = |status: StatusCode, kind: &'static str, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        r.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(kind));
        r.headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        r
    };
    if request.uri().path() != "/metrics" {
        return reply(
            StatusCode::NOT_FOUND,
            plain,
            "the metrics are at /metrics\n".into(),
        );
    }
    match *request.method() {
        // hyper leaves out a HEAD answer's body and keeps its length.
        Method::GET | Method::HEAD => reply(StatusCode::OK, scrape.content_type, (scrape.render)()),
        _ => {
            let mut r = reply(StatusCode::METHOD_NOT_ALLOWED, plain, String::new());
            r.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            r
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

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
        let shutdown = CancellationToken::new();
        let scrape = Scrape {
            render: Arc::new(|| "x_total 1\n".to_string()),
            content_type: "text/plain; version=0.0.4; charset=utf-8",
        };
        let server = tokio::spawn(serve(listener, scrape, shutdown.clone()));

        let ok = ask(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("version=0.0.4"), "{ok}");
        assert!(ok.ends_with("\r\n\r\nx_total 1\n"), "{ok}");
        let with_query = ask(addr, b"GET /metrics?x=1 HTTP/1.0\r\n\r\n").await;
        assert!(with_query.contains(" 200 OK\r\n"), "{with_query}");
        let head = ask(addr, b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(
            head.starts_with("HTTP/1.1 200 OK\r\n") && head.ends_with("\r\n\r\n"),
            "{head}"
        );

        let post = ask(
            addr,
            b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        )
        .await;
        assert!(post.starts_with("HTTP/1.1 405 "), "{post}");
        assert!(
            post.to_ascii_lowercase().contains("allow: get, head"),
            "{post}"
        );
        let other = ask(addr, b"GET /../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(other.starts_with("HTTP/1.1 404 "), "{other}");
        let garbage = ask(addr, b"\x16\x03\x01\x02\x00\x01\x00\r\n\r\n").await;
        assert!(garbage.starts_with("HTTP/1.1 400 "), "{garbage}");
        let mut huge = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
        huge.extend(vec![b'a'; 64 * 1024]);
        let huge = ask(addr, &huge).await;
        assert!(huge.starts_with("HTTP/1.1 431 "), "{huge}");

        // A client that says nothing holds one slot, not the endpoint.
        let mut silent = Vec::new();
        for _ in 0..MAX_CONNECTIONS - 1 {
            silent.push(TcpStream::connect(addr).await.expect("connect"));
        }
        let still = ask(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(still.starts_with("HTTP/1.1 200 OK\r\n"), "{still}");

        shutdown.cancel();
        server.await.expect("the endpoint stops when told");
    }
}
