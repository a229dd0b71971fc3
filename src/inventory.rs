//! What an account already has: its delivery sources and deliveries, listed
//! once so that many distributions can be checked without a call each.

use std::collections::{HashMap, HashSet};

use crate::aws::connector::CustomerClients;
use crate::error::Failure;
use crate::limiter::Pace;

/// Page size of DescribeDeliverySources and DescribeDeliveries; the most AWS
/// returns per page.
pub const PAGE_LIMIT: i32 = 50;

/// Delivery sources and deliveries of one account, at one point in time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inventory {
    sources: HashSet<String>,
    /// Delivery ids by (delivery source name, destination ARN).
    deliveries: HashMap<(String, String), String>,
}

impl Inventory {
    /// Lists every delivery source and delivery of the account, paced.
    ///
    /// Costs one call per 50 sources plus one per 50 deliveries.
    ///
    /// # Errors
    ///
    /// The first failed call, classified.
    pub async fn load(customer: &CustomerClients, pace: &Pace<'_>) -> Result<Self, Failure> {
        let mut inventory = Self::default();

        let mut next_token = None;
        loop {
            pace.ready("DescribeDeliverySources").await?;
            let page = customer
                .logs
                .describe_delivery_sources()
                .limit(PAGE_LIMIT)
                .set_next_token(next_token)
                .send()
                .await
                .map_err(|e| observed(pace, Failure::from_sdk("DescribeDeliverySources", e)))?;
            inventory
                .sources
                .extend(page.delivery_sources().iter().filter_map(|s| s.name().map(str::to_owned)));
            next_token = page.next_token().filter(|t| !t.is_empty()).map(str::to_owned);
            if next_token.is_none() {
                break;
            }
        }

        let mut next_token = None;
        loop {
            pace.ready("DescribeDeliveries").await?;
            let page = customer
                .logs
                .describe_deliveries()
                .limit(PAGE_LIMIT)
                .set_next_token(next_token)
                .send()
                .await
                .map_err(|e| observed(pace, Failure::from_sdk("DescribeDeliveries", e)))?;
            for delivery in page.deliveries() {
                if let (Some(source), Some(destination), Some(id)) = (
                    delivery.delivery_source_name(),
                    delivery.delivery_destination_arn(),
                    delivery.id(),
                ) {
                    inventory
                        .deliveries
                        .insert((source.to_owned(), destination.to_owned()), id.to_owned());
                }
            }
            next_token = page.next_token().filter(|t| !t.is_empty()).map(str::to_owned);
            if next_token.is_none() {
                break;
            }
        }
        Ok(inventory)
    }

    pub fn has_source(&self, name: &str) -> bool {
        self.sources.contains(name)
    }

    /// The id of the delivery from `source` to `destination`, if any.
    pub fn delivery(&self, source: &str, destination: &str) -> Option<&str> {
        self.deliveries.get(&(source.to_owned(), destination.to_owned())).map(String::as_str)
    }
}

/// Looks for the delivery from `source` to `destination`, page by page,
/// stopping at the first match.
///
/// # Errors
///
/// The first failed call, classified.
pub async fn find_delivery(
    customer: &CustomerClients,
    pace: &Pace<'_>,
    source: &str,
    destination: &str,
) -> Result<Option<String>, Failure> {
    let mut next_token = None;
    loop {
        pace.ready("DescribeDeliveries").await?;
        let page = customer
            .logs
            .describe_deliveries()
            .limit(PAGE_LIMIT)
            .set_next_token(next_token)
            .send()
            .await
            .map_err(|e| observed(pace, Failure::from_sdk("DescribeDeliveries", e)))?;
        let found = page.deliveries().iter().find(|d| {
            d.delivery_source_name() == Some(source)
                && d.delivery_destination_arn() == Some(destination)
        });
        if let Some(delivery) = found {
            return Ok(Some(delivery.id().unwrap_or_default().to_owned()));
        }
        next_token = page.next_token().filter(|t| !t.is_empty()).map(str::to_owned);
        if next_token.is_none() {
            return Ok(None);
        }
    }
}

/// Tells the limiter about a failed paced call and passes the failure on.
pub(crate) fn observed(pace: &Pace<'_>, failure: Failure) -> Failure {
    pace.observe(&failure);
    failure
}
