//! Properties of delivery source names over generated org and distribution
//! ids: at most 60 characters of `[A-Za-z0-9_-]`, deterministic, and
//! distinct for distinct (safe org, distribution) pairs, cut or not.

use cdn_log_delivery::ids::{DistributionId, ImsOrgId};
use cdn_log_delivery::names::{MAX_DELIVERY_SOURCE_NAME, delivery_source_name};
use proptest::prelude::*;

fn org() -> impl Strategy<Value = ImsOrgId> {
    ("[A-Za-z0-9_-]{1,90}", any::<bool>()).prop_filter_map(
        "needs a usable safe form",
        |(raw, suffix)| {
            let raw = if suffix { format!("{raw}@AdobeOrg") } else { raw };
            ImsOrgId::parse(&raw).ok()
        },
    )
}

fn distribution() -> impl Strategy<Value = DistributionId> {
    "[A-Z0-9]{10,20}".prop_map(|raw| DistributionId::parse(&raw).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn names_are_short_plain_and_deterministic(org in org(), dist in distribution()) {
        let name = delivery_source_name("llmo-cf", &org, &dist);
        prop_assert!(name.len() <= MAX_DELIVERY_SOURCE_NAME, "{name}");
        prop_assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'), "{name}");
        prop_assert_eq!(&name, &delivery_source_name("llmo-cf", &org, &dist));
        if name.len() < MAX_DELIVERY_SOURCE_NAME {
            prop_assert_eq!(name, format!("llmo-cf-{}-{}", org.safe(), dist.as_str()));
        }
    }

    #[test]
    fn distinct_inputs_give_distinct_names(
        a in (org(), distribution()),
        b in (org(), distribution()),
    ) {
        prop_assume!((a.0.safe(), a.1.as_str()) != (b.0.safe(), b.1.as_str()));
        prop_assert_ne!(
            delivery_source_name("llmo-cf", &a.0, &a.1),
            delivery_source_name("llmo-cf", &b.0, &b.1)
        );
    }

    #[test]
    fn orgs_sharing_a_long_prefix_still_differ(
        prefix in "[a-z0-9]{60}",
        tail_a in "[a-z0-9]{1,8}",
        tail_b in "[a-z0-9]{1,8}",
        dist in distribution(),
    ) {
        prop_assume!(tail_a != tail_b);
        let a = ImsOrgId::parse(&format!("{prefix}{tail_a}")).unwrap();
        let b = ImsOrgId::parse(&format!("{prefix}{tail_b}")).unwrap();
        let (name_a, name_b) = (delivery_source_name("llmo-cf", &a, &dist), delivery_source_name("llmo-cf", &b, &dist));
        prop_assert_eq!(name_a.len(), MAX_DELIVERY_SOURCE_NAME);
        prop_assert_ne!(name_a, name_b);
    }
}
