//! The Prometheus text format as the services' exporters write it: one sample per line,
//! `name{label="value",...} value`, `#` lines skipped.

use std::collections::BTreeMap;

/// One sample of a scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, name: &str) -> &str {
        self.labels.get(name).map_or("", String::as_str)
    }
}

/// The samples of a scrape; lines that are not samples are skipped.
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines().filter(|l| !l.starts_with('#')).filter_map(sample).collect()
}

fn sample(line: &str) -> Option<Sample> {
    let line = line.trim();
    let (series, value) = line.rsplit_once(' ')?;
    let value = value.parse().ok()?;
    let (name, labels) = match series.split_once('{') {
        None => (series, BTreeMap::new()),
        Some((name, rest)) => (name, labels(rest.strip_suffix('}')?)?),
    };
    Some(Sample { name: name.to_owned(), labels, value })
}

/// `a="x",b="y"`, with `\"`, `\\` and `\n` escapes in values.
fn labels(text: &str) -> Option<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            let (at, c) = chars.next()?;
            match c {
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break at,
                c => value.push(c),
            }
        };
        labels.insert(name.trim_start_matches(',').trim().to_owned(), value);
        rest = after[end + 1..].trim_start_matches(',');
    }
    Some(labels)
}

/// The p99 (in seconds) of a histogram's observations between two scrapes, from its
/// cumulative `_bucket` counts (`le` to count, in the order of `le`): the upper bound of the
/// first bucket holding 99 % of the new observations; none without new observations.
pub fn p99(before: &[(f64, f64)], now: &[(f64, f64)]) -> Option<f64> {
    let count = |buckets: &[(f64, f64)], le: f64| buckets.iter().find(|(l, _)| *l == le).map_or(0.0, |(_, c)| *c);
    let total = now.last().map(|(le, c)| c - count(before, *le))?;
    if total <= 0.0 {
        return None;
    }
    now.iter().find(|(le, c)| c - count(before, *le) >= total * 0.99).map(|(le, _)| *le)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_with_and_without_labels_are_read_and_comments_skipped() {
        let text = "# HELP x\n# TYPE x counter\nup 1\norderflow_consumer_lag{service=\"inventory-service\",topic=\"o.v1\",partition=\"0\"} 12\nbroken line\nq{a=\"say \\\"hi\\\"\"} 2.5\n";
        let samples = parse(text);
        assert_eq!(samples.len(), 3);
        assert_eq!(samples[0], Sample { name: "up".into(), labels: BTreeMap::new(), value: 1.0 });
        assert_eq!(samples[1].label("topic"), "o.v1");
        assert_eq!(samples[1].label("partition"), "0");
        assert_eq!(samples[2].label("a"), "say \"hi\"");
    }

    #[test]
    fn the_p99_is_the_bucket_that_holds_99_percent_of_the_new_observations() {
        let before = [(0.01, 10.0), (0.1, 10.0), (f64::INFINITY, 10.0)];
        let now = [(0.01, 1000.0), (0.1, 1100.0), (f64::INFINITY, 1110.0)];
        assert_eq!(p99(&before, &now), Some(0.1));
        assert_eq!(p99(&now, &now), None, "nothing new");
    }
}
