//! Read-your-writes across HTTP requests with axum and `rwsplit::SessionLayer` (feature
//! `tower`): the layer restores the caller's causal session from the `x-rwsplit-token` request
//! header (or the `rwsplit_token` cookie), runs the handler inside it, and returns the updated
//! token on the response (header and cookie). The handlers take the pool (`State`), not a
//! session. A client that writes in one request and reads in the next, sending the token back,
//! always sees its write, even when the read runs on a lagging replica: the read waits for that
//! replica to reach the session's position, or goes to the primary. SQLite has no replication
//! position (its readers see every commit at once), so there the responses carry no token.
//!
//! ```text
//! cargo run -p rwsplit-tools --example axum_session                       # SQLite, http://127.0.0.1:8080
//! curl -si -X POST --data 'hello' http://127.0.0.1:8080/items/1    # note x-rwsplit-token
//! curl -si -H "x-rwsplit-token: <token>" http://127.0.0.1:8080/items/1
//!
//! eval "$(scripts/mariadb.sh start --replicas 1)"
//! cargo run -p rwsplit-tools --example axum_session --features mysql -- --mysql
//!
//! cargo run -p rwsplit-tools --example axum_session -- --self-test        # both requests in-process; prints OK
//! ```
//!
//! Options: `--listen ADDR` (default `127.0.0.1:8080`), `--mysql` (use `RWSPLIT_MYSQL_PRIMARY`
//! and `RWSPLIT_MYSQL_REPLICA_1`, feature `mysql`), `--self-test` (serve on a free port, run a
//! write and a read through plain HTTP/1.1, check the read returns the write and the token
//! round-trips, print `OK`, exit).
//!
//! Routes: `POST /items/{id}` stores the request body as the item's value; `GET /items/{id}`
//! returns it (404 if there is none). The layer never lets an unusable token (malformed, forged,
//! from another cluster) cause a stale read; this application also answers such a request with
//! a 400 (a small middleware over the layer's `RejectedToken` extension).

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The request and response header carrying the causal token.
const TOKEN_HEADER: &str = "x-rwsplit-token";
/// The cookie carrying the same token, for browsers.
const TOKEN_COOKIE: &str = "rwsplit_token";

struct Args {
    listen: SocketAddr,
    mysql: bool,
    self_test: bool,
}

fn usage() -> ! {
    eprintln!("usage: cargo run -p rwsplit-tools --example axum_session -- [--listen ADDR] [--mysql] [--self-test]");
    std::process::exit(2)
}

fn args() -> Args {
    let mut args = Args {
        listen: "127.0.0.1:8080".parse().unwrap(),
        mysql: false,
        self_test: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--listen" => {
                args.listen = it
                    .next()
                    .and_then(|a| a.parse().ok())
                    .unwrap_or_else(|| usage())
            }
            "--mysql" => args.mysql = true,
            "--self-test" => args.self_test = true,
            _ => usage(),
        }
    }
    args
}

/// The application for one backend: the two handlers over `$db`, behind `SessionLayer`.
macro_rules! app {
    ($db:ty) => {{
        type Pool = rwsplit::RoutingPool<$db>;

        /// Answers 400 when the layer could not use the request's token (by default the
        /// request would run, reading at the primary's current position).
        async fn refuse_unusable_tokens(request: Request, next: Next) -> Response {
            if let Some(rejected) = request.extensions().get::<rwsplit::RejectedToken>() {
                eprintln!("refused a request: {}", rejected.0);
                let text = format!("{TOKEN_HEADER}: not a token of this service\n");
                return (StatusCode::BAD_REQUEST, text).into_response();
            }
            next.run(request).await
        }

        async fn put_item(
            State(pool): State<Pool>,
            Path(id): Path<i64>,
            value: String,
        ) -> Result<StatusCode, (StatusCode, String)> {
            let fail = |e: sqlx::Error| (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n"));
            // Inside the layer's session, a transaction begun on the pool counts as its write.
            let mut tx = pool.begin().await.map_err(fail)?;
            sqlx::query("DELETE FROM items WHERE id = ?")
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(fail)?;
            sqlx::query("INSERT INTO items (id, v) VALUES (?, ?)")
                .bind(id)
                .bind(&value)
                .execute(&mut *tx)
                .await
                .map_err(fail)?;
            tx.commit().await.map_err(fail)?;
            Ok(StatusCode::CREATED)
        }

        async fn get_item(
            State(pool): State<Pool>,
            Path(id): Path<i64>,
        ) -> Result<String, (StatusCode, String)> {
            // Through the pool, inside the request's session: a replica at or past the
            // session's writes, or the primary.
            let value: Option<String> = sqlx::query_scalar("SELECT v FROM items WHERE id = ?")
                .bind(id)
                .fetch_optional(&pool)
                .await
                .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")))?;
            value.ok_or((StatusCode::NOT_FOUND, format!("no item {id}\n")))
        }

        |pool: Pool| -> Router {
            Router::new()
                .route("/items/{id}", axum::routing::post(put_item).get(get_item))
                .layer(axum::middleware::from_fn(refuse_unusable_tokens))
                .layer(rwsplit::SessionLayer::new(pool.clone()).cookie(TOKEN_COOKIE))
                .with_state(pool)
        }
    }};
}

const CREATE_ITEMS: &str =
    "CREATE TABLE IF NOT EXISTS items (id BIGINT PRIMARY KEY, v VARCHAR(200) NOT NULL)";

async fn sqlite_router() -> Result<(Router, impl std::future::Future<Output = ()>), BoxError> {
    let dir = std::env::temp_dir().join(format!("rwsplit-axum-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let pool = rwsplit::sqlite::open(dir.join("items.db"), 4)
        .await?
        .build()?;
    sqlx::query(CREATE_ITEMS)
        .execute(pool.primary_pool())
        .await?;
    eprintln!("SQLite at {}", dir.join("items.db").display());
    let router = app!(sqlx::Sqlite)(pool.clone());
    let cleanup = async move {
        pool.close().await;
        std::fs::remove_dir_all(&dir).ok();
    };
    Ok((router, cleanup))
}

#[cfg(feature = "mysql")]
async fn mysql_router() -> Result<(Router, impl std::future::Future<Output = ()>), BoxError> {
    use sqlx::mysql::MySqlPoolOptions;
    let var = |name: &str| {
        std::env::var(name).map_err(|_| format!("--mysql needs {name} (scripts/mariadb.sh env)"))
    };
    let connect = |url: &str| {
        MySqlPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy(url)
    };
    let pool = rwsplit::RoutingPool::builder(connect(&var("RWSPLIT_MYSQL_PRIMARY")?)?)
        .replica("replica1", connect(&var("RWSPLIT_MYSQL_REPLICA_1")?)?)
        .build()?;
    sqlx::query(CREATE_ITEMS)
        .execute(pool.primary_pool())
        .await?;
    // The monitor tells MariaDB from MySQL, which picks the position functions.
    for _ in 0..50 {
        if pool.status().primary.probes > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("{} primary + replica1", pool.system_name());
    let router = app!(sqlx::MySql)(pool.clone());
    Ok((router, async move { pool.close().await }))
}

// ------------------------------------------------------------------------------------------
// --self-test: a minimal HTTP/1.1 client over a TCP stream

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One request on its own connection (`Connection: close`), read to the end.
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    extra_headers: &[(&str, &str)],
    body: &str,
) -> Result<Reply, BoxError> {
    let mut stream = TcpStream::connect(addr).await?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: text/plain\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in extra_headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8(raw)?;
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no header end")?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or("bad status line")?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_string()
    };
    Ok(Reply {
        status,
        headers,
        body,
    })
}

fn dechunk(mut rest: &str) -> Result<String, BoxError> {
    let mut out = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").ok_or("bad chunk")?;
        let size = usize::from_str_radix(size.trim(), 16)?;
        if size == 0 {
            return Ok(out);
        }
        out.push_str(after.get(..size).ok_or("short chunk")?);
        rest = after.get(size + 2..).ok_or("short chunk")?;
    }
}

fn check(ok: bool, what: &str) -> Result<(), BoxError> {
    if ok {
        Ok(())
    } else {
        Err(format!("self-test failed: {what}").into())
    }
}

async fn self_test(addr: SocketAddr, replicated: bool) -> Result<(), BoxError> {
    let id = std::process::id();
    let value = format!("written-by-{id}");
    let path = format!("/items/{id}");

    // 1. Write, without a token: a new session. With replication the response carries the
    //    position of the write as a token (header and cookie); SQLite has no position.
    let put = request(addr, "POST", &path, &[], &value).await?;
    check(put.status == 201, &format!("POST status {}", put.status))?;
    let token = put.header(TOKEN_HEADER).map(str::to_string);
    check(
        token.is_some() == replicated,
        &format!("a token on the POST response iff replicated ({replicated}): {token:?}"),
    )?;
    if let Some(token) = &token {
        check(
            put.header("set-cookie")
                .is_some_and(|c| c.starts_with(&format!("{TOKEN_COOKIE}={token}"))),
            "the POST response sets the token cookie",
        )?;
    }
    eprintln!("POST {path} -> {} token {token:?}", put.status);

    // 2. Read in a second request, sending the token back: the write is visible.
    let sent: Vec<(&str, &str)> = token.iter().map(|t| (TOKEN_HEADER, t.as_str())).collect();
    let get = request(addr, "GET", &path, &sent, "").await?;
    check(get.status == 200, &format!("GET status {}", get.status))?;
    check(
        get.body == value,
        &format!("GET returned {:?}, wrote {value:?}", get.body),
    )?;
    // A read does not move the session: no new token (the client keeps its own).
    check(
        get.header(TOKEN_HEADER).is_none(),
        &format!(
            "a read leaves the token alone: got {:?}",
            get.header(TOKEN_HEADER)
        ),
    )?;
    eprintln!("GET {path} -> {} {:?}", get.status, get.body);

    // 3. The cookie works like the header.
    if let Some(token) = &token {
        let cookie = format!("{TOKEN_COOKIE}={token}");
        let by_cookie = request(addr, "GET", &path, &[("Cookie", &cookie)], "").await?;
        check(
            by_cookie.status == 200 && by_cookie.body == value,
            "GET with the cookie",
        )?;
    }

    // 4. A malformed token is refused, not ignored.
    let bad = request(addr, "GET", &path, &[(TOKEN_HEADER, "not-a-token!")], "").await?;
    check(
        bad.status == 400,
        &format!("malformed token status {}", bad.status),
    )?;

    // 5. A missing item is a 404.
    let missing = request(addr, "GET", "/items/0", &sent, "").await?;
    check(
        missing.status == 404,
        &format!("missing item status {}", missing.status),
    )?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = args();
    let (router, cleanup) = if args.mysql {
        #[cfg(feature = "mysql")]
        {
            let (router, cleanup) = mysql_router().await?;
            (
                router,
                Box::pin(cleanup) as std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>,
            )
        }
        #[cfg(not(feature = "mysql"))]
        {
            return Err("--mysql needs the `mysql` feature".into());
        }
    } else {
        let (router, cleanup) = sqlite_router().await?;
        (
            router,
            Box::pin(cleanup) as std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>,
        )
    };

    let listen = if args.self_test {
        "127.0.0.1:0".parse()?
    } else {
        args.listen
    };
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    eprintln!("listening on http://{addr}");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                stopped.await.ok();
            })
            .await
    });

    let result = if args.self_test {
        match tokio::time::timeout(Duration::from_secs(30), self_test(addr, args.mysql)).await {
            Ok(r) => r,
            Err(_) => Err("self-test timed out".into()),
        }
    } else {
        tokio::signal::ctrl_c().await?;
        Ok(())
    };

    stop.send(()).ok();
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    cleanup.await;
    result?;
    if args.self_test {
        println!("OK");
    }
    Ok(())
}
