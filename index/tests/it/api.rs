//! The HTTP API through a real axum server on 127.0.0.1 (ephemeral port).

use std::net::SocketAddr;
use std::time::Duration;

use index::{AggregateResponse, SearchResponse};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::fixtures::{self, TestResult};

/// Bounds every request so a hung server fails the test instead of hanging it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

struct Reply {
    status: u16,
    headers: String,
    body: String,
}

/// Percent-encodes a query-string value.
fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One HTTP/1.1 request with `Connection: close`, read to the end.
async fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> TestResult<Reply> {
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if let Some(b) = body {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    head.push_str("\r\n");
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        stream.write_all(head.as_bytes()).await?;
        if let Some(b) = body {
            stream.write_all(b.as_bytes()).await?;
        }
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        Ok::<_, std::io::Error>(raw)
    };
    let raw = tokio::time::timeout(REQUEST_TIMEOUT, exchange).await??;
    let text = String::from_utf8(raw)?;
    let (headers, body) = text.split_once("\r\n\r\n").ok_or("no header end")?;
    let status = headers
        .split(' ')
        .nth(1)
        .ok_or("no status")?
        .parse::<u16>()?;
    Ok(Reply {
        status,
        headers: headers.to_ascii_lowercase(),
        body: body.to_string(),
    })
}

async fn serve(router: axum::Router) -> TestResult<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let handle = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok((addr, handle))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_and_aggregate_over_http() -> TestResult {
    let (_dir, store, start) = fixtures::loaded_store()?;
    let (addr, server) = serve(index::api::router(store.searcher(), None)).await?;

    let target = format!(
        "/api/search?q={}&limit=5",
        enc("log.level:error AND service.name:api")
    );
    let reply = request(addr, "GET", &target, None, None).await?;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let page: SearchResponse = serde_json::from_str(&reply.body)?;
    assert_eq!(page.events.len(), 5);
    assert!(
        page.events
            .iter()
            .all(|e| e.service.name.as_deref() == Some("api"))
    );
    let cursor = page.next_cursor.ok_or("no cursor")?;
    let target = format!(
        "/api/search?q={}&limit=5&search_after={}",
        enc("log.level:error AND service.name:api"),
        enc(&cursor)
    );
    let next: SearchResponse =
        serde_json::from_str(&request(addr, "GET", &target, None, None).await?.body)?;
    assert_eq!(next.events.len(), 3, "8 api errors in all");
    assert!(next.events[0].timestamp < page.events[4].timestamp);

    let body = serde_json::json!({
        "query": "http.response.status_code:[500 TO 599]",
        "from": start,
        "limit": 100
    })
    .to_string();
    let reply = request(addr, "POST", "/api/search", None, Some(&body)).await?;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let page: SearchResponse = serde_json::from_str(&reply.body)?;
    assert_eq!(page.events.len(), 16);

    let target = format!("/api/aggregate?type=terms&field={}", enc("log.level"));
    let reply = request(addr, "GET", &target, None, None).await?;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let AggregateResponse::Terms { buckets, .. } = serde_json::from_str(&reply.body)? else {
        return Err("not terms".into());
    };
    assert_eq!((buckets[0].key.as_str(), buckets[0].count), ("info", 72));

    let body = serde_json::json!({
        "aggregation": {"type": "date_histogram", "interval": "1d"},
        "from": start,
        "to": start + chrono::Duration::days(2)
    })
    .to_string();
    let reply = request(addr, "POST", "/api/aggregate", None, Some(&body)).await?;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let AggregateResponse::DateHistogram { buckets } = serde_json::from_str(&reply.body)? else {
        return Err("not a histogram".into());
    };
    assert_eq!(
        buckets.iter().map(|b| b.count).collect::<Vec<_>>(),
        [48, 48]
    );

    let reply = request(
        addr,
        "GET",
        "/api/aggregate?type=percentiles&percents=50,99",
        None,
        None,
    )
    .await?;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(matches!(
        serde_json::from_str(&reply.body)?,
        AggregateResponse::Percentiles { count: 96, .. }
    ));

    // Bad input is a JSON 400 with a stable code.
    let target = format!("/api/search?q={}", enc("log.level:(error"));
    let reply = request(addr, "GET", &target, None, None).await?;
    assert_eq!(reply.status, 400);
    let err: serde_json::Value = serde_json::from_str(&reply.body)?;
    assert_eq!(err["code"], "index_bad_request");
    let reply = request(addr, "GET", "/api/search?bogus=1", None, None).await?;
    assert_eq!(reply.status, 400);
    let reply = request(
        addr,
        "POST",
        "/api/aggregate",
        None,
        Some("{\"aggregation\":1}"),
    )
    .await?;
    assert_eq!(reply.status, 400);
    let reply = request(addr, "GET", "/api/aggregate?type=median", None, None).await?;
    assert_eq!(reply.status, 400);
    server.abort();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_is_enforced_when_given() -> TestResult {
    let (_dir, store, _) = fixtures::loaded_store()?;
    let router = index::api::router(store.searcher(), Some("s3cret-token".into()));
    let (addr, server) = serve(router).await?;
    let target = "/api/search?limit=1";

    let reply = request(addr, "GET", target, None, None).await?;
    assert_eq!(reply.status, 401);
    assert!(reply.headers.contains("www-authenticate: bearer"));
    let reply = request(addr, "GET", target, Some("wrong"), None).await?;
    assert_eq!(reply.status, 401);
    let reply = request(
        addr,
        "POST",
        "/api/aggregate",
        Some("s3cret-tokeN"),
        Some("{}"),
    )
    .await?;
    assert_eq!(reply.status, 401);

    let reply = request(addr, "GET", target, Some("s3cret-token"), None).await?;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let page: SearchResponse = serde_json::from_str(&reply.body)?;
    assert_eq!(page.events.len(), 1);
    server.abort();
    Ok(())
}
