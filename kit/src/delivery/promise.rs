//! The delivery promise: a window of dates, counted in working days (Monday to Friday; the
//! calendar has no public holidays) from the day the parcel leaves the warehouse, which is the
//! day itself before the daily cut-off and the next working day after it.
//!
//! - At placement the carrier is not chosen yet: the window spans every carrier that serves
//!   the level and zone ([`quote`]).
//! - At labelling it is the chosen carrier's transit days from the time of labelling
//!   ([`for_rate`]).
//! - A scan moves it ([`after_scan`]): out for delivery or delivered means that day, a failed
//!   attempt the next working day, in transit never earlier than the scan.
//!
//! An order is late ([`lateness`]) when the window has moved past what was promised at
//! placement, when it was delivered after that, or when `latest` passed without a delivery.

use super::Warehouse;
use super::rates::{RATES, Rate, zone};
use chrono::{DateTime, Datelike, Days, NaiveDate, Utc, Weekday};
use orderflow_proto::common::v1::{DeliveryPromise, ServiceLevel};

/// A window of delivery dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub earliest: NaiveDate,
    pub latest: NaiveDate,
}

/// What a scan says about the parcel, for [`after_scan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scanned {
    InTransit,
    OutForDelivery,
    DeliveryFailed,
    Delivered,
    Returned,
}

pub fn is_working_day(day: NaiveDate) -> bool {
    !matches!(day.weekday(), Weekday::Sat | Weekday::Sun)
}

/// The first working day after `day`.
pub fn next_working_day(day: NaiveDate) -> NaiveDate {
    let mut next = day + Days::new(1);
    while !is_working_day(next) {
        next = next + Days::new(1);
    }
    next
}

/// `days` working days after `day` (`day` itself for 0).
pub fn add_working_days(day: NaiveDate, days: u32) -> NaiveDate {
    (0..days).fold(day, |d, _| next_working_day(d))
}

/// The day a parcel ready at `at` leaves the warehouse.
pub fn dispatch_day(warehouse: &Warehouse, at: DateTime<Utc>) -> NaiveDate {
    let day = at.date_naive();
    if is_working_day(day) && at.time() < warehouse.cutoff { day } else { next_working_day(day) }
}

/// The window for a parcel of `level` to `country`, ready at `at`, before its carrier is
/// chosen: from the fastest to the slowest carrier that serves the level and zone. `None` if
/// none does.
pub fn quote(warehouse: &Warehouse, level: ServiceLevel, country: &str, at: DateTime<Utc>) -> Option<Window> {
    let zone = zone(&warehouse.country, country);
    let level = if level == ServiceLevel::Express { level } else { ServiceLevel::Standard };
    let rates = RATES.iter().filter(|r| r.level == level && r.zone == zone);
    let (min, max) = rates.fold(None, |acc: Option<(u32, u32)>, r| {
        Some(acc.map_or((r.transit_days.0, r.transit_days.1), |(lo, hi)| {
            (lo.min(r.transit_days.0), hi.max(r.transit_days.1))
        }))
    })?;
    let day = dispatch_day(warehouse, at);
    Some(Window { earliest: add_working_days(day, min), latest: add_working_days(day, max) })
}

/// The window for a parcel labelled for `rate` at `at`.
pub fn for_rate(warehouse: &Warehouse, rate: &Rate, at: DateTime<Utc>) -> Window {
    let day = dispatch_day(warehouse, at);
    Window { earliest: add_working_days(day, rate.transit_days.0), latest: add_working_days(day, rate.transit_days.1) }
}

/// The window after the parcel's current scan, `scanned` on `day`, given the label's window.
pub fn after_scan(label: Window, scanned: Scanned, day: NaiveDate) -> Window {
    match scanned {
        Scanned::InTransit => {
            let earliest = label.earliest.max(day);
            Window { earliest, latest: label.latest.max(earliest) }
        }
        Scanned::OutForDelivery | Scanned::Delivered => Window { earliest: day, latest: day },
        Scanned::DeliveryFailed => {
            let next = next_working_day(day);
            Window { earliest: next, latest: next }
        }
        Scanned::Returned => label,
    }
}

/// Why an order is late, or `None`: its window against the promised latest date, on `today`,
/// `delivered` on a day or not yet (`ended` is true for an order that will not be delivered).
pub fn lateness(
    window: Window,
    promised_latest: NaiveDate,
    delivered: Option<NaiveDate>,
    ended: bool,
    today: NaiveDate,
) -> Option<String> {
    if let Some(day) = delivered {
        return (day > promised_latest).then(|| format!("delivered on {day}, promised by {promised_latest}"));
    }
    if ended {
        return None;
    }
    if today > window.latest {
        return Some(format!("not delivered by {}", window.latest));
    }
    (window.latest > promised_latest)
        .then(|| format!("now expected by {}, promised by {promised_latest}", window.latest))
}

impl Window {
    /// As the API shows it (ISO 8601 dates); lateness is the reader's to add.
    pub fn to_proto(self) -> DeliveryPromise {
        DeliveryPromise { earliest: self.earliest.to_string(), latest: self.latest.to_string(), ..Default::default() }
    }

    /// Read back from the API's form; `None` if either date is missing or malformed.
    pub fn from_proto(promise: &DeliveryPromise) -> Option<Self> {
        let date = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
        Some(Self { earliest: date(&promise.earliest)?, latest: date(&promise.latest)? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveTime, TimeZone};

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        Utc.from_utc_datetime(&chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap())
    }

    fn window(earliest: &str, latest: &str) -> Window {
        Window { earliest: day(earliest), latest: day(latest) }
    }

    const DE: fn() -> Warehouse = Warehouse::default;

    #[test]
    fn working_days_skip_weekends() {
        // 2026-12-04 is a Friday.
        assert_eq!(next_working_day(day("2026-12-04")), day("2026-12-07"));
        assert_eq!(next_working_day(day("2026-12-05")), day("2026-12-07"));
        assert_eq!(add_working_days(day("2026-12-03"), 2), day("2026-12-07"));
        assert_eq!(add_working_days(day("2026-12-03"), 0), day("2026-12-03"));
        assert_eq!(add_working_days(day("2026-12-04"), 5), day("2026-12-11"));
    }

    #[test]
    fn the_cutoff_decides_the_dispatch_day() {
        let warehouse = DE();
        assert_eq!(dispatch_day(&warehouse, at("2026-12-02 13:59")), day("2026-12-02"));
        assert_eq!(dispatch_day(&warehouse, at("2026-12-02 14:00")), day("2026-12-03"));
        assert_eq!(dispatch_day(&warehouse, at("2026-12-04 15:00")), day("2026-12-07"), "Friday late: Monday");
        assert_eq!(dispatch_day(&warehouse, at("2026-12-05 09:00")), day("2026-12-07"), "Saturday: Monday");
        let late = Warehouse { cutoff: NaiveTime::from_hms_opt(18, 30, 0).unwrap(), ..DE() };
        assert_eq!(dispatch_day(&late, at("2026-12-02 18:00")), day("2026-12-02"));
    }

    #[test]
    fn a_quote_spans_every_carrier_of_the_level_and_zone() {
        let warehouse = DE();
        let monday = at("2026-11-30 09:00");
        // Domestic standard: DPD 1-2, DB Schenker 2-3.
        assert_eq!(quote(&warehouse, ServiceLevel::Standard, "DE", monday), Some(window("2026-12-01", "2026-12-03")));
        assert_eq!(
            quote(&warehouse, ServiceLevel::Unspecified, "DE", monday),
            Some(window("2026-12-01", "2026-12-03"))
        );
        // Domestic express: UPS 1.
        assert_eq!(quote(&warehouse, ServiceLevel::Express, "DE", monday), Some(window("2026-12-01", "2026-12-01")));
        // EU standard: DHL 2-4, DB Schenker 3-5; world standard: DHL 5-10.
        assert_eq!(quote(&warehouse, ServiceLevel::Standard, "FR", monday), Some(window("2026-12-02", "2026-12-07")));
        assert_eq!(quote(&warehouse, ServiceLevel::Standard, "US", monday), Some(window("2026-12-07", "2026-12-14")));
        // World express: FedEx 2-3, placed Friday after the cut-off: leaves Monday.
        let friday_late = at("2026-12-04 16:00");
        assert_eq!(
            quote(&warehouse, ServiceLevel::Express, "JP", friday_late),
            Some(window("2026-12-09", "2026-12-10"))
        );
    }

    #[test]
    fn the_label_narrows_the_window_to_its_carrier() {
        let dpd = RATES.iter().find(|r| r.carrier == "DPD").unwrap();
        assert_eq!(for_rate(&DE(), dpd, at("2026-11-30 09:00")), window("2026-12-01", "2026-12-02"));
        assert_eq!(for_rate(&DE(), dpd, at("2026-11-30 15:00")), window("2026-12-02", "2026-12-03"));
    }

    #[test]
    fn scans_move_the_window() {
        let label = window("2026-12-01", "2026-12-02");
        assert_eq!(after_scan(label, Scanned::InTransit, day("2026-11-30")), label);
        assert_eq!(after_scan(label, Scanned::InTransit, day("2026-12-02")), window("2026-12-02", "2026-12-02"));
        assert_eq!(after_scan(label, Scanned::InTransit, day("2026-12-03")), window("2026-12-03", "2026-12-03"));
        assert_eq!(after_scan(label, Scanned::OutForDelivery, day("2026-12-01")), window("2026-12-01", "2026-12-01"));
        assert_eq!(after_scan(label, Scanned::DeliveryFailed, day("2026-12-04")), window("2026-12-07", "2026-12-07"));
        assert_eq!(after_scan(label, Scanned::Delivered, day("2026-12-02")), window("2026-12-02", "2026-12-02"));
        assert_eq!(after_scan(label, Scanned::Returned, day("2026-12-09")), label);
    }

    #[test]
    fn lateness_names_its_reason() {
        let promised = day("2026-12-03");
        let on_time = window("2026-12-01", "2026-12-03");
        assert_eq!(lateness(on_time, promised, None, false, day("2026-12-02")), None);
        assert_eq!(lateness(on_time, promised, None, false, day("2026-12-03")), None);
        assert_eq!(
            lateness(on_time, promised, None, false, day("2026-12-04")).as_deref(),
            Some("not delivered by 2026-12-03")
        );
        let slipped = window("2026-12-04", "2026-12-04");
        assert_eq!(
            lateness(slipped, promised, None, false, day("2026-12-02")).as_deref(),
            Some("now expected by 2026-12-04, promised by 2026-12-03")
        );
        assert_eq!(lateness(slipped, promised, Some(day("2026-12-03")), true, day("2026-12-09")), None);
        assert_eq!(
            lateness(slipped, promised, Some(day("2026-12-04")), true, day("2026-12-09")).as_deref(),
            Some("delivered on 2026-12-04, promised by 2026-12-03")
        );
        assert_eq!(lateness(on_time, promised, None, true, day("2026-12-09")), None, "a cancelled order is not late");
    }

    #[test]
    fn the_api_form_round_trips() {
        let w = window("2026-12-01", "2026-12-03");
        assert_eq!(w.to_proto().earliest, "2026-12-01");
        assert_eq!(Window::from_proto(&w.to_proto()), Some(w));
        assert_eq!(Window::from_proto(&DeliveryPromise::default()), None);
    }
}
