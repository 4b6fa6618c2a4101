//! The tower layer that checks every call before it reaches a route, so no handler can forget
//! it; the caller goes to the call in the request's extensions.

use super::jwt::{JwtVerifier, looks_like_jwt};
use super::{Policy, tokens::bearer};
use crate::token_file::TokenStore;
use futures::future::{BoxFuture, Either, Ready, ready};
use std::sync::Arc;
use std::task::{Context, Poll};
use tonic::body::Body;

/// Where callers' credentials are checked: the token file's tokens, and JWTs when an identity
/// provider's key set is configured.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub tokens: Arc<TokenStore>,
    pub jwt: Option<Arc<JwtVerifier>>,
}

/// The tower layer that checks every call against the credentials and the server's [`Policy`]
/// before it reaches a route.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    credentials: Credentials,
    policy: Policy,
}

impl AuthLayer {
    pub fn new(credentials: Credentials, policy: Policy) -> Self {
        Self { credentials, policy }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = Authenticated<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticated { inner, credentials: self.credentials.clone(), policy: self.policy }
    }
}

/// A service behind [`AuthLayer`].
#[derive(Debug, Clone)]
pub struct Authenticated<S> {
    inner: S,
    credentials: Credentials,
    policy: Policy,
}

type Refused<R, E> = Ready<Result<R, E>>;

impl<S, B> tower::Service<http::Request<B>> for Authenticated<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future =
        Either<S::Future, Either<Refused<S::Response, S::Error>, BoxFuture<'static, Result<S::Response, S::Error>>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let refuse = |path: &str, status| Either::Right(Either::Left(ready(Ok(refusal(path, status)))));
        let path = request.uri().path().to_owned();
        let Some(needed) = self.policy.required_scopes(&path) else { return Either::Left(self.inner.call(request)) };
        let authorization = request.headers().get(http::header::AUTHORIZATION).map(http::HeaderValue::as_bytes);
        let token = match bearer(authorization) {
            Ok(token) => token.to_owned(),
            Err(status) => return refuse(&path, status),
        };
        if let Some(jwt) = self.credentials.jwt.clone().filter(|_| looks_like_jwt(&token)) {
            // The key set may have to be read first: check asynchronously, with the service
            // that was polled ready (a clone takes its place).
            let clone = self.inner.clone();
            let mut inner = std::mem::replace(&mut self.inner, clone);
            return Either::Right(Either::Right(Box::pin(async move {
                match jwt.verify(&token).await.and_then(|caller| caller.permit(needed, &path).map(|()| caller)) {
                    Ok(caller) => {
                        tracing::trace!(caller = %caller.name, path, "authorized");
                        request.extensions_mut().insert(caller);
                        inner.call(request).await
                    }
                    Err(status) => Ok(refusal(&path, status)),
                }
            })));
        }
        let tokens = self.credentials.tokens.get(); // the tokens in force now (the file is re-read on SIGHUP)
        match tokens.lookup(&token).and_then(|caller| caller.permit(needed, &path).map(|()| caller)) {
            Ok(caller) => {
                tracing::trace!(caller = %caller.name, path, "authorized");
                request.extensions_mut().insert(caller.clone());
                Either::Left(self.inner.call(request))
            }
            Err(status) => refuse(&path, status),
        }
    }
}

fn refusal(path: &str, status: tonic::Status) -> http::Response<Body> {
    tracing::debug!(path, code = ?status.code(), "call refused");
    status.into_http()
}
