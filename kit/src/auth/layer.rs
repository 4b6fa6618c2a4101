//! The tower layer that checks every call before it reaches a route, so no handler can forget
//! it; the caller goes to the call in the request's extensions.

use super::Policy;
use crate::token_file::TokenStore;
use futures::future::{Either, Ready, ready};
use std::sync::Arc;
use std::task::{Context, Poll};
use tonic::body::Body;

/// The tower layer that checks every call against the tokens and the server's [`Policy`]
/// before it reaches a route.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    tokens: Arc<TokenStore>,
    policy: Policy,
}

impl AuthLayer {
    pub fn new(tokens: Arc<TokenStore>, policy: Policy) -> Self {
        Self { tokens, policy }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = Authenticated<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticated { inner, tokens: Arc::clone(&self.tokens), policy: self.policy }
    }
}

/// A service behind [`AuthLayer`].
#[derive(Debug, Clone)]
pub struct Authenticated<S> {
    inner: S,
    tokens: Arc<TokenStore>,
    policy: Policy,
}

impl<S, B> tower::Service<http::Request<B>> for Authenticated<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Either<S::Future, Ready<Result<S::Response, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let authorization = request.headers().get(http::header::AUTHORIZATION).map(http::HeaderValue::as_bytes);
        let tokens = self.tokens.get(); // the tokens in force now (the file is re-read on SIGHUP)
        match tokens.authorize(&self.policy, request.uri().path(), authorization) {
            Ok(caller) => {
                if let Some(caller) = caller.cloned() {
                    tracing::trace!(caller = %caller.name, path = request.uri().path(), "authorized");
                    request.extensions_mut().insert(caller);
                }
                Either::Left(self.inner.call(request))
            }
            Err(status) => {
                tracing::debug!(path = request.uri().path(), code = ?status.code(), "call refused");
                Either::Right(ready(Ok(status.into_http())))
            }
        }
    }
}
