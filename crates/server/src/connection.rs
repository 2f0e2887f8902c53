//! Serving the sync listener's connections with hyper directly, instead of
//! `axum::serve`, so that no connection can hold the server: hyper closes one
//! whose request head does not arrive in time (which is also the keep-alive
//! idle timeout), a request body has a deadline, a response the client does not
//! read closes the connection, and the [`ConnectionRegistry`]
//! caps how many are open (making room by closing the oldest idle one, or
//! answering `503`). Stopping is graceful: the listener closes at once, open
//! connections finish the request in progress and close.

use std::convert::Infallible;
use std::error::Error as StdError;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tokio_io_timeout::TimeoutStream;
use tower_service::Service;

use crate::conn_limits::{Admitted, ConnectionLimits, ConnectionRegistry, RequestInProgress};
use crate::shutdown::Shutdown;

/// How long a connection asked to close (to make room, or because the server
/// stops) without a request in progress may take to flush and close by itself
/// before it is cut.
const CLOSE_GRACE: Duration = Duration::from_millis(100);
/// Most connections being answered `503` at once; beyond, they are closed
/// without an answer.
const MAX_REFUSING: usize = 64;
/// How long answering one refused connection may take.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause after a failed `accept` (a reset before accept, or no descriptors left).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(5);

type BoxError = Box<dyn StdError + Send + Sync>;

/// A request body that did not arrive within its deadline
/// ([`ConnectionLimits::body_read_timeout`]).
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub(crate) struct BodyReadTimeout;

/// Whether reading a body failed because it did not arrive in time.
pub(crate) fn is_body_timeout(err: &(dyn StdError + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if e.is::<BodyReadTimeout>() {
            return true;
        }
        next = e.source();
    }
    false
}

/// Accepts on `listener` until `stop` fires, serving each connection with
/// `app` under `limits` and the `registry`'s cap. Then it closes the listener
/// (dropping `closed` tells the supervisor the port is free), asks every
/// connection to close once its request in progress is answered, and returns
/// when all are closed. Aborting the returned future's task cuts them all.
pub(crate) async fn serve_listener(
    listener: TcpListener,
    closed: oneshot::Sender<()>,
    stop: oneshot::Receiver<()>,
    app: Router,
    registry: Arc<ConnectionRegistry>,
    limits: ConnectionLimits,
) {
    let builder = http1_builder(limits.header_read_timeout, true);
    let refusals = Arc::new(Semaphore::new(MAX_REFUSING));
    let close_all = Shutdown::default();
    let mut connections = JoinSet::new();
    let mut stop = pin!(stop);
    loop {
        while connections.try_join_next().is_some() {}
        let stream = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => {
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        if let Some(admitted) = registry.admit() {
            connections.spawn(serve_connection(
                stream,
                app.clone(),
                admitted,
                builder.clone(),
                limits,
                close_all.clone(),
            ));
        } else if let Ok(permit) = Arc::clone(&refusals).try_acquire_owned() {
            let header_read_timeout = limits.header_read_timeout;
            connections.spawn(async move {
                refuse(stream, header_read_timeout).await;
                drop(permit);
            });
        }
        // Else `stream` drops here: closed without an answer.
    }
    drop(listener);
    drop(closed);
    close_all.trigger();
    while connections.join_next().await.is_some() {}
}

/// HTTP/1.1 serving with hyper's header-read timeout (run by tokio's timer).
fn http1_builder(header_read_timeout: Duration, keep_alive: bool) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .keep_alive(keep_alive);
    builder
}

/// Serves one connection until the client closes it, hyper closes it (a head
/// that did not arrive in time, an error), or it is asked to close: by the
/// registry to make room, or because the listener stops.
async fn serve_connection(
    stream: TcpStream,
    app: Router,
    admitted: Admitted,
    builder: http1::Builder,
    limits: ConnectionLimits,
    close_all: Shutdown,
) {
    let slot = Arc::clone(admitted.slot());
    let service = {
        let slot = Arc::clone(&slot);
        service_fn(move |req: Request<Incoming>| {
            let in_progress = slot.begin_request();
            let req = req.map(|body| Body::new(TimedBody::new(body, limits)));
            let mut app = app.clone();
            async move {
                let Ok(response) = app.call(req).await;
                Ok::<_, Infallible>(response.map(|body| CountedBody {
                    inner: body,
                    _in_progress: in_progress,
                }))
            }
        })
    };
    let mut io = Box::pin(TimeoutStream::new(stream));
    io.as_mut()
        .set_write_timeout_pinned(Some(limits.response_write_timeout));
    let mut conn = pin!(builder.serve_connection(TokioIo::new(io), service));
    let mut closing = false;
    let mut cut_off: Option<Pin<Box<Sleep>>> = None;
    loop {
        tokio::select! {
            _ = conn.as_mut() => break,
            () = close_all.wait(), if !closing => {}
            () = slot.evicted(), if !closing => {}
            () = async { cut_off.as_mut().expect("guarded").await }, if cut_off.is_some() => break,
        }
        // Asked to close: no new request; one in progress is answered first.
        closing = true;
        conn.as_mut().graceful_shutdown();
        if !slot.busy() {
            cut_off = Some(Box::pin(tokio::time::sleep(CLOSE_GRACE)));
        }
    }
    drop(admitted);
}

/// Answers a connection beyond the cap `503` with `Retry-After: 1` (after its
/// request head, so the client reads it as the answer) and closes it.
async fn refuse(stream: TcpStream, header_read_timeout: Duration) {
    let builder = http1_builder(header_read_timeout.min(REFUSAL_TIMEOUT), false);
    let service =
        service_fn(|_req: Request<Incoming>| async { Ok::<_, Infallible>(too_many_connections()) });
    let _ = tokio::time::timeout(
        REFUSAL_TIMEOUT,
        builder.serve_connection(TokioIo::new(stream), service),
    )
    .await;
}

fn too_many_connections() -> Response<Body> {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [
            (header::RETRY_AFTER, HeaderValue::from_static("1")),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            ),
        ],
        r#"{"error":"Too many open connections; try again shortly"}"#,
    )
        .into_response()
}

/// A response body that keeps its request counted as in progress until it is
/// written (hyper drops it then), so the connection is not closed to make room.
struct CountedBody {
    inner: Body,
    _in_progress: RequestInProgress,
}

impl http_body::Body for CountedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request body with a deadline: from the first time a handler reads it,
/// `body_read_timeout` plus one second per `body_min_bytes_per_sec` received.
/// Past it, reading fails with [`BodyReadTimeout`].
struct TimedBody<B> {
    inner: B,
    limits: ConnectionLimits,
    started: Option<Instant>,
    received: u64,
    timer: Option<Pin<Box<Sleep>>>,
    timed_out: bool,
}

impl<B> TimedBody<B> {
    fn new(inner: B, limits: ConnectionLimits) -> Self {
        Self {
            inner,
            limits,
            started: None,
            received: 0,
            timer: None,
            timed_out: false,
        }
    }

    fn deadline(&self, started: Instant) -> Instant {
        let rate = self.limits.body_min_bytes_per_sec;
        let earned = match rate {
            0 => Duration::ZERO,
            _ => Duration::from_millis(self.received.saturating_mul(1000) / rate),
        };
        let allowed = self.limits.body_read_timeout.saturating_add(earned);
        started
            .checked_add(allowed)
            .unwrap_or_else(|| started + Duration::from_secs(86_400 * 365))
    }
}

impl<B> http_body::Body for TimedBody<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.timed_out {
            return Poll::Ready(None);
        }
        let started = *this.started.get_or_insert_with(Instant::now);
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received = this.received.saturating_add(data.len() as u64);
                }
                return Poll::Ready(Some(Ok(frame)));
            }
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => {}
        }
        let deadline = this.deadline(started);
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        if timer.as_mut().poll(cx).is_ready() {
            this.timed_out = true;
            return Poll::Ready(Some(Err(Box::new(BodyReadTimeout))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.timed_out || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body whose bytes never come.
    struct Stalled;

    impl http_body::Body for Stalled {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            Poll::Pending
        }
    }

    #[tokio::test]
    async fn a_stalled_body_fails_with_a_timeout_that_survives_axum_s_wrapping() {
        let limits = ConnectionLimits {
            body_read_timeout: Duration::from_millis(50),
            ..ConnectionLimits::default()
        };
        let body = Body::new(TimedBody::new(Stalled, limits));
        let started = std::time::Instant::now();
        let err = tokio::time::timeout(Duration::from_secs(5), axum::body::to_bytes(body, 1 << 20))
            .await
            .expect("the deadline ends the read")
            .expect_err("a stalled body is an error");
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert!(is_body_timeout(&err), "{err:?}");
    }

    #[test]
    fn a_too_large_body_is_not_a_timeout() {
        let err = axum::Error::new(std::io::Error::other("length limit exceeded"));
        assert!(!is_body_timeout(&err));
    }
}
