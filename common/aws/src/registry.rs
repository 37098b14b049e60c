//! [`WorkerRegistry`] on DynamoDB, in a table of its own (`<stack>-workers`, keyed by the string
//! `id`, created by `minimoto setup`).
//!
//! - A worker is one item: `id`, its last beat as JSON (`beat`), and the scaler's request `drain`
//!   (BOOL). A beat is one `UpdateItem` that sets `beat` alone and reads the whole item back
//!   (`ReturnValues=ALL_NEW`), so it can never overwrite a drain request and learns of one in the
//!   same round trip. A drain request is an `UpdateItem` of `drain` on an item that must exist.
//! - The scaler's last [`DECISIONS_KEPT`] decisions live in a ring of fixed slots
//!   (`decision#00` … `decision#19`, each with its `seq`), filled in turn by a counter item
//!   (`decision#seq`, incremented atomically with `ADD`): the table never grows with decisions.
//!   Workers are told apart from them by having a `beat`.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::{
    Client,
    types::{AttributeValue, KeysAndAttributes, ReturnValue},
};

use crate::{sdk_error, table::condition_failed};
use minimoto_common::{
    error::{Error, Result},
    fleet::{Beat, DECISIONS_KEPT, DecisionRecord, Directive, WorkerRecord},
    ports::WorkerRegistry,
};

const SERVICE: &str = "dynamodb";
/// What every non-worker item's id starts with.
const DECISION_PREFIX: &str = "decision#";
/// The counter item of the decision ring.
const DECISION_SEQ: &str = "decision#seq";

/// The DynamoDB adapter of [`WorkerRegistry`]. Cheap to clone (the SDK client is shared).
#[derive(Debug, Clone)]
pub struct DynamoRegistry {
    client: Client,
    table: String,
}

fn key(id: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([("id".to_owned(), AttributeValue::S(id.to_owned()))])
}

/// The item of the ring slot decision number `seq` (counted from 1) goes to.
fn slot_id(seq: u64) -> String {
    format!("{DECISION_PREFIX}{:02}", seq % DECISIONS_KEPT as u64)
}

fn decode_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::backend(
        SERVICE,
        format!("a worker registry item does not decode ({what}): {e}"),
    )
}

fn string<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> Result<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| decode_error(name, "missing or not a string"))
}

fn drain_of(item: &HashMap<String, AttributeValue>) -> bool {
    item.get("drain")
        .and_then(|v| v.as_bool().ok())
        .copied()
        .unwrap_or(false)
}

fn worker_of(item: &HashMap<String, AttributeValue>) -> Result<WorkerRecord> {
    Ok(WorkerRecord {
        beat: serde_json::from_str(string(item, "beat")?).map_err(|e| decode_error("beat", e))?,
        drain_requested: drain_of(item),
    })
}

fn decision_of(item: &HashMap<String, AttributeValue>) -> Result<(u64, DecisionRecord)> {
    let seq = item
        .get("seq")
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse::<u64>().ok())
        .ok_or_else(|| decode_error("seq", "missing or not a number"))?;
    let at = chrono::DateTime::parse_from_rfc3339(string(item, "at")?)
        .map_err(|e| decode_error("at", e))?
        .to_utc();
    let decision =
        serde_json::from_str(string(item, "decision")?).map_err(|e| decode_error("decision", e))?;
    Ok((seq, DecisionRecord { at, decision }))
}

impl DynamoRegistry {
    pub fn new(config: &SdkConfig, table: &str) -> Self {
        Self {
            client: Client::new(config),
            table: table.to_owned(),
        }
    }

    /// Fails with a message naming the table and saying that `minimoto setup` creates it when
    /// the table does not exist.
    pub async fn check(&self) -> Result<()> {
        crate::table::check_table(&self.client, &self.table, &[], || {
            format!(
                "DynamoDB workers table `{}` is not set up: run `minimoto setup` first \
                 (it creates the table)",
                self.table
            )
        })
        .await
    }
}

#[async_trait]
impl WorkerRegistry for DynamoRegistry {
    async fn beat(&self, beat: &Beat) -> Result<Directive> {
        if beat.id.starts_with(DECISION_PREFIX) || beat.id.is_empty() {
            return Err(Error::Invalid(format!(
                "worker id `{}`: must not be empty nor start with `{DECISION_PREFIX}`",
                beat.id
            )));
        }
        let record = serde_json::to_string(beat)
            .map_err(|e| Error::Invalid(format!("encode the beat of {}: {e}", beat.id)))?;
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(&beat.id)))
            // The beat alone: `drain` is the scaler's and survives every beat.
            .update_expression("SET beat = :beat")
            .expression_attribute_values(":beat", AttributeValue::S(record))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, &format!("write the beat of {}", beat.id), e))?;
        Ok(Directive {
            drain: out.attributes().is_some_and(drain_of),
        })
    }

    async fn list(&self) -> Result<Vec<WorkerRecord>> {
        let mut workers = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                // Workers have a beat; the decision ring's items have none.
                .filter_expression("attribute_exists(beat)")
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error(SERVICE, "list the workers", e))?;
            for item in page.items() {
                workers.push(worker_of(item)?);
            }
            match page.last_evaluated_key {
                Some(last) if !last.is_empty() => start = Some(last),
                _ => return Ok(workers),
            }
        }
    }

    async fn request_drain(&self, id: &str) -> Result<bool> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(id)))
            .update_expression("SET drain = :drain")
            .condition_expression("attribute_exists(beat)")
            .expression_attribute_values(":drain", AttributeValue::Bool(true))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(sdk_error(SERVICE, &format!("ask {id} to drain"), e)),
        }
    }

    async fn remove(&self, id: &str) -> Result<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(id)))
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, &format!("remove worker {id}"), e))?;
        Ok(())
    }

    async fn record_decision(&self, decision: &DecisionRecord) -> Result<()> {
        let body = serde_json::to_string(&decision.decision)
            .map_err(|e| Error::Invalid(format!("encode a decision: {e}")))?;
        // Two scalers recording at once each get their own number, and so their own slot.
        let counted = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(DECISION_SEQ)))
            .update_expression("ADD seq :one")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, "count a decision", e))?;
        let seq = counted
            .attributes()
            .and_then(|a| a.get("seq"))
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| decode_error("seq", "the counter returned no number"))?;
        let mut item = key(&slot_id(seq));
        item.insert("seq".into(), AttributeValue::N(seq.to_string()));
        item.insert("at".into(), AttributeValue::S(decision.at.to_rfc3339()));
        item.insert("decision".into(), AttributeValue::S(body));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, "record a decision", e))?;
        Ok(())
    }

    async fn decisions(&self) -> Result<Vec<DecisionRecord>> {
        let keys: Vec<_> = (0..DECISIONS_KEPT as u64)
            .map(|n| key(&slot_id(n)))
            .collect();
        let mut pending = Some(
            KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .consistent_read(true)
                .build()
                .map_err(|e| Error::Invalid(e.to_string()))?,
        );
        let mut kept = Vec::new();
        // BatchGetItem may answer part of the keys and hand back the rest as unprocessed.
        for _ in 0..10 {
            let Some(request) = pending.take() else { break };
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(|e| sdk_error(SERVICE, "read the decisions", e))?;
            if let Some(items) = out.responses().and_then(|r| r.get(&self.table)) {
                for item in items {
                    kept.push(decision_of(item)?);
                }
            }
            pending = out
                .unprocessed_keys
                .and_then(|mut u| u.remove(&self.table))
                .filter(|k| !k.keys().is_empty());
        }
        if pending.is_some() {
            return Err(Error::backend(
                SERVICE,
                "reading the decisions: keys still unprocessed after 10 tries",
            ));
        }
        kept.sort_by_key(|(seq, _)| std::cmp::Reverse(*seq));
        Ok(kept.into_iter().map(|(_, d)| d).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_fill_a_ring_of_fixed_slots() {
        assert_eq!(slot_id(1), "decision#01");
        assert_eq!(slot_id(20), "decision#00");
        assert_eq!(slot_id(21), "decision#01");
        let slots: std::collections::BTreeSet<_> = (1..=100).map(slot_id).collect();
        assert_eq!(slots.len(), DECISIONS_KEPT, "the table never grows");
        assert!(slots.iter().all(|s| s.starts_with(DECISION_PREFIX)));
        assert!(!slots.contains(DECISION_SEQ));
    }
}
