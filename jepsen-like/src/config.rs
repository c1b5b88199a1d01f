//! Checker configuration: what the system under test promised.
//!
//! The same history can be valid or invalid depending on the producer and consumer settings
//! it ran with (acks, idempotence, transactions, assign vs subscribe); §6.5 of
//! `jepsen-checker.md` maps each anomaly to "bad" or "informational" from these settings.
//! The JSON form is the `"config"` object of a history's header line; every field is optional
//! and unknown fields are refused, so a typo cannot silently weaken the verdict.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Producer `acks` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Acks {
    /// `acks=0`: fire and forget; no ordering or durability promise.
    Zero,
    /// `acks=1`: the leader appended the record; it may be lost on failover.
    One,
    /// `acks=all`: every in-sync replica has the record.
    #[default]
    All,
}

/// Consumer isolation level (only meaningful with transactions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Isolation {
    /// `isolation.level=read_committed`.
    #[default]
    ReadCommitted,
    /// `isolation.level=read_uncommitted`.
    ReadUncommitted,
}

/// How consumers obtained their partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubVia {
    /// `consumer.assign(...)`: positions are fully client-controlled.
    #[default]
    Assign,
    /// `consumer.subscribe(...)`: a consumer group with rebalances and committed offsets.
    Subscribe,
    /// Both were used; each process is judged by its latest assign/subscribe op.
    Both,
}

/// Cycle searches give up after this many edge visits in total (deterministic budget).
pub const CYCLE_SEARCH_STEPS_DEFAULT: u64 = 10_000_000;
/// Examples kept per anomaly type in the report summary.
pub const MAX_EXAMPLES_DEFAULT: usize = 32;

/// What the test promised; drives the verdict matrix (§6.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CheckConfig {
    /// Producer acks.
    pub acks: Acks,
    /// `enable.idempotence=true`: duplicates are bad.
    pub idempotence: bool,
    /// Sends and polls ran inside Kafka transactions (writes of one op commit atomically).
    pub txn: bool,
    /// Consumer isolation level.
    pub isolation: Isolation,
    /// Assign vs subscribe.
    pub sub_via: SubVia,
    /// Infer ww edges (informational G0 / G1c-ww cycles).
    pub ww_deps: bool,
    /// `auto.offset.reset=earliest`: group coverage starts at position 0.
    pub auto_offset_reset_earliest: bool,
    /// A record consumed by two committed transactions (`group-duplicate`) is bad.
    pub eos_strict: bool,
    /// Check `realtime-nonmonotonic-send`; `None` means "iff acks=all".
    pub realtime_offsets: Option<bool>,
    /// Force the "final reads caught up" flag for every key; `None` computes it from
    /// `"phase":"final"` ops (and assumes caught up when the history has no final phase).
    pub final_reads_caught_up: Option<bool>,
    /// Edge visits allowed to the cycle searches before they report `scc-without-cycle`.
    pub cycle_search_steps_max: u64,
    /// Examples per anomaly type in the report summary.
    pub max_examples: usize,
}

impl Default for CheckConfig {
    fn default() -> Self {
        Self {
            acks: Acks::All,
            idempotence: false,
            txn: false,
            isolation: Isolation::ReadCommitted,
            sub_via: SubVia::Assign,
            ww_deps: false,
            auto_offset_reset_earliest: true,
            eos_strict: false,
            realtime_offsets: None,
            final_reads_caught_up: None,
            cycle_search_steps_max: CYCLE_SEARCH_STEPS_DEFAULT,
            max_examples: MAX_EXAMPLES_DEFAULT,
        }
    }
}

impl CheckConfig {
    /// Whether `realtime-nonmonotonic-send` is checked at all.
    pub fn realtime_offsets_effective(&self) -> bool {
        self.realtime_offsets.unwrap_or(self.acks == Acks::All)
    }

    /// Transactions with `read_uncommitted` consumers: reads prove nothing about commits.
    pub fn read_uncommitted_txn(&self) -> bool {
        self.txn && self.isolation == Isolation::ReadUncommitted
    }
}

impl Acks {
    /// The Kafka spelling: `"0"`, `"1"` or `"all"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Zero => "0",
            Self::One => "1",
            Self::All => "all",
        }
    }
}

impl Serialize for Acks {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Acks {
    /// Accepts `"0"`, `"1"`, `"all"`, `"-1"` and the integers 0, 1, -1 (Kafka's spellings).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = serde_json::Value::deserialize(deserializer)?;
        let parsed = match &raw {
            serde_json::Value::String(s) => match s.as_str() {
                "0" => Some(Self::Zero),
                "1" => Some(Self::One),
                "all" | "-1" => Some(Self::All),
                _ => None,
            },
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(0) => Some(Self::Zero),
                Some(1) => Some(Self::One),
                Some(-1) => Some(Self::All),
                _ => None,
            },
            _ => None,
        };
        parsed.ok_or_else(|| {
            serde::de::Error::custom(format!("acks must be \"0\", \"1\" or \"all\", got {raw}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the header spellings used by the goldens and by Kafka all parse; typos are refused.
    #[test]
    fn parses_kafka_spellings() {
        let c: CheckConfig =
            serde_json::from_str(r#"{"acks":"1","sub_via":"subscribe"}"#).expect("valid config");
        assert_eq!(c.acks, Acks::One);
        assert_eq!(c.sub_via, SubVia::Subscribe);
        assert!(!c.realtime_offsets_effective());
        let c: CheckConfig = serde_json::from_str(r#"{"acks":-1}"#).expect("valid config");
        assert_eq!(c.acks, Acks::All);
        assert!(serde_json::from_str::<CheckConfig>(r#"{"idempotance":true}"#).is_err());
        assert!(serde_json::from_str::<CheckConfig>(r#"{"acks":"2"}"#).is_err());
    }
}
