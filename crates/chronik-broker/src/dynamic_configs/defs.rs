//! A dynamic config's definition (name, Kafka default, value type) and its value check.

use chronik_storage::config::InvalidConfig;

/// The type of a dynamic config's value, as Kafka's `ConfigDef` types it.
#[derive(Debug, Clone, Copy)]
pub enum ValueKind {
    Int { min: i64, max: i64 },
    Long { min: i64 },
    Double,
    Str,
    List,
    OneOf(&'static [&'static str]),
}

/// A dynamic config Chronik accepts.
#[derive(Debug, Clone, Copy)]
pub struct DynamicConfigDef {
    pub name: &'static str,
    /// Kafka's default (`None`: Kafka's default is null).
    pub default: Option<&'static str>,
    pub kind: ValueKind,
}

impl DynamicConfigDef {
    /// Kafka's `ConfigType` code for DescribeConfigs v3+.
    pub fn type_code(&self) -> i8 {
        match self.kind {
            ValueKind::Int { .. } => 3,
            ValueKind::Long { .. } => 5,
            ValueKind::Double => 6,
            ValueKind::Str | ValueKind::OneOf(_) => 2,
            ValueKind::List => 7,
        }
    }

    pub fn is_list(&self) -> bool {
        matches!(self.kind, ValueKind::List)
    }

    /// Checks `value` against the type, with Kafka's wording.
    pub fn validate(&self, value: &str) -> Result<(), InvalidConfig> {
        let bad = |reason: String| InvalidConfig {
            name: self.name.to_string(),
            value: value.to_string(),
            reason,
        };
        match self.kind {
            ValueKind::Int { min, max } => {
                let v: i64 = value
                    .trim()
                    .parse()
                    .map_err(|_| bad("Not a number of type INT".into()))?;
                if v < min || v > max {
                    return Err(bad(format!("Value must be in [{min}, {max}]")));
                }
            }
            ValueKind::Long { min } => {
                let v: i64 = value
                    .trim()
                    .parse()
                    .map_err(|_| bad("Not a number of type LONG".into()))?;
                if v < min {
                    return Err(bad(format!("Value must be at least {min}")));
                }
            }
            ValueKind::Double => {
                value
                    .trim()
                    .parse::<f64>()
                    .map_err(|_| bad("Not a number of type DOUBLE".into()))?;
            }
            ValueKind::Str | ValueKind::List => {}
            ValueKind::OneOf(allowed) => {
                if !allowed.contains(&value.trim()) {
                    return Err(bad(format!(
                        "String must be one of: {}",
                        allowed.join(", ")
                    )));
                }
            }
        }
        Ok(())
    }
}
