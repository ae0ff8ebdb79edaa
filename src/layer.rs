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
//! `WARN` event says why.
//!
//! The token is taken when the inner service has produced the response head: writes made while
//! a streaming body is sent are not in it.

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
    cookie: Option<Cookie>,
}

#[derive(Debug, Clone)]
struct Cookie {
    name: String,
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
            .field("cookie", &self.config.cookie.as_ref().map(|c| &c.name))
            .finish()
    }
}

impl<DB: Backend> SessionLayer<DB> {
    /// A layer for `pool`'s sessions, with the token in the `x-rwsplit-token` header and no
    /// cookie.
    pub fn new(pool: RoutingPool<DB>) -> Self {
        SessionLayer {
            pool,
            config: Arc::new(Config {
                header: HeaderName::from_static(TOKEN_HEADER),
                cookie: None,
            }),
        }
    }

    /// Carries the token in this header instead (on requests and responses).
    pub fn header(mut self, name: HeaderName) -> Self {
        Arc::make_mut(&mut self.config).header = name;
        self
    }

    /// Also reads the token from this cookie and sets it on responses, with the attributes
    /// `Path=/; HttpOnly; SameSite=Lax` (see [`SessionLayer::cookie_attributes`]). For
    /// browsers; the header stays in use for API clients. A request carrying both resumes the
    /// newer position of the two.
    pub fn cookie(mut self, name: impl Into<String>) -> Self {
        let config = Arc::make_mut(&mut self.config);
        let attributes = match config.cookie.take() {
            Some(c) => c.attributes,
            None => "Path=/; HttpOnly; SameSite=Lax".to_string(),
        };
        config.cookie = Some(Cookie {
            name: name.into(),
            attributes,
        });
        self
    }

    /// The attributes of the cookie set on responses (for example
    /// `"Path=/; HttpOnly; Secure; SameSite=Strict"`); no effect without
    /// [`SessionLayer::cookie`].
    pub fn cookie_attributes(mut self, attributes: impl Into<String>) -> Self {
        if let Some(c) = &mut Arc::make_mut(&mut self.config).cookie {
            c.attributes = attributes.into();
        }
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
        let (session, rejected) = resume(&self.pool, &self.config, &req);
        if let Some(e) = rejected {
            tracing::warn!(
                target: "rwsplit",
                error = %e,
                "the request's causal token is unusable: the request reads at the primary's current position"
            );
            req.extensions_mut().insert(RejectedToken(Arc::new(e)));
        }
        req.extensions_mut().insert(session.clone());
        let config = self.config.clone();
        Box::pin(async move {
            let scope = session.clone();
            let mut response = with_session(scope, async move { inner.call(req).await }).await?;
            respond(&session, &config, &mut response).await;
            Ok(response)
        })
    }
}

/// The request's session: resumed from its token(s), or fresh. With an unusable token, a fresh
/// session that counts as having written, and the reason.
fn resume<DB: Backend, B>(
    pool: &RoutingPool<DB>,
    config: &Config,
    req: &Request<B>,
) -> (Session<DB>, Option<Error>) {
    let mut tokens = req
        .headers()
        .get_all(&config.header)
        .iter()
        .map(|v| v.to_str().unwrap_or("\u{0}"))
        .collect::<Vec<_>>();
    if let Some(cookie) = &config.cookie {
        for header in req.headers().get_all(COOKIE) {
            let Ok(header) = header.to_str() else {
                continue;
            };
            tokens.extend(header.split(';').filter_map(|pair| {
                let (name, value) = pair.trim().split_once('=')?;
                (name == cookie.name).then_some(value.trim_matches('"'))
            }));
        }
    }
    let session = pool.session();
    let mut rejected = None;
    for text in tokens {
        let usable = text
            .parse::<CausalToken>()
            .and_then(|token| session.merge(&token));
        if let Err(e) = usable {
            rejected = Some(e);
        }
    }
    if rejected.is_some() {
        session.assume_written();
    }
    (session, rejected)
}

/// Sets the session's token on the response: when the session has a position (it wrote, or
/// resumed a token that had one). A token that cannot be had (the primary is down when the
/// position of this request's writes is captured) leaves the response as it is, with a
/// `WARN` event: the client keeps its previous token.
async fn respond<DB: Backend, B>(
    session: &Session<DB>,
    config: &Config,
    response: &mut Response<B>,
) {
    let token = match session.token().await {
        Ok(token) if token.position().is_some() => token.to_string(),
        Ok(_) => return,
        Err(e) => {
            tracing::warn!(target: "rwsplit", error = %e, "no causal token for the response");
            return;
        }
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&token) {
        headers.insert(config.header.clone(), value);
    }
    if let Some(cookie) = &config.cookie {
        let set = format!("{}={token}; {}", cookie.name, cookie.attributes);
        if let Ok(value) = HeaderValue::from_str(&set) {
            headers.append(SET_COOKIE, value);
        }
    }
}
