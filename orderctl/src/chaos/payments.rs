//! The payment invariant of a chaos run: the gateway's ledger against order-service's orders.
//! Every shipped order captured exactly once, for its total; every cancelled or rejected order
//! voided or declined (or never authorised), nothing captured; nothing captured twice; no
//! authorisation for an order order-service does not hold.

use super::findings::Findings;
use order_service::gateway_api::Entry;
use std::collections::HashMap;

/// One order as order-service holds it: id, status, payment status and total (minor units).
pub type Paid = (String, String, String, i64);

/// What the ledger showed: orders whose payment was declined, and captures.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Payments {
    pub declined: u64,
    pub captured: u64,
}

pub fn check_payments(orders: &[Paid], ledger: Vec<Entry>, findings: &mut Findings) -> Payments {
    let mut entries: HashMap<String, Entry> = ledger.into_iter().map(|e| (e.authorization_key.clone(), e)).collect();
    let mut seen = Payments::default();
    for (order_id, status, payment, total) in orders {
        let entry = entries.remove(order_id);
        let captures = entry.as_ref().map_or(0, |e| e.captures);
        seen.captured += u64::from(captures);
        if captures > 1 {
            findings.duplicated(format!("order {order_id}: captured {captures} times"));
        }
        match status.as_str() {
            "SHIPPED" | "DELIVERED" | "RETURNED" => {
                let captured = entry.as_ref().map(|e| (e.status.as_str(), e.captured_minor));
                if payment != "CAPTURED" || captured != Some(("CAPTURED", *total)) {
                    findings.fail(
                        "captured-once",
                        format!("order {order_id} {status} with payment {payment}, ledger {captured:?}, total {total}"),
                    );
                }
            }
            "CANCELLED" | "REJECTED" => {
                seen.declined += u64::from(payment == "DECLINED");
                let released = entry.as_ref().is_none_or(|e| matches!(e.status.as_str(), "VOIDED" | "DECLINED"));
                if !matches!(payment.as_str(), "VOIDED" | "DECLINED") || !released || captures > 0 {
                    let ledger = entry.as_ref().map(|e| e.status.as_str());
                    findings
                        .fail("voided", format!("order {order_id} {status} with payment {payment}, ledger {ledger:?}"));
                }
            }
            _ => {}
        }
    }
    for (key, entry) in entries {
        findings.fail("voided", format!("the gateway holds {} {key} for no order", entry.status));
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(id: &str, status: &str, payment: &str, total: i64) -> Paid {
        (id.into(), status.into(), payment.into(), total)
    }

    fn entry(key: &str, status: &str, captures: u32, captured_minor: i64) -> Entry {
        Entry { authorization_key: key.into(), status: status.into(), captures, captured_minor, ..Entry::default() }
    }

    #[test]
    fn a_clean_ledger_passes_and_is_counted() {
        let orders = [
            order("a", "SHIPPED", "CAPTURED", 500),
            order("b", "CANCELLED", "VOIDED", 100),
            order("c", "REJECTED", "DECLINED", 100),
            order("d", "CANCELLED", "VOIDED", 100),
        ];
        let ledger = vec![entry("a", "CAPTURED", 1, 500), entry("b", "VOIDED", 0, 0), entry("c", "DECLINED", 0, 0)];
        let mut findings = Findings::default();
        let seen = check_payments(&orders, ledger, &mut findings);
        assert!(findings.passed(), "{:?}", findings.examples);
        assert_eq!(seen, Payments { declined: 1, captured: 1 });
    }

    #[test]
    fn double_captures_wrong_amounts_and_unvoided_ends_fail() {
        let orders = [
            order("a", "SHIPPED", "CAPTURED", 500),
            order("b", "SHIPPED", "CAPTURED", 500),
            order("c", "CANCELLED", "AUTHORIZED", 100),
            order("d", "SHIPPED", "AUTHORIZED", 100),
        ];
        let ledger = vec![
            entry("a", "CAPTURED", 2, 500),
            entry("b", "CAPTURED", 1, 400),
            entry("c", "AUTHORIZED", 0, 0),
            entry("d", "AUTHORIZED", 0, 0),
            entry("z", "AUTHORIZED", 0, 0),
        ];
        let mut findings = Findings::default();
        check_payments(&orders, ledger, &mut findings);
        assert_eq!(findings.duplicated, 1);
        assert_eq!(findings.failed.iter().copied().collect::<Vec<_>>(), ["captured-once", "voided"]);
        assert_eq!(findings.examples["captured-once"].len(), 2, "b's amount and d's missing capture");
        assert_eq!(findings.examples["voided"].len(), 2, "c still authorised, z for no order");
    }
}
