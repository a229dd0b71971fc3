//! Resource names and ARNs. These must match the names the existing API
//! creates byte for byte, or the worker would create a second delivery source
//! for a distribution the API already enabled.

use sha2::{Digest, Sha256};

use crate::ids::{AccountId, DistributionId, ImsOrgId};

/// CloudWatch Logs refuses delivery source names longer than this.
pub const MAX_DELIVERY_SOURCE_NAME: usize = 60;

/// Characters of the readable name kept in front of the hash when a name is
/// cut: 47 + `-` + 12 hex digits = 60.
const CUT_PREFIX_LEN: usize = 47;

/// Hex digits of the SHA-256 of the full name appended to a cut name; 48 bits
/// make two org/distribution pairs sharing a 47-character prefix collide with
/// negligible probability.
const CUT_HASH_HEX_LEN: usize = 12;

/// `{prefix}-{safeOrg}-{distributionId}`, cut to 60 characters
/// deterministically when longer: its first 47 characters, `-`, then the first
/// 12 hex digits of the SHA-256 of the full name.
pub fn delivery_source_name(prefix: &str, org: &ImsOrgId, distribution: &DistributionId) -> String {
    let full = format!("{prefix}-{}-{}", org.safe(), distribution.as_str());
    if full.len() <= MAX_DELIVERY_SOURCE_NAME {
        return full;
    }
    let digest = hex::encode(Sha256::digest(full.as_bytes()));
    // Every part of the name is ASCII (validated), so byte slicing is on
    // character boundaries.
    format!("{}-{}", &full[..CUT_PREFIX_LEN], &digest[..CUT_HASH_HEX_LEN])
}

/// The org's delivery destination, owned by our destination account.
pub fn destination_arn(region: &str, destination_account: &AccountId, org: &ImsOrgId) -> String {
    format!(
        "arn:aws:logs:{region}:{destination_account}:delivery-destination:cdn-logs-{}",
        org.safe()
    )
}

/// The distribution as CloudWatch Logs names it in `PutDeliverySource`.
pub fn distribution_arn(account: &AccountId, distribution: &DistributionId) -> String {
    format!("arn:aws:cloudfront::{account}:distribution/{distribution}")
}

/// The connector role the worker assumes in a customer account.
pub fn connector_role_arn(account: &AccountId, role_name: &str) -> String {
    format!("arn:aws:iam::{account}:role/{role_name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(raw: &str) -> ImsOrgId {
        ImsOrgId::parse(raw).unwrap()
    }

    fn dist(raw: &str) -> DistributionId {
        DistributionId::parse(raw).unwrap()
    }

    #[test]
    fn short_names_are_kept_whole() {
        let name = delivery_source_name(
            "llmo-cf",
            &org("8C6043F15F43B6390A49401A@AdobeOrg"),
            &dist("EDFDVBD6EXAMPLE"),
        );
        assert_eq!(name, "llmo-cf-8c6043f15f43b6390a49401a-EDFDVBD6EXAMPLE");
        assert_eq!(name.len(), 48);
    }

    #[test]
    fn a_name_of_exactly_sixty_characters_is_not_cut() {
        // 7 + 1 + 37 + 1 + 14 = 60
        let name = delivery_source_name("llmo-cf", &org(&"a".repeat(37)), &dist("E1234567890123"));
        assert_eq!(name, format!("llmo-cf-{}-E1234567890123", "a".repeat(37)));
        assert_eq!(name.len(), 60);
    }

    #[test]
    fn long_names_are_cut_to_sixty_with_a_hash_of_the_full_name() {
        let long_org = org("0123456789ABCDEF0123456789ABCDEF01234567@AdobeOrg");
        let name = delivery_source_name("llmo-cf", &long_org, &dist("EDFDVBD6EXAMPLE"));
        let full = "llmo-cf-0123456789abcdef0123456789abcdef01234567-EDFDVBD6EXAMPLE";
        let digest = hex::encode(Sha256::digest(full.as_bytes()));
        assert_eq!(name.len(), 60);
        assert_eq!(&name[..47], &full[..47]);
        assert_eq!(&name[47..48], "-");
        assert_eq!(&name[48..], &digest[..12]);
        // Pinned so a change to the algorithm cannot pass unnoticed.
        assert_eq!(name, "llmo-cf-0123456789abcdef0123456789abcdef0123456-04d9a1ea76d6");
    }

    #[test]
    fn cut_names_differ_for_distributions_sharing_a_prefix() {
        let long_org = org(&"b".repeat(50));
        let one = delivery_source_name("llmo-cf", &long_org, &dist("EAAAAAAAAAAAAA"));
        let two = delivery_source_name("llmo-cf", &long_org, &dist("EAAAAAAAAAAAAB"));
        assert_ne!(one, two);
        assert_eq!(one.len(), 60);
    }

    #[test]
    fn arns_follow_the_contract() {
        let account = AccountId::parse("123456789012").unwrap();
        let o = org("8C6043F15F43B6390A49401A@AdobeOrg");
        assert_eq!(
            destination_arn("us-east-1", &account, &o),
            "arn:aws:logs:us-east-1:123456789012:delivery-destination:cdn-logs-8c6043f15f43b6390a49401a"
        );
        assert_eq!(
            distribution_arn(&account, &dist("EDFDVBD6EXAMPLE")),
            "arn:aws:cloudfront::123456789012:distribution/EDFDVBD6EXAMPLE"
        );
        assert_eq!(
            connector_role_arn(&account, "AdobeLLMOptimizerCloudFrontConnectorRole"),
            "arn:aws:iam::123456789012:role/AdobeLLMOptimizerCloudFrontConnectorRole"
        );
    }
}
