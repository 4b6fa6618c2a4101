//! The rate table carriers are chosen from (documented in docs/rates.md): the cheapest row
//! that serves the parcel's service level, destination zone and weight wins; its transit days
//! make the delivery promise. Pure data.

use orderflow_proto::common::v1::ServiceLevel;

/// Where a parcel goes, seen from the warehouse's country.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    Domestic,
    Eu,
    World,
}

/// One offer: a carrier's service for a level, a zone and a weight limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub level: ServiceLevel,
    pub zone: Zone,
    pub max_grams: u32,
    pub carrier: &'static str,
    /// Two letters that start the carrier's tracking numbers.
    pub code: &'static str,
    pub service: &'static str,
    pub base_cents: i64,
    /// Added per started kilogram.
    pub per_kg_cents: i64,
    /// Working days from dispatch to delivery: (fastest, slowest).
    pub transit_days: (u32, u32),
}

impl Rate {
    pub fn cost_cents(&self, grams: u32) -> i64 {
        self.base_cents + self.per_kg_cents * i64::from(grams.div_ceil(1_000))
    }
}

#[allow(clippy::too_many_arguments, reason = "one argument per column keeps the table readable")]
const fn rate(
    level: ServiceLevel,
    zone: Zone,
    max_grams: u32,
    carrier: &'static str,
    code: &'static str,
    service: &'static str,
    base_cents: i64,
    per_kg_cents: i64,
    transit_days: (u32, u32),
) -> Rate {
    Rate { level, zone, max_grams, carrier, code, service, base_cents, per_kg_cents, transit_days }
}

use ServiceLevel::{Express, Standard};
use Zone::{Domestic, Eu, World};

/// The table; docs/rates.md shows the same rows.
pub const RATES: &[Rate] = &[
    rate(Standard, Domestic, 31_500, "DPD", "DP", "Classic", 490, 30, (1, 2)),
    rate(Standard, Domestic, 70_000, "DB Schenker", "DB", "System", 2_900, 60, (2, 3)),
    rate(Standard, Eu, 31_500, "DHL", "DH", "Paket International", 1_390, 100, (2, 4)),
    rate(Standard, Eu, 70_000, "DB Schenker", "DB", "System International", 7_900, 150, (3, 5)),
    rate(Standard, World, 31_500, "DHL", "DH", "Paket International World", 2_990, 300, (5, 10)),
    rate(Express, Domestic, 31_500, "UPS", "UP", "Express Saver", 1_190, 80, (1, 1)),
    rate(Express, Eu, 31_500, "UPS", "UP", "Express Saver", 2_490, 200, (1, 2)),
    rate(Express, World, 70_000, "FedEx", "FX", "International Priority", 4_990, 500, (2, 3)),
];

/// EU member states (for the zone).
const EU: &[&str] = &[
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT", "LT", "LU", "LV",
    "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
];

pub fn zone(origin: &str, destination: &str) -> Zone {
    if origin == destination {
        Domestic
    } else if EU.contains(&destination) && EU.contains(&origin) {
        Eu
    } else {
        World
    }
}
