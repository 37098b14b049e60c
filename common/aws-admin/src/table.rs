//! The DynamoDB tables: jobs, and the worker registry. Both are keyed by the string `id` alone,
//! on-demand, tagged with the stack and their role (`jobs`, `workers`). The jobs table also has
//! the indexes that list a tenant's jobs and find due webhooks, and a TTL that deletes expired
//! records (see `minimoto_aws::jobs`).

use std::{collections::HashMap, time::Duration};

use aws_config::SdkConfig;
use aws_sdk_dynamodb::{
    Client,
    types::{
        AttributeDefinition, BillingMode, CreateGlobalSecondaryIndexAction, GlobalSecondaryIndex,
        GlobalSecondaryIndexUpdate, IndexStatus, KeySchemaElement, KeyType, Projection,
        ProjectionType, ScalarAttributeType, TableDescription, TableStatus, Tag,
        TimeToLiveSpecification, TimeToLiveStatus,
    },
};
use minimoto_aws::{jobs, sdk_error};
use minimoto_common::error::{Error, Result};

use crate::{Action, Found, Kind, desired_tags, missing_tags};

const SERVICE: &str = "dynamodb";
/// The key the job store and the worker registry read and write (see `minimoto_aws::jobs` and
/// `minimoto_aws::registry`).
const KEY: &str = "id";

fn tags(pairs: impl IntoIterator<Item = (&'static str, String)>) -> Result<Vec<Tag>> {
    pairs
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::Invalid(e.to_string()))
}

/// Creates the jobs table (on-demand billing, tagged with the stack) and waits until it is
/// active. An existing table gets missing tags; one keyed otherwise than by `id` is a
/// `Conflict` (the job store could not use it), and one of another stack too. Billing of an
/// existing table is left as its owner chose.
pub async fn ensure_table(config: &SdkConfig, table: &str, stack: &str) -> Result<Action> {
    let action = ensure_keyed_table(config, table, stack, Kind::Table, &INDEXES).await?;
    let client = Client::new(config);
    let mut added = ensure_indexes(&client, table).await?;
    if ensure_ttl(&client, table).await? {
        added.push(format!("TTL on {}", jobs::EXPIRES));
    }
    Ok(match (action, added.is_empty()) {
        (action, true) => action,
        (Action::Created, false) => Action::Created,
        (Action::Updated(mut what), false) => {
            what.extend(added);
            Action::Updated(what)
        }
        (_, false) => Action::Updated(added),
    })
}

/// Turns on the table's TTL on [`jobs::EXPIRES`] (the job store writes when each record
/// expires there; DynamoDB deletes it some time after); true if it was off.
async fn ensure_ttl(client: &Client, table: &str) -> Result<bool> {
    let current = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .map_err(|e| sdk_error(SERVICE, &format!("read the TTL of table {table}"), e))?;
    let on = current.time_to_live_description().is_some_and(|d| {
        d.attribute_name() == Some(jobs::EXPIRES)
            && matches!(
                d.time_to_live_status(),
                Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
            )
    });
    if on {
        return Ok(false);
    }
    let spec = TimeToLiveSpecification::builder()
        .attribute_name(jobs::EXPIRES)
        .enabled(true)
        .build()
        .map_err(|e| Error::Invalid(e.to_string()))?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(spec)
        .send()
        .await
        .map_err(|e| sdk_error(SERVICE, &format!("turn on the TTL of table {table}"), e))?;
    Ok(true)
}

/// A global secondary index of the jobs table.
#[derive(Debug)]
struct Index {
    name: &'static str,
    partition: &'static str,
    /// The sort attribute and its type.
    sort: (&'static str, ScalarAttributeType),
    /// Whether it projects the whole item (a listing reads the records from the index) or the
    /// keys only (the deliverer re-reads each job from the table anyway).
    whole_items: bool,
}

/// The jobs table's indexes.
const INDEXES: [Index; 3] = [
    Index {
        name: jobs::BY_TENANT,
        partition: jobs::TENANT,
        sort: (KEY, ScalarAttributeType::S),
        whole_items: true,
    },
    Index {
        name: jobs::BY_TENANT_STATUS,
        partition: jobs::TENANT_STATUS,
        sort: (KEY, ScalarAttributeType::S),
        whole_items: true,
    },
    Index {
        name: jobs::BY_HOOK_DUE,
        partition: jobs::HOOK_SHARD,
        sort: (jobs::HOOK_DUE, ScalarAttributeType::N),
        whole_items: false,
    },
];

impl Index {
    fn projection(&self) -> Projection {
        Projection::builder()
            .projection_type(if self.whole_items {
                ProjectionType::All
            } else {
                ProjectionType::KeysOnly
            })
            .build()
    }

    /// The definitions of its attributes other than the table's key.
    fn attributes(&self) -> Result<Vec<AttributeDefinition>> {
        let mut out = vec![attribute(self.partition)?];
        if self.sort.0 != KEY {
            out.push(typed_attribute(self.sort.0, self.sort.1.clone())?);
        }
        Ok(out)
    }

    fn key_schema(&self) -> Result<Vec<KeySchemaElement>> {
        Ok(vec![
            key(self.partition, KeyType::Hash)?,
            key(self.sort.0, KeyType::Range)?,
        ])
    }
}

fn attribute(name: &str) -> Result<AttributeDefinition> {
    typed_attribute(name, ScalarAttributeType::S)
}

fn typed_attribute(name: &str, kind: ScalarAttributeType) -> Result<AttributeDefinition> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(kind)
        .build()
        .map_err(|e| Error::Invalid(e.to_string()))
}

fn key(name: &str, kind: KeyType) -> Result<KeySchemaElement> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .map_err(|e| Error::Invalid(e.to_string()))
}

/// Adds the indexes a table made before them lacks, one at a time (DynamoDB builds one per
/// table at once, and the table is active again while it builds), each after every index is
/// active; the names of those added.
async fn ensure_indexes(client: &Client, table: &str) -> Result<Vec<String>> {
    let mut added = Vec::new();
    for index in &INDEXES {
        let name = index.name;
        let description = wait_until_indexes_active(client, table).await?;
        let exists = description
            .global_secondary_indexes()
            .iter()
            .any(|i| i.index_name() == Some(name));
        if exists {
            continue;
        }
        let create = CreateGlobalSecondaryIndexAction::builder()
            .index_name(name)
            .set_key_schema(Some(index.key_schema()?))
            .projection(index.projection())
            .build()
            .map_err(|e| Error::Invalid(e.to_string()))?;
        client
            .update_table()
            .table_name(table)
            .set_attribute_definitions(Some([vec![attribute(KEY)?], index.attributes()?].concat()))
            .global_secondary_index_updates(
                GlobalSecondaryIndexUpdate::builder().create(create).build(),
            )
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, &format!("add index {name} to {table}"), e))?;
        added.push(format!("index {name}"));
    }
    if !added.is_empty() {
        wait_until_indexes_active(client, table).await?;
    }
    Ok(added)
}

/// Waits until the table and all its indexes are active; its description then.
async fn wait_until_indexes_active(client: &Client, table: &str) -> Result<TableDescription> {
    for _ in 0..600 {
        let description = wait_until_active(client, table).await?;
        let building = description
            .global_secondary_indexes()
            .iter()
            .any(|i| i.index_status() != Some(&IndexStatus::Active));
        if !building {
            return Ok(description);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Err(Error::backend(
        SERVICE,
        format!("the indexes of table {table} were not active within 10 minutes"),
    ))
}

/// Creates the worker registry's table, as [`ensure_table`] the jobs table (no TTL: workers
/// are removed by the scaler, decisions are a fixed ring of items).
pub async fn ensure_workers_table(config: &SdkConfig, table: &str, stack: &str) -> Result<Action> {
    ensure_keyed_table(config, table, stack, Kind::WorkersTable, &[]).await
}

/// Creates a table keyed by `id`, with `indexes` (made with the table: DynamoDB builds only one
/// index at a time on an existing table).
async fn ensure_keyed_table(
    config: &SdkConfig,
    table: &str,
    stack: &str,
    kind: Kind,
    indexes: &[Index],
) -> Result<Action> {
    let client = Client::new(config);
    let mut create = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute(KEY)?)
        .key_schema(key(KEY, KeyType::Hash)?)
        .set_tags(Some(tags(desired_tags(stack, kind))?));
    for index in indexes {
        for definition in index.attributes()? {
            create = create.attribute_definitions(definition);
        }
        create = create.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(index.name)
                .set_key_schema(Some(index.key_schema()?))
                .projection(index.projection())
                .build()
                .map_err(|e| Error::Invalid(e.to_string()))?,
        );
    }
    let created = create.send().await;
    let created = match created {
        Ok(_) => true,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception()) =>
        {
            false
        }
        Err(e) => return Err(sdk_error(SERVICE, &format!("create table {table}"), e)),
    };
    let description = wait_until_active(&client, table).await?;
    if created {
        return Ok(Action::Created);
    }
    let keys: Vec<_> = description
        .key_schema()
        .iter()
        .map(|k| (k.attribute_name(), k.key_type()))
        .collect();
    if keys != [(KEY, &KeyType::Hash)] {
        return Err(Error::Conflict(format!(
            "DynamoDB table `{table}` exists with another key ({keys:?}); minimoto needs a table \
             keyed by the string `{KEY}` alone: pick another name"
        )));
    }
    let arn = table_arn(&description, table)?;
    let missing = missing_tags(kind, table, stack, &table_tags(&client, arn).await?)?;
    if missing.is_empty() {
        return Ok(Action::Unchanged);
    }
    client
        .tag_resource()
        .resource_arn(arn)
        .set_tags(Some(tags(missing)?))
        .send()
        .await
        .map_err(|e| sdk_error(SERVICE, &format!("tag table {table}"), e))?;
    Ok(Action::Updated(vec!["tags".into()]))
}

async fn wait_until_active(client: &Client, table: &str) -> Result<TableDescription> {
    for _ in 0..120 {
        let out = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, &format!("describe table {table}"), e))?;
        if let Some(description) = out.table
            && description.table_status() == Some(&TableStatus::Active)
        {
            return Ok(description);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Err(Error::backend(
        SERVICE,
        format!("table {table} did not become active within 2 minutes"),
    ))
}

fn table_arn<'a>(description: &'a TableDescription, table: &str) -> Result<&'a str> {
    description
        .table_arn()
        .ok_or_else(|| Error::backend(SERVICE, format!("table {table}: no ARN")))
}

async fn table_tags(client: &Client, arn: &str) -> Result<HashMap<String, String>> {
    let mut tags = HashMap::new();
    let mut token = None;
    loop {
        let out = client
            .list_tags_of_resource()
            .resource_arn(arn)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, &format!("list the tags of {arn}"), e))?;
        tags.extend(
            out.tags()
                .iter()
                .map(|t| (t.key().to_owned(), t.value().to_owned())),
        );
        match out.next_token {
            Some(next) => token = Some(next),
            None => return Ok(tags),
        }
    }
}

/// The tables in the configured region, with their tags (for `cleanup`). A table deleted while
/// listing is skipped.
pub async fn find_tables(config: &SdkConfig) -> Result<Vec<Found>> {
    let client = Client::new(config);
    let mut found = Vec::new();
    let mut start = None;
    loop {
        let page = client
            .list_tables()
            .set_exclusive_start_table_name(start.take())
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, "list tables", e))?;
        for name in page.table_names() {
            let description = match client.describe_table().table_name(name).send().await {
                Ok(out) => out.table,
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_resource_not_found_exception()) =>
                {
                    continue;
                }
                Err(e) => return Err(sdk_error(SERVICE, &format!("describe table {name}"), e)),
            };
            let Some(description) = description else {
                continue;
            };
            let tags = table_tags(&client, table_arn(&description, name)?).await?;
            found.push(Found {
                kind: Kind::Table,
                name: name.clone(),
                id: name.clone(),
                tags,
            });
        }
        match page.last_evaluated_table_name {
            Some(last) => start = Some(last),
            None => return Ok(found),
        }
    }
}

/// Deletes a table; false if it did not exist.
pub async fn delete_table(config: &SdkConfig, table: &str) -> Result<bool> {
    match Client::new(config)
        .delete_table()
        .table_name(table)
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(false)
        }
        Err(e) => Err(sdk_error(SERVICE, &format!("delete table {table}"), e)),
    }
}
