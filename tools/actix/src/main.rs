//! Read-your-writes across HTTP requests with actix-web: an actix middleware does what
//! `rwsplit::SessionLayer` does for tower stacks. It resumes the request's causal session from
//! the `x-rwsplit-token` header, runs the rest of the request inside `rwsplit::with_session`
//! (so handlers keep taking the pool), and returns the session's token on the response. A
//! token that cannot be used is never a stale read: the request reads at the primary's current
//! position (`Session::assume_written`).
//!
//! ```text
//! cargo run -p rwsplit-actix-example                 # SQLite, http://127.0.0.1:8081
//! cargo run -p rwsplit-actix-example -- --self-test  # a write and a read over HTTP; prints OK
//! ```
//!
//! With MySQL or PostgreSQL replicas, build the pool with `RoutingPool::builder(..)` instead:
//! the middleware and handlers are the same, and responses then carry the token.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, App, HttpResponse, HttpServer};
use rwsplit::RoutingPool;
use sqlx::Sqlite;

type Pool = RoutingPool<Sqlite>;

const TOKEN_HEADER: &str = "x-rwsplit-token";

/// The middleware: the request's session from its token, the request inside it, the token out.
async fn causal_session(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let pool = req
        .app_data::<web::Data<Pool>>()
        .expect("the pool is app data")
        .get_ref()
        .clone();
    let session = match req.headers().get(TOKEN_HEADER).map(|v| v.to_str()) {
        None => pool.session(),
        Some(Ok(token)) => match pool.resume(token) {
            Ok(session) => session,
            Err(_) => unusable(&pool),
        },
        Some(Err(_)) => unusable(&pool),
    };
    let mut response = rwsplit::with_session(session.clone(), next.call(req)).await?;
    if let Ok(token) = session.token().await {
        if token.position().is_some() {
            if let Ok(value) = HeaderValue::from_str(&token.to_string()) {
                let name = HeaderName::from_static(TOKEN_HEADER);
                response.headers_mut().insert(name, value);
            }
        }
    }
    Ok(response)
}

/// A session for a request whose token cannot be used: reads at the primary's current
/// position, never older than anything the client may have written.
fn unusable(pool: &Pool) -> rwsplit::Session<Sqlite> {
    let session = pool.session();
    session.assume_written();
    session
}

async fn put_item(
    pool: web::Data<Pool>,
    id: web::Path<i64>,
    body: String,
) -> Result<HttpResponse, actix_web::Error> {
    let fail = actix_web::error::ErrorInternalServerError;
    sqlx::query(
        "INSERT INTO items (id, v) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET v = excluded.v",
    )
    .bind(*id)
    .bind(body)
    .execute(pool.get_ref())
    .await
    .map_err(fail)?;
    Ok(HttpResponse::Created().finish())
}

async fn get_item(
    pool: web::Data<Pool>,
    id: web::Path<i64>,
) -> Result<HttpResponse, actix_web::Error> {
    let value: Option<String> = sqlx::query_scalar("SELECT v FROM items WHERE id = ?")
        .bind(*id)
        .fetch_optional(pool.get_ref())
        .await
        .map_err(actix_web::error::ErrorInternalServerError)?;
    Ok(match value {
        Some(v) => HttpResponse::Ok().body(v),
        None => HttpResponse::NotFound().finish(),
    })
}

/// One request on its own connection; the status and the body.
async fn request(
    addr: std::net::SocketAddr,
    head: &str,
    header: &str,
    body: &str,
) -> std::io::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let text = format!(
        "{head} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{header}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(text.as_bytes()).await?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await?;
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = raw
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    Ok((status, body))
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let self_test = std::env::args().any(|a| a == "--self-test");
    let dir = std::env::temp_dir().join(format!("rwsplit-actix-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let pool = rwsplit::sqlite::open(dir.join("items.db"), 2)
        .await?
        .build()?;
    sqlx::query("CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
        .execute(&pool)
        .await?;
    let data = web::Data::new(pool.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .wrap(from_fn(causal_session))
            .route("/items/{id}", web::post().to(put_item))
            .route("/items/{id}", web::get().to(get_item))
    })
    .workers(1)
    .bind(if self_test {
        "127.0.0.1:0"
    } else {
        "127.0.0.1:8081"
    })?;
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    if !self_test {
        eprintln!("listening on http://{addr}");
        server.await?;
        return Ok(());
    }
    let running = actix_web::rt::spawn(server);
    let put = request(addr, "POST /items/1", "", "hello").await?;
    let get = request(addr, "GET /items/1", "", "").await?;
    let bad_token = format!("{TOKEN_HEADER}: not-a-token\r\n");
    let bad = request(addr, "GET /items/1", &bad_token, "").await?;
    handle.stop(true).await;
    let _ = running.await;
    pool.close().await;
    std::fs::remove_dir_all(&dir)?;
    if put.0 != 201 || get != (200, "hello".to_string()) || bad != (200, "hello".to_string()) {
        return Err(format!("self-test failed: {put:?} {get:?} {bad:?}").into());
    }
    println!("OK");
    Ok(())
}
