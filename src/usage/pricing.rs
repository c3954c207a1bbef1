//! Model prices as data (`assets/pricing.toml`), user overrides from `[usage.prices]`, and the
//! cost of one deduplicated entry.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Tokens;
use crate::error::{DeckError, Result};

pub const BUILTIN: &str = include_str!("../../assets/pricing.toml");

/// A request whose prompt (input + cache writes + cache reads) is above this many tokens is
/// priced at the model's `above_200k` rates, all of it.
pub const TIER_THRESHOLD: u64 = 200_000;

/// USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rates {
    pub input: f64,
    pub output: f64,
    pub cache_write_5m: f64,
    pub cache_write_1h: f64,
    pub cache_read: f64,
}

/// Any subset of a model's prices; a model not in the shipped table needs all five.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceOverride {
    pub input: Option<f64>,
    pub output: Option<f64>,
    pub cache_write_5m: Option<f64>,
    pub cache_write_1h: Option<f64>,
    pub cache_read: Option<f64>,
    pub above_200k: Option<Rates>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPrice {
    pub input: f64,
    pub output: f64,
    pub cache_write_5m: f64,
    pub cache_write_1h: f64,
    pub cache_read: f64,
    #[serde(default)]
    pub above_200k: Option<Rates>,
}

impl ModelPrice {
    fn base(&self) -> Rates {
        Rates {
            input: self.input,
            output: self.output,
            cache_write_5m: self.cache_write_5m,
            cache_write_1h: self.cache_write_1h,
            cache_read: self.cache_read,
        }
    }

    /// The cost in USD of one request's tokens.
    pub fn cost(&self, t: &Tokens) -> f64 {
        let rates = match self.above_200k {
            Some(tier) if t.prompt() > TIER_THRESHOLD => tier,
            _ => self.base(),
        };
        (t.input as f64 * rates.input
            + t.output as f64 * rates.output
            + t.cache_write_5m as f64 * rates.cache_write_5m
            + t.cache_write_1h as f64 * rates.cache_write_1h
            + t.cache_read as f64 * rates.cache_read)
            / 1_000_000.0
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceFile {
    models: BTreeMap<String, ModelPrice>,
}

/// The price table: keys are normalised model names (see [`normalize_model`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Pricing {
    models: BTreeMap<String, ModelPrice>,
}

impl Pricing {
    /// The shipped table.
    pub fn builtin() -> Pricing {
        Pricing::parse(BUILTIN, "assets/pricing.toml").expect("the shipped price table is valid")
    }

    pub fn parse(text: &str, origin: &str) -> Result<Pricing> {
        let file: PriceFile = toml::from_str(text).map_err(|e| DeckError::Config {
            path: origin.to_owned(),
            message: e.message().to_owned(),
        })?;
        Ok(Pricing {
            models: file
                .models
                .into_iter()
                .map(|(k, v)| (normalize_model(&k), v))
                .collect(),
        })
    }

    /// The shipped table with the user's `[usage.prices]` merged over it. A model that is
    /// not in the table needs all five prices.
    pub fn with_overrides(overrides: &BTreeMap<String, PriceOverride>) -> Result<Pricing> {
        let mut pricing = Pricing::builtin();
        for (model, o) in overrides {
            let key = normalize_model(model);
            let merged = match pricing.models.get(&key) {
                Some(base) => ModelPrice {
                    input: o.input.unwrap_or(base.input),
                    output: o.output.unwrap_or(base.output),
                    cache_write_5m: o.cache_write_5m.unwrap_or(base.cache_write_5m),
                    cache_write_1h: o.cache_write_1h.unwrap_or(base.cache_write_1h),
                    cache_read: o.cache_read.unwrap_or(base.cache_read),
                    above_200k: o.above_200k.or(base.above_200k),
                },
                None => {
                    let need = |v: Option<f64>, name: &str| {
                        v.ok_or_else(|| DeckError::Config {
                            path: "config".into(),
                            message: format!(
                                "key `usage.prices.\"{model}\".{name}`: a model that is not in \
                                 the shipped price table needs all of input, output, \
                                 cache_write_5m, cache_write_1h and cache_read"
                            ),
                        })
                    };
                    ModelPrice {
                        input: need(o.input, "input")?,
                        output: need(o.output, "output")?,
                        cache_write_5m: need(o.cache_write_5m, "cache_write_5m")?,
                        cache_write_1h: need(o.cache_write_1h, "cache_write_1h")?,
                        cache_read: need(o.cache_read, "cache_read")?,
                        above_200k: o.above_200k,
                    }
                }
            };
            pricing.models.insert(key, merged);
        }
        Ok(pricing)
    }

    /// The price of a model as named in a log line, tolerant of date suffixes.
    pub fn lookup(&self, model: &str) -> Option<&ModelPrice> {
        self.models
            .get(model)
            .or_else(|| self.models.get(&normalize_model(model)))
    }

    pub fn models(&self) -> impl Iterator<Item = (&str, &ModelPrice)> {
        self.models.iter().map(|(k, v)| (k.as_str(), v))
    }
}

/// `claude-opus-4-1-20250805` → `claude-opus-4-1`; also drops `anthropic/`, Bedrock's
/// `us.anthropic.` and `-v1:0`, Vertex's `@20250805`, and `-latest`.
pub fn normalize_model(model: &str) -> String {
    let mut m = model.trim().to_ascii_lowercase();
    if let Some(i) = m.rfind('/') {
        m.drain(..=i);
    }
    if let Some(i) = m.find("anthropic.") {
        m.drain(..i + "anthropic.".len());
    }
    if let Some(i) = m.find('@') {
        m.truncate(i);
    }
    if let Some(i) = m.rfind("-v")
        && let Some((major, minor)) = m[i + 2..].split_once(':')
        && !major.is_empty()
        && major.bytes().all(|b| b.is_ascii_digit())
        && minor.bytes().all(|b| b.is_ascii_digit())
    {
        m.truncate(i);
    }
    if let Some(stripped) = m.strip_suffix("-latest") {
        m.truncate(stripped.len());
    }
    let b = m.as_bytes();
    if b.len() > 9 && b[b.len() - 9] == b'-' && b[b.len() - 8..].iter().all(u8::is_ascii_digit) {
        m.truncate(b.len() - 9);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_match_with_and_without_their_decorations() {
        for name in [
            "claude-opus-4-1-20250805",
            "claude-opus-4-1",
            "anthropic/claude-opus-4-1",
            "us.anthropic.claude-opus-4-1-20250805-v1:0",
            "claude-opus-4-1@20250805",
            "Claude-Opus-4-1-20250805",
        ] {
            assert_eq!(normalize_model(name), "claude-opus-4-1", "{name}");
        }
        assert_eq!(normalize_model("claude-opus-4-20250514"), "claude-opus-4");
        assert_eq!(
            normalize_model("claude-3-5-haiku-20241022"),
            "claude-3-5-haiku"
        );
        let p = Pricing::builtin();
        assert_eq!(p.lookup("claude-sonnet-4-5-20250929").unwrap().input, 3.0);
        assert_eq!(p.lookup("claude-opus-4-20250514").unwrap().input, 15.0);
        assert_eq!(p.lookup("claude-opus-4-5-20251101").unwrap().input, 5.0);
        assert!(p.lookup("gpt-4o").is_none());
        assert!(p.lookup("<synthetic>").is_none());
    }

    #[test]
    fn cost_uses_the_cache_split_and_the_200k_tier() {
        let p = Pricing::builtin();
        let opus = p.lookup("claude-opus-4-1").unwrap();
        let t = Tokens {
            input: 1_000,
            output: 2_000,
            cache_write_5m: 10_000,
            cache_write_1h: 4_000,
            cache_read: 100_000,
        };
        // 1000*15 + 2000*75 + 10000*18.75 + 4000*30 + 100000*1.5 = 622500 per million
        assert!((opus.cost(&t) - 0.6225).abs() < 1e-12);
        let sonnet = p.lookup("claude-sonnet-4-5").unwrap();
        let small = Tokens {
            input: 100,
            output: 1_000,
            cache_write_5m: 0,
            cache_write_1h: 0,
            cache_read: 199_900,
        };
        // exactly 200k prompt: base rates. 100*3 + 1000*15 + 199900*0.3 = 75270
        assert!((sonnet.cost(&small) - 0.07527).abs() < 1e-12);
        let big = Tokens {
            cache_read: 199_901,
            ..small
        };
        // 200001 prompt: tier. 100*6 + 1000*22.5 + 199901*0.6 = 143040.6
        assert!((sonnet.cost(&big) - 0.1430406).abs() < 1e-12);
    }

    #[test]
    fn overrides_merge_and_new_models_need_every_price() {
        let mut o = BTreeMap::new();
        o.insert(
            "claude-opus-4-1-20250805".to_string(),
            PriceOverride {
                input: Some(1.0),
                ..PriceOverride::default()
            },
        );
        let p = Pricing::with_overrides(&o).unwrap();
        let opus = p.lookup("claude-opus-4-1").unwrap();
        assert_eq!((opus.input, opus.output), (1.0, 75.0));
        o.insert(
            "my-model".into(),
            PriceOverride {
                input: Some(1.0),
                ..PriceOverride::default()
            },
        );
        let err = Pricing::with_overrides(&o).unwrap_err();
        assert!(err.to_string().contains("my-model"), "{err}");
    }
}
