//! The one place a Kafka client of this project gets its connection settings: the brokers,
//! and TLS and SASL from the environment, so the services, the operator tools, the load tool
//! and the tests all connect the same way.
//!
//! | variable | librdkafka setting | |
//! |---|---|---|
//! | `KAFKA_SECURITY_PROTOCOL` | `security.protocol` | `plaintext` (default), `ssl`, `sasl_plaintext`, `sasl_ssl` |
//! | `KAFKA_SSL_CA_FILE` | `ssl.ca.location` | the CA that signed the brokers' certificates |
//! | `KAFKA_SSL_CERT_FILE`, `KAFKA_SSL_KEY_FILE` | `ssl.certificate.location`, `ssl.key.location` | a client certificate (mTLS) |
//! | `KAFKA_SASL_MECHANISM` | `sasl.mechanisms` | `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512` |
//! | `KAFKA_SASL_USERNAME`, `KAFKA_SASL_PASSWORD` | `sasl.username`, `sasl.password` | the client's principal |
//!
//! Brokers' host names are verified against their certificates (librdkafka's default
//! `ssl.endpoint.identification.algorithm=https`). A setting librdkafka refuses stops the
//! client's creation with librdkafka's own message.

use rdkafka::ClientConfig;
use rdkafka::error::KafkaError;

/// Each variable and the librdkafka setting it sets.
pub const SETTINGS: [(&str, &str); 7] = [
    ("KAFKA_SECURITY_PROTOCOL", "security.protocol"),
    ("KAFKA_SSL_CA_FILE", "ssl.ca.location"),
    ("KAFKA_SSL_CERT_FILE", "ssl.certificate.location"),
    ("KAFKA_SSL_KEY_FILE", "ssl.key.location"),
    ("KAFKA_SASL_MECHANISM", "sasl.mechanisms"),
    ("KAFKA_SASL_USERNAME", "sasl.username"),
    ("KAFKA_SASL_PASSWORD", "sasl.password"),
];

/// A client configuration for `brokers` with the security settings of the environment.
pub fn client_config(brokers: &str) -> Result<ClientConfig, KafkaError> {
    client_config_from(brokers, |name| std::env::var(name).ok())
}

/// The same, with the variables read by `var`. Settings that would be ignored are refused
/// rather than let the client connect with less than was asked: SASL credentials or TLS files
/// with a protocol that does not use them.
pub fn client_config_from(brokers: &str, var: impl Fn(&str) -> Option<String>) -> Result<ClientConfig, KafkaError> {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers);
    let mut set = Vec::new();
    for (name, setting) in SETTINGS {
        if let Some(value) = var(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) {
            config.set(setting, value);
            set.push(name);
        }
    }
    let protocol = config.get("security.protocol").unwrap_or("plaintext").to_ascii_lowercase();
    let (sasl, ssl) = (protocol.starts_with("sasl_"), protocol.ends_with("ssl"));
    let refuse = |what: &str| {
        Err(KafkaError::ClientCreation(format!(
            "{what} is set but KAFKA_SECURITY_PROTOCOL={protocol} does not use it: set sasl_ssl, ssl or sasl_plaintext as meant"
        )))
    };
    if let Some(name) = set.iter().find(|n| n.starts_with("KAFKA_SASL_")).filter(|_| !sasl) {
        return refuse(name);
    }
    if let Some(name) = set.iter().find(|n| n.starts_with("KAFKA_SSL_")).filter(|_| !ssl) {
        return refuse(name);
    }
    if ssl {
        config.set("ssl.endpoint.identification.algorithm", "https");
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_variable_that_is_set_sets_its_librdkafka_setting() {
        let env = |name: &str| match name {
            "KAFKA_SECURITY_PROTOCOL" => Some("sasl_ssl".to_owned()),
            "KAFKA_SASL_MECHANISM" => Some(" SCRAM-SHA-512 ".to_owned()),
            "KAFKA_SASL_USERNAME" => Some(String::new()),
            _ => None,
        };
        let config = client_config_from("b:9093", env).unwrap();
        assert_eq!(config.get("bootstrap.servers"), Some("b:9093"));
        assert_eq!(config.get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(config.get("sasl.mechanisms"), Some("SCRAM-SHA-512"));
        assert_eq!(config.get("sasl.username"), None, "an empty variable is unset");
        assert_eq!(config.get("ssl.ca.location"), None);
        assert_eq!(config.get("ssl.endpoint.identification.algorithm"), Some("https"));
    }

    #[test]
    fn credentials_the_protocol_would_ignore_are_refused() {
        let env = |name: &str| (name == "KAFKA_SASL_PASSWORD").then(|| "secret".to_owned());
        let error = client_config_from("b:9093", env).unwrap_err().to_string();
        assert!(error.contains("KAFKA_SASL_PASSWORD") && error.contains("plaintext"), "{error}");
        let env = |name: &str| match name {
            "KAFKA_SECURITY_PROTOCOL" => Some("sasl_plaintext".to_owned()),
            "KAFKA_SSL_CA_FILE" => Some("/ca.pem".to_owned()),
            _ => None,
        };
        assert!(client_config_from("b:9093", env).unwrap_err().to_string().contains("KAFKA_SSL_CA_FILE"));
    }

    #[test]
    fn a_setting_librdkafka_refuses_stops_the_client_with_its_reason() {
        let env = |name: &str| (name == "KAFKA_SECURITY_PROTOCOL").then(|| "carrier-pigeon".to_owned());
        let Err(error) = client_config_from("b:9093", env).unwrap().create::<rdkafka::consumer::BaseConsumer>() else {
            panic!("an unknown security.protocol was taken")
        };
        assert!(error.to_string().contains("security.protocol"), "{error}");
    }
}
