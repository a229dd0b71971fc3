//! Validated identifiers shared by the job contract, the configuration and the
//! AWS plumbing.
//!
//! Each type can only be built through its `parse` function, so code that holds
//! one never has to validate it again.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

/// Why a value was refused; the caller adds the field name.
pub type Rule = &'static str;

/// A 12-digit AWS account id.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct AccountId(String);

impl AccountId {
    /// The rule as it appears in rejection reasons.
    pub const RULE: Rule = "must be a string of exactly 12 ASCII digits";

    /// Accepts exactly twelve ASCII digits.
    pub fn parse(value: &str) -> Result<Self, Rule> {
        if value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(value.to_owned()))
        } else {
            Err(Self::RULE)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountId({})", self.0)
    }
}

/// The secret the customer's connector role demands in `sts:ExternalId`.
///
/// It is a secret: `Debug` redacts it, it has no `Display`, and it is only
/// revealed to STS and to the jobs queue (fan-out must hand it on).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ExternalId(String);

impl ExternalId {
    pub const RULE: Rule = "must be 2-1224 characters of [A-Za-z0-9_+=,.@:/-]";

    /// Accepts the character set and length STS allows for `ExternalId`.
    pub fn parse(value: &str) -> Result<Self, Rule> {
        let allowed = |b: u8| b.is_ascii_alphanumeric() || b"_+=,.@:/-".contains(&b);
        if (2..=1224).contains(&value.len()) && value.bytes().all(allowed) {
            Ok(Self(value.to_owned()))
        } else {
            Err(Self::RULE)
        }
    }

    /// The secret itself, for STS and for re-serialising a job.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ExternalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ExternalId(<redacted>)")
    }
}

impl serde::Serialize for ExternalId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// A CloudFront distribution id such as `EDFDVBD6EXAMPLE`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct DistributionId(String);

impl DistributionId {
    /// Ten to twenty upper-case letters or digits. AWS documents 14-character
    /// ids and uses 15-character ones in its own examples, so the range is
    /// wider than any id seen so far rather than exactly today's length.
    pub const RULE: Rule = "must match ^[A-Z0-9]{10,20}$";

    pub fn parse(value: &str) -> Result<Self, Rule> {
        let allowed = |b: u8| b.is_ascii_uppercase() || b.is_ascii_digit();
        if (10..=20).contains(&value.len()) && value.bytes().all(allowed) {
            Ok(Self(value.to_owned()))
        } else {
            Err(Self::RULE)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DistributionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An IMS organisation id, kept as given (it is echoed back to the API in
/// fan-out jobs) together with its safe form used in resource names.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ImsOrgId {
    raw: String,
    safe: String,
}

impl ImsOrgId {
    pub const RULE: Rule = "must have a non-empty safe form of [a-z0-9_-] (drop a trailing \
                            @AdobeOrg, remove every @, lowercase)";

    /// Accepts an org id whose safe form (see [`safe_org`]) is non-empty and
    /// made only of `[a-z0-9_-]`.
    pub fn parse(value: &str) -> Result<Self, Rule> {
        let safe = safe_org(value);
        let allowed =
            |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-';
        if !safe.is_empty() && safe.bytes().all(allowed) {
            Ok(Self { raw: value.to_owned(), safe })
        } else {
            Err(Self::RULE)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The form used in delivery source and destination names.
    pub fn safe(&self) -> &str {
        &self.safe
    }
}

impl serde::Serialize for ImsOrgId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.raw)
    }
}

/// A string schema with a pattern, for the contract's JSON Schema.
macro_rules! string_schema {
    ($ty:ty, $name:literal, $schema:tt) => {
        impl JsonSchema for $ty {
            fn schema_name() -> Cow<'static, str> {
                $name.into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!($schema)
            }
        }
    };
}

string_schema!(AccountId, "AccountId", {
    "type": "string", "pattern": "^[0-9]{12}$", "description": "A 12-digit AWS account id."
});
string_schema!(ExternalId, "ExternalId", {
    "type": "string", "pattern": "^[A-Za-z0-9_+=,.@:/-]{2,1224}$",
    "description": "The connector role's sts:ExternalId. A secret: never logged or echoed."
});
string_schema!(DistributionId, "DistributionId", {
    "type": "string", "pattern": "^[A-Z0-9]{10,20}$", "description": "A CloudFront distribution id."
});
string_schema!(ImsOrgId, "ImsOrgId", {
    "type": "string", "minLength": 1,
    "description": "An IMS org id such as 8C6043F15F43B6390A49401A@AdobeOrg. Without a trailing @AdobeOrg and every other @, lowercased, it must be non-empty [a-z0-9_-]."
});

/// The org id as the existing API turns it into resource names: drop one
/// trailing `@AdobeOrg`, remove every remaining `@`, lowercase.
pub fn safe_org(ims_org_id: &str) -> String {
    let trimmed = ims_org_id.strip_suffix("@AdobeOrg").unwrap_or(ims_org_id);
    trimmed.replace('@', "").to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_id_is_exactly_twelve_ascii_digits() {
        assert!(AccountId::parse("123456789012").is_ok());
        for bad in ["12345678901", "1234567890123", "12345678901a", "１２３４５６７８９０１２", ""]
        {
            assert_eq!(AccountId::parse(bad), Err(AccountId::RULE), "{bad:?}");
        }
    }

    #[test]
    fn external_id_length_and_charset_follow_sts() {
        assert!(ExternalId::parse("ab").is_ok());
        assert!(ExternalId::parse(&"x".repeat(1224)).is_ok());
        assert!(ExternalId::parse("a").is_err());
        assert!(ExternalId::parse(&"x".repeat(1225)).is_err());
        assert!(ExternalId::parse("with space").is_err());
        assert!(ExternalId::parse("Az09_+=,.@:/-").is_ok());
    }

    #[test]
    fn external_id_debug_is_redacted() {
        let id = ExternalId::parse("super-secret-value").unwrap();
        assert!(!format!("{id:?}").contains("super-secret-value"));
    }

    #[test]
    fn distribution_id_accepts_documented_lengths() {
        assert!(DistributionId::parse("EDFDVBD6EXAMPLE").is_ok());
        assert!(DistributionId::parse("E1234567890123").is_ok());
        assert!(DistributionId::parse("E12345678").is_err());
        assert!(DistributionId::parse(&"E".repeat(21)).is_err());
        assert!(DistributionId::parse("edfdvbd6example").is_err());
    }

    #[test]
    fn safe_org_matches_the_existing_api() {
        assert_eq!(safe_org("8C6043F15F43B6390A49401A@AdobeOrg"), "8c6043f15f43b6390a49401a");
        assert_eq!(safe_org("A@B@AdobeOrg"), "ab");
        assert_eq!(safe_org("Org@AdobeOrg@AdobeOrg"), "orgadobeorg");
        assert_eq!(safe_org("plain"), "plain");
    }

    #[test]
    fn ims_org_needs_a_usable_safe_form() {
        assert!(ImsOrgId::parse("8C6043F15F43B6390A49401A@AdobeOrg").is_ok());
        assert!(ImsOrgId::parse("@AdobeOrg").is_err());
        assert!(ImsOrgId::parse("org name@AdobeOrg").is_err());
        assert!(ImsOrgId::parse("ÖRG@AdobeOrg").is_err());
    }
}
