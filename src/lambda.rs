//! The consumer's Lambda runtime: `lambda_runtime`'s own loop, with each invocation's body
//! handed to the handler as the runtime read it, so that the payload is held once and parsed
//! in place.
//!
//! `lambda_runtime::run` deserializes every body into a `LambdaEvent<T>` with `T` owned, so a
//! borrowing parser gets at best a `Box<RawValue>`: a second copy of the payload, 11.4 MB for
//! a 10,000-record event (issue 19). Here a layer in front of the runtime's own services takes
//! the body out of the [`LambdaInvocation`], leaves `null` for their deserializer (a
//! `LambdaEvent<()>`), and lends the body to the handler through a task-local scoped to that
//! invocation's future. Everything else is the runtime's, unchanged: the deadline and request
//! id in the [`Context`], the X-Ray trace header (`_X_AMZN_TRACE_ID` and the request span),
//! panics caught, and the response or the error posted as Lambda expects.

use std::task::{Context as TaskContext, Poll};

use bytes::Bytes;
use lambda_runtime::tower::Layer;
use lambda_runtime::{
    Context, Error, LambdaEvent, LambdaInvocation, Runtime, Service, layers::TracingLayer, service_fn,
};
use serde::Serialize;
use tokio::task::futures::TaskLocalFuture;

tokio::task_local! {
    /// The body of the invocation whose future is being polled.
    static BODY: Bytes;
}

/// Serves Lambda invocations until the runtime fails: `handler` gets each invocation's body,
/// borrowed from the one buffer the runtime read it into, and its context. Its `Ok` is the
/// response; its `Err` is posted as the invocation's error, whose message is the error's.
///
/// A body that is not UTF-8 is an invocation error without calling `handler`.
pub async fn run<R: Serialize>(handler: impl AsyncFn(&str, Context) -> Result<R, Error>) -> Result<(), Error> {
    let handler = &handler;
    let service = service_fn(move |event: LambdaEvent<()>| async move {
        let body = BODY.try_with(Bytes::clone).map_err(|_| BodyError::NotLent)?;
        let payload = std::str::from_utf8(&body).map_err(BodyError::NotUtf8)?;
        handler(payload, event.context).await
    });
    // A layer added later sees the invocation first: the request span, then the body taken.
    Runtime::new(service).layer(TakeBodyLayer).layer(TracingLayer::new()).run().await
}

/// Why an invocation's body never reached the handler.
#[derive(Debug, thiserror::Error)]
enum BodyError {
    /// Lambda sends JSON, which is UTF-8; anything else is refused whole.
    #[error("the invocation payload is not UTF-8 (from byte {})", .0.valid_up_to())]
    NotUtf8(#[source] std::str::Utf8Error),
    /// The handler ran outside [`TakeBody`]'s future: a bug in this module.
    #[error("the invocation body was not lent to its handler")]
    NotLent,
}

/// Takes the body out of each invocation before the runtime's services deserialize it.
struct TakeBodyLayer;

impl<S> Layer<S> for TakeBodyLayer {
    type Service = TakeBody<S>;

    fn layer(&self, inner: S) -> TakeBody<S> {
        TakeBody(inner)
    }
}

/// [`TakeBodyLayer`]'s service.
struct TakeBody<S>(S);

impl<S: Service<LambdaInvocation, Response = (), Error = Error>> Service<LambdaInvocation> for TakeBody<S> {
    type Response = ();
    type Error = Error;
    type Future = TaskLocalFuture<Bytes, S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut invocation: LambdaInvocation) -> Self::Future {
        // `null` is what a `LambdaEvent<()>` reads; the body itself goes to the handler.
        let body = std::mem::replace(&mut invocation.body, Bytes::from_static(b"null"));
        BODY.scope(body, self.0.call(invocation))
    }
}
