//! Authentication: every RPC except health and reflection needs `authorization: Bearer <token>`,
//! and the token's scopes must cover the method. Tokens come from configuration
//! (`AUTH_TOKENS_FILE`) as SHA-256 digests, so the file holds no usable secret, or are JWTs
//! from an identity provider (`AUTH_JWKS_FILE` / `AUTH_JWKS_URL`, [`jwt`]). Missing, unknown,
//! expired or forged token: UNAUTHENTICATED; known token without the scope: PERMISSION_DENIED.
//!
//! Enforced by a tower layer in front of every route ([`AuthLayer`]), so no handler can forget it.
//!
//! `tokens`: the configured tokens (the file's format, bound tokens) and the check of one call;
//! `jwt`: JWTs verified against an identity provider's key set;
//! `layer`: the tower layer that runs the check in front of every route.

pub mod jwt;
mod layer;
#[cfg(feature = "test-support")]
pub mod test_issuer;
mod tokens;

pub use layer::{AuthLayer, Authenticated, Credentials};
pub use tokens::{Binding, Caller, TokenFileError, Tokens, bound_carrier, bound_customer, caller, digest};

/// The scopes a token can carry.
pub mod scope {
    /// PlaceOrder, CancelOrder.
    pub const ORDERS_WRITE: &str = "orders:write";
    /// GetOrder, ListOrders, WatchOrder, GetShipment, TrackShipment.
    pub const ORDERS_READ: &str = "orders:read";
    /// UpsertProduct, Restock.
    pub const INVENTORY_WRITE: &str = "inventory:write";
    /// GetStock, ListStock, ListLowStock.
    pub const INVENTORY_READ: &str = "inventory:read";
    /// Every FulfillmentService call (pick lists and confirmations).
    pub const WAREHOUSE: &str = "warehouse";
    /// Carrier pick-ups and scans (ConfirmPickup, RecordTrackingEvent, ConfirmDelivery),
    /// ListPickups, GetShipment, TrackShipment.
    pub const CARRIER: &str = "carrier";
    /// Managing webhooks (every WebhookService call).
    pub const WEBHOOKS: &str = "webhooks";
    /// Everything.
    pub const ALL: &str = "*";

    /// Every scope a token file may name.
    pub const KNOWN: [&str; 8] =
        [ORDERS_WRITE, ORDERS_READ, INVENTORY_WRITE, INVENTORY_READ, WAREHOUSE, CARRIER, WEBHOOKS, ALL];
}

/// Who may call what on one server, as the service's wiring declares it: health and
/// reflection anyone; a method of the API `api` (its full gRPC name) listed in `methods` a
/// token with one of its scopes; anything else, a method not listed included, only `*`: the
/// table denies by default (a test walks the descriptor set so that every RPC is listed,
/// `testing::assert_dedicated_scopes`).
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub api: &'static str,
    pub methods: &'static [(&'static str, &'static [&'static str])],
    /// The policies of the other APIs the same server serves.
    pub also: &'static [Policy],
}

impl Policy {
    /// What a call of `path` (`/package.Service/Method`) needs: nothing (health, reflection)
    /// or a token with any one of the scopes.
    pub fn required_scopes(&self, path: &str) -> Option<&'static [&'static str]> {
        let (service, method) = path.trim_start_matches('/').split_once('/').unwrap_or((path, ""));
        if matches!(
            service,
            "grpc.health.v1.Health"
                | "grpc.reflection.v1.ServerReflection"
                | "grpc.reflection.v1alpha.ServerReflection"
        ) {
            return None;
        }
        if service != self.api {
            return self
                .also
                .iter()
                .find(|p| p.api == service)
                .map_or(Some(&[scope::ALL]), |p| p.required_scopes(path));
        }
        Some(self.methods.iter().find(|(name, _)| *name == method).map_or(&[scope::ALL], |(_, scopes)| scopes))
    }
}

#[cfg(test)]
mod tests;
