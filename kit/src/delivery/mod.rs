//! Where parcels go and when they arrive, shared by the services that answer it: the carriers'
//! rate table ([`rates`], which shipping labels from) and the delivery promise ([`promise`],
//! which order-service answers at placement and shipping recomputes on labelling and on each
//! scan). Pure: no I/O. docs/rates.md and docs/delivery.md show the same rules.

pub mod promise;
pub mod rates;

use chrono::NaiveTime;

/// The warehouse parcels leave from: its country (for the zone) and its daily cut-off (a
/// parcel labelled before it leaves that working day; after it, the next one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warehouse {
    pub country: String,
    pub cutoff: NaiveTime,
}

impl Warehouse {
    /// `WAREHOUSE_COUNTRY` (ISO 3166-1 alpha-2, default DE) and `WAREHOUSE_CUTOFF_UTC` (HH:MM,
    /// default 14:00).
    pub fn from_env() -> anyhow::Result<Self> {
        let country = crate::config::var("WAREHOUSE_COUNTRY", "DE".to_owned())?.to_ascii_uppercase();
        if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
            anyhow::bail!("WAREHOUSE_COUNTRY={country:?} is invalid: use an ISO 3166-1 alpha-2 code such as DE");
        }
        let cutoff = crate::config::var("WAREHOUSE_CUTOFF_UTC", "14:00".to_owned())?;
        let cutoff = NaiveTime::parse_from_str(&cutoff, "%H:%M")
            .map_err(|e| anyhow::anyhow!("WAREHOUSE_CUTOFF_UTC={cutoff:?} is invalid ({e}): use HH:MM, e.g. 14:00"))?;
        Ok(Self { country, cutoff })
    }
}

impl Default for Warehouse {
    fn default() -> Self {
        Self { country: "DE".to_owned(), cutoff: NaiveTime::from_hms_opt(14, 0, 0).unwrap_or_default() }
    }
}
