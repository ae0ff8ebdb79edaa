//! Read-your-writes across HTTP requests for any tower stack (axum, tonic, hyper, ...):
//! [`SessionLayer`] (feature `tower`).
//!
//! Per request, the layer resumes the caller's causal [`Session`] from the token the request
//! carries (the `x-rwsplit-token` header by default, and a cookie when one is configured), runs
//! the inner service inside [`crate::with_session`] so that every statement the handler runs
//! through `&pool` is causal, and returns the session's latest token on the response (the same
//! header, and `Set-Cookie`). Handlers and the code they call stay as they are: they take
//! `&RoutingPool` (or `State<RoutingPool<_>>`), never a session. The session is also a request
//! extension, for a handler that wants it explicitly.
//!
//! What each request costs: reading the token (a base64 decode, and an HMAC check with a
//! `token_key`), one allocation for the session, a task-local scope, and on the way out
//! encoding the token. A request that wrote pays one position capture on the primary (the
//! same round trip a [`Session`] always pays), not more. `scripts/bench.sh` measures the layer
//! (`cargo bench -p rwsplit-tools --bench layer`).
//!
//! A token that cannot be used (malformed, forged, or from another cluster, for example after a
//! migration) is never a silent stale read and never an error for the client: the request runs
//! in a fresh session that counts as having written ([`Session::assume_written`]), so its
//! reads see everything committed before it, at the price of one position capture. The
//! request also carries a [`RejectedToken`] extension (a handler may turn it into a 400), and a
//! `DEBUG` event says why.
//!
//! A response carries a token only when the request moved the session's position (it wrote,
//! merged tokens, or could not use its own), so a slow read that ends after a write's response
//! never puts an older token back in the client's cookie. Header clients keep the last token
//! they received. If the position of a request's writes cannot be captured (the primary does
//! not answer), the response carries [`UNKNOWN_POSITION`], which makes the next request read at
//! the primary's current position.
//!
//! Limits: the token is taken when the inner service has produced the response head (writes
//! made while a streaming body is sent are not in it), and an error the inner service returns
//! (rather than an error response) passes through without a token, so put the layer inside
//! error-handling layers such as timeouts. One layer per pool: with two pools, give each layer
//! its own header and cookie names.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{HeaderName, HeaderValue, COOKIE, SET_COOKIE};
use http::{Request, Response};

use crate::backend::Backend;
use crate::consistency::{with_session, Session};
use crate::error::Error;
use crate::position::CausalToken;
use crate::router::RoutingPool;

/// The header that carries the causal token, on requests and responses, by default.
pub const TOKEN_HEADER: &str = "x-rwsplit-token";

/// A `tower::Layer` giving every request a causal [`Session`] resumed from its token; see the
/// [module docs](self).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use tower_layer::Layer;
/// use tower_service::Service;
///
/// # let dir = std::env::temp_dir().join(format!("rwsplit-doc-layer-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// let pool = rwsplit::sqlite::open(dir.join("layer.db"), 1).await?.build()?;
/// sqlx::query("CREATE TABLE t (v INTEGER)").execute(&pool).await?;
///
/// // With axum: `Router::new().route(..).with_state(pool.clone()).layer(SessionLayer::new(pool))`.
/// // Any `Service<http::Request<B>, Response = http::Response<B2>>` works; a hand-made one here.
/// let handler_pool = pool.clone();
/// let handler = move |_req: http::Request<()>| {
///     let pool = handler_pool.clone();
///     async move {
///         // Unchanged handler code: `&pool`, no session in sight.
///         sqlx::query("INSERT INTO t VALUES (1)").execute(&pool).await?;
///         Ok::<_, sqlx::Error>(http::Response::new(()))
///     }
/// };
/// let mut service = rwsplit::SessionLayer::new(pool.clone())
///     .cookie("rwsplit_token")
///     .layer(ServiceFn(handler));
/// let response = service.call(http::Request::new(())).await?;
/// // With replicas (MySQL, PostgreSQL), the response carries the session's token in the
/// // `x-rwsplit-token` header and the cookie; the next request sends it back and reads its own
/// // write. SQLite's readers see every commit at once: no position, no token to carry.
/// assert!(response.status().is_success());
/// let n: i64 = sqlx::query_scalar("SELECT count(*) FROM t").fetch_one(&pool).await?;
/// assert_eq!(n, 1);
/// # pool.close().await;
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(())
/// # }
/// # #[derive(Clone)]
/// # struct ServiceFn<F>(F);
/// # impl<F, Fut, Req, Res, E> tower_service::Service<Req> for ServiceFn<F>
/// # where F: FnMut(Req) -> Fut, Fut: std::future::Future<Output = Result<Res, E>> {
/// #     type Response = Res;
/// #     type Error = E;
/// #     type Future = Fut;
/// #     fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), E>> {
/// #         std::task::Poll::Ready(Ok(()))
/// #     }
/// #     fn call(&mut self, req: Req) -> Fut { (self.0)(req) }
/// # }
/// ```
pub struct SessionLayer<DB: Backend> {
    pool: RoutingPool<DB>,
    config: Arc<Config>,
}

#[derive(Debug, Clone)]
struct Config {
    header: HeaderName,
    /// The cookie's name, when the token also travels in a cookie.
    cookie: Option<String>,
    /// The attributes of the cookie set on responses.
    attributes: String,
}

impl<DB: Backend> Clone for SessionLayer<DB> {
    fn clone(&self) -> Self {
        SessionLayer {
            pool: self.pool.clone(),
            config: self.config.clone(),
        }
    }
}

impl<DB: Backend> std::fmt::Debug for SessionLayer<DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionLayer")
            .field("header", &self.config.header)
            .field("cookie", &self.config.cookie)
            .finish()
    }
}

impl<DB: Backend> SessionLayer<DB> {
    /// A layer for `pool`'s sessions, with the token in the `x-rwsplit-token` header and no
    /// cookie.
    ///
    /// Warns (a `WARN` event) when the pool has no `token_key`: unsigned tokens can be edited
    /// by clients, and a client that moves its position far ahead makes each of its reads wait
    /// `causal_wait_timeout` on a replica connection before going to the primary. And when the
    /// pool uses `causal_window`: that mode keeps no position, so nothing carries a request's
    /// writes to the next request.
    pub fn new(pool: RoutingPool<DB>) -> Self {
        let options = pool.options();
        if options.token_key.is_none() {
            tracing::warn!(
                target: "rwsplit",
                "SessionLayer over a pool without token_key: clients can edit their tokens; set PoolOptions::token_key"
            );
        }
        if options.causal_window.is_some() {
            tracing::warn!(
                target: "rwsplit",
                "SessionLayer over a pool with causal_window: no position is kept, so no token carries a request's writes to the next request"
            );
        }
        SessionLayer {
            pool,
            config: Arc::new(Config {
                header: HeaderName::from_static(TOKEN_HEADER),
                cookie: None,
                attributes: "Path=/; HttpOnly; SameSite=Lax".to_string(),
            }),
        }
    }

    /// Carries the token in this header instead (on requests and responses). Give each
    /// layer its own header (and cookie) when several pools each have a layer.
    pub fn header(mut self, name: HeaderName) -> Self {
        Arc::make_mut(&mut self.config).header = name;
        self
    }

    /// Also reads the token from this cookie and sets it on responses, with the attributes
    /// `Path=/; HttpOnly; SameSite=Lax` (see [`SessionLayer::cookie_attributes`]). For
    /// browsers; the header stays in use for API clients. A request carrying both resumes the
    /// newer position of the two. The name must be a cookie name (letters, digits, `-`, `_`,
    /// `.`); another name is ignored with a `WARN` event.
    pub fn cookie(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if valid {
            Arc::make_mut(&mut self.config).cookie = Some(name);
        } else {
            tracing::warn!(target: "rwsplit", cookie = %name.escape_debug(), "not a cookie name: the token is not put in a cookie");
        }
        self
    }

    /// The attributes of the cookie set on responses (default `Path=/; HttpOnly;
    /// SameSite=Lax`; for example `"Path=/; HttpOnly; Secure; SameSite=Strict"`), in either
    /// order with [`SessionLayer::cookie`].
    pub fn cookie_attributes(mut self, attributes: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.config).attributes = attributes.into();
        self
    }
}

impl<S, DB: Backend> tower_layer::Layer<S> for SessionLayer<DB> {
    type Service = SessionService<S, DB>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            pool: self.pool.clone(),
            config: self.config.clone(),
        }
    }
}

/// The service [`SessionLayer`] wraps around an inner service.
pub struct SessionService<S, DB: Backend> {
    inner: S,
    pool: RoutingPool<DB>,
    config: Arc<Config>,
}

impl<S: Clone, DB: Backend> Clone for SessionService<S, DB> {
    fn clone(&self) -> Self {
        SessionService {
            inner: self.inner.clone(),
            pool: self.pool.clone(),
            config: self.config.clone(),
        }
    }
}

impl<S, DB: Backend> std::fmt::Debug for SessionService<S, DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionService")
            .field("header", &self.config.header)
            .finish_non_exhaustive()
    }
}

/// A request extension set when the request's token could not be used (malformed, forged,
/// or from another cluster). The request still ran, safely: in a fresh session that counted as
/// having written, so its reads saw everything committed before it. A handler that prefers to
/// refuse such requests can answer 400 when it sees this.
#[derive(Debug, Clone)]
pub struct RejectedToken(pub Arc<Error>);

impl<S, DB, ReqBody, ResBody> tower_service::Service<Request<ReqBody>> for SessionService<S, DB>
where
    DB: Backend,
    S: tower_service::Service<Request<ReqBody>, Response = Response<ResBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ResBody>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        // The clone is not ready yet; the instance polled ready serves this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let pool = self.pool.clone();
        let config = self.config.clone();
        Box::pin(async move {
            // A PostgreSQL pool learns its cluster from the primary (once): checking a token
            // needs it. If the primary cannot tell now, the session checks it before use.
            let texts = tokens(&config, &req);
            if pool.cluster_id().is_none() && !texts.is_empty() {
                let _ = pool.cluster().await;
            }
            let (session, rejected) = resume(&pool, &texts);
            // A token that was resumed as it is need not be sent back.
            let before = if rejected.is_none() && texts.len() == 1 {
                session.position()
            } else {
                None
            };
            if let Some(e) = rejected {
                tracing::debug!(
                    target: "rwsplit",
                    error = %e,
                    "the request's causal token is unusable: the request reads at the primary's current position"
                );
                req.extensions_mut().insert(RejectedToken(Arc::new(e)));
            }
            req.extensions_mut().insert(session.clone());
            let scope = session.clone();
            let mut response = with_session(scope, async move { inner.call(req).await }).await?;
            respond(&session, before, &config, &mut response).await;
            Ok(response)
        })
    }
}

/// The value a response carries instead of a token when the position of the request's writes
/// could not be captured (the primary did not answer): a request that sends it back reads at
/// the primary's current position, as with an unusable token, without being flagged.
pub const UNKNOWN_POSITION: &str = "unknown";

/// What the request carried: token texts (header values and cookie values; empty ones are
/// absent).
fn tokens<'r, B>(config: &Config, req: &'r Request<B>) -> Vec<&'r [u8]> {
    let mut found: Vec<&[u8]> = req
        .headers()
        .get_all(&config.header)
        .iter()
        .map(|v| v.as_bytes().trim_ascii())
        .filter(|v| !v.is_empty())
        .collect();
    if let Some(name) = &config.cookie {
        // Byte-wise: other cookies may hold any byte; only ours must be a token.
        for header in req.headers().get_all(COOKIE) {
            for pair in header.as_bytes().split(|b| *b == b';') {
                let pair = pair.trim_ascii();
                let Some(eq) = pair.iter().position(|b| *b == b'=') else {
                    continue;
                };
                let (key, value) = (&pair[..eq], &pair[eq + 1..]);
                if key == name.as_bytes() {
                    let value = value.strip_prefix(b"\"").unwrap_or(value);
                    let value = value.strip_suffix(b"\"").unwrap_or(value);
                    if !value.is_empty() {
                        found.push(value);
                    }
                }
            }
        }
    }
    found
}

/// The request's session: resumed from its token(s), or fresh. With an unusable token, a fresh
/// session that counts as having written, and the reason; with [`UNKNOWN_POSITION`], the same
/// without a reason.
fn resume<DB: Backend>(pool: &RoutingPool<DB>, texts: &[&[u8]]) -> (Session<DB>, Option<Error>) {
    let session = pool.session();
    let mut rejected = None;
    let mut unknown = false;
    for &text in texts {
        if text == UNKNOWN_POSITION.as_bytes() {
            unknown = true;
            continue;
        }
        let usable = std::str::from_utf8(text)
            .map_err(|_| Error::MalformedToken("not ASCII"))
            .and_then(|t| t.parse::<CausalToken>())
            .and_then(|token| session.merge(&token));
        if let Err(e) = usable {
            rejected = Some(e);
        }
    }
    if unknown || rejected.is_some() {
        session.assume_written();
    }
    (session, rejected)
}

/// Sets the session's token on the response when the request moved the session's position
/// (it wrote, or it merged tokens, or its own could not be used): a response to a request that
/// only read leaves the client's token alone, so a slow read that ends after a write's
/// response cannot put the older token back in the cookie. When the position of the request's
/// writes cannot be captured (the primary did not answer), the response carries
/// [`UNKNOWN_POSITION`] instead, so the next request reads at the primary's then-current
/// position rather than at the client's older token; a `WARN` event says why.
async fn respond<DB: Backend, B>(
    session: &Session<DB>,
    before: Option<crate::position::Position>,
    config: &Config,
    response: &mut Response<B>,
) {
    let value = match session.token().await {
        Ok(token) if token.position().is_some() && token.position() != before.as_ref() => {
            token.to_string()
        }
        Ok(_) => return,
        Err(e) => {
            tracing::warn!(target: "rwsplit", error = %e, "no causal token for the response: it carries `unknown`");
            UNKNOWN_POSITION.to_string()
        }
    };
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&value) {
        headers.insert(config.header.clone(), v);
    }
    if let Some(name) = &config.cookie {
        let set = format!("{name}={value}; {}", config.attributes);
        if let Ok(v) = HeaderValue::from_str(&set) {
            headers.append(SET_COOKIE, v);
        }
    }
}
