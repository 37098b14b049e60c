//! `minimoto setup` and `minimoto cleanup`: create and remove the AWS resources of a stack,
//! idempotently, so either can be run again after a partial failure.
//!
//! Every resource is tagged `minimoto:stack=<stack>` ([`STACK_TAG`], beside [`ROLE_TAG`]), and
//! `cleanup` finds what to delete by that tag, never by name alone: a resource that merely has
//! one of the stack's names is left alone (and reported), so overridden names and neighbouring
//! stacks stay safe.
//!
//! The EC2 side of a stack (the workers' launch template, and the instances cleanup terminates)
//! is set up by `minimoto_scaler::fleet::ec2::setup`, the one package that compiles the EC2 SDK;
//! it reports in the same [`Change`]s ([`Kind::LaunchTemplate`], [`Kind::Instance`]).
//!
//! The IAM policy of each binary is in `iam/`; a test keeps them in line with the SDK calls.

pub mod bucket;
pub mod queues;
pub mod table;

use std::{collections::HashMap, fmt};

use aws_config::SdkConfig;
use minimoto_aws::AwsSettings;
use minimoto_common::error::{Error, Result};

pub use bucket::BucketOptions;

/// The tag naming the stack a resource belongs to; `cleanup` deletes by it.
pub const STACK_TAG: &str = "minimoto:stack";
/// The tag naming what a resource is for within its stack (see [`Kind::role`]).
pub const ROLE_TAG: &str = "minimoto:role";

/// The kinds of resource a stack has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// Ordered as `cleanup` deletes: the workers' instances first (nothing of the stack is used
    /// any more), queues before the tables, the bucket (the slowest) last.
    Instance,
    LaunchTemplate,
    Queue,
    DeadLetterQueue,
    EventsQueue,
    Table,
    WorkersTable,
    Bucket,
}

impl Kind {
    /// The value of [`ROLE_TAG`].
    pub fn role(self) -> &'static str {
        match self {
            Kind::Bucket => "media",
            Kind::Table => "jobs",
            Kind::WorkersTable => "workers",
            Kind::Queue => "queue",
            Kind::DeadLetterQueue => "dead-letters",
            Kind::EventsQueue => "events",
            Kind::LaunchTemplate | Kind::Instance => "worker",
        }
    }

    /// The name `settings` gives this kind of resource. Instances have none (they are known by
    /// their ids and their tags alone): empty.
    pub fn name_in(self, settings: &AwsSettings) -> String {
        match self {
            Kind::Bucket => settings.bucket.clone(),
            Kind::Table => settings.table.clone(),
            Kind::WorkersTable => settings.workers_table.clone(),
            Kind::Queue => settings.queue.clone(),
            Kind::DeadLetterQueue => settings.dead_letter_queue(),
            Kind::EventsQueue => settings.events_queue.clone(),
            Kind::LaunchTemplate => launch_template_name(&settings.stack),
            Kind::Instance => String::new(),
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Bucket => "S3 bucket",
            Kind::Table | Kind::WorkersTable => "DynamoDB table",
            Kind::Queue => "SQS queue",
            Kind::DeadLetterQueue => "SQS dead-letter queue",
            Kind::EventsQueue => "SQS events queue",
            Kind::LaunchTemplate => "EC2 launch template",
            Kind::Instance => "EC2 instance",
        })
    }
}

/// The name of the stack's launch template for workers: `<stack>-worker`.
pub fn launch_template_name(stack: &str) -> String {
    format!("{stack}-worker")
}

/// What setup or cleanup did to one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Created,
    /// It existed; these parts of it were brought in line (e.g. "tags", "CORS rules").
    Updated(Vec<String>),
    /// It existed exactly as setup leaves it.
    Unchanged,
    Deleted,
    /// A dry run found it tagged with the stack.
    WouldDelete,
    /// Cleanup left it alone although it has a name of the stack: the reason.
    Kept(String),
}

/// One resource and what was done to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: Kind,
    pub name: String,
    pub action: Action,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Change { kind, name, action } = self;
        match action {
            Action::Created => write!(f, "created {kind} {name}"),
            Action::Updated(what) => write!(f, "updated {kind} {name}: {}", what.join(", ")),
            Action::Unchanged => write!(f, "unchanged {kind} {name}"),
            Action::Deleted => write!(f, "deleted {kind} {name}"),
            Action::WouldDelete => write!(f, "would delete {kind} {name}"),
            Action::Kept(why) => write!(f, "kept {kind} {name}: {why}"),
        }
    }
}

/// Which command a [`Report`] is about, for its summary line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Setup,
    Cleanup,
    DryRun,
}

/// What a setup or cleanup did, resource by resource; its [`fmt::Display`] is a line per
/// resource and a summary line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub operation: Operation,
    pub stack: String,
    pub changes: Vec<Change>,
}

impl Report {
    fn count(&self, pick: impl Fn(&Action) -> bool) -> usize {
        self.changes.iter().filter(|c| pick(&c.action)).count()
    }

    /// Whether anything was created, updated or deleted.
    pub fn changed(&self) -> bool {
        self.count(|a| matches!(a, Action::Created | Action::Updated(_) | Action::Deleted)) > 0
    }

    /// The change to the resource of this kind and name, if the report has one.
    pub fn get(&self, kind: Kind, name: &str) -> Option<&Action> {
        self.changes
            .iter()
            .find(|c| c.kind == kind && c.name == name)
            .map(|c| &c.action)
    }

    /// The last line: what happened overall.
    pub fn summary(&self) -> String {
        let stack = &self.stack;
        let kept = self.count(|a| matches!(a, Action::Kept(_)));
        let kept = match kept {
            0 => String::new(),
            n => format!("; kept {n} not tagged {STACK_TAG}={stack}"),
        };
        match self.operation {
            Operation::Setup if !self.changed() => format!(
                "nothing changed: the {} resources of stack `{stack}` were already set up",
                self.changes.len()
            ),
            Operation::Setup => format!(
                "stack `{stack}`: {} created, {} updated, {} unchanged",
                self.count(|a| matches!(a, Action::Created)),
                self.count(|a| matches!(a, Action::Updated(_))),
                self.count(|a| matches!(a, Action::Unchanged)),
            ),
            Operation::Cleanup => match self.count(|a| matches!(a, Action::Deleted)) {
                0 => format!("nothing to delete: no resource is tagged {STACK_TAG}={stack}{kept}"),
                n => format!("stack `{stack}`: deleted {n} resources{kept}"),
            },
            Operation::DryRun => format!(
                "dry run, nothing deleted: cleanup would delete {} resources of stack `{stack}`{kept}",
                self.count(|a| matches!(a, Action::WouldDelete))
            ),
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for change in &self.changes {
            writeln!(f, "{change}")?;
        }
        write!(f, "{}", self.summary())
    }
}

/// The tags setup gives a resource of `kind` in `stack`.
pub fn desired_tags(stack: &str, kind: Kind) -> [(&'static str, String); 2] {
    [
        (STACK_TAG, stack.to_owned()),
        (ROLE_TAG, kind.role().to_owned()),
    ]
}

/// The tags of [`desired_tags`] that `current` lacks or has with another value. A resource
/// tagged with another stack is a conflict: setup does not take over another stack's resource.
pub fn missing_tags(
    kind: Kind,
    name: &str,
    stack: &str,
    current: &HashMap<String, String>,
) -> Result<Vec<(&'static str, String)>> {
    if let Some(other) = current.get(STACK_TAG).filter(|s| *s != stack) {
        return Err(Error::Conflict(format!(
            "{kind} `{name}` belongs to stack `{other}` (tag {STACK_TAG}={other}), not `{stack}`: \
             pick another name or stack"
        )));
    }
    Ok(desired_tags(stack, kind)
        .into_iter()
        .filter(|(k, v)| current.get(*k) != Some(v))
        .collect())
}

/// A resource found by listing, with its tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub kind: Kind,
    pub name: String,
    /// What the delete call takes: the name, or a queue's URL.
    pub id: String,
    pub tags: HashMap<String, String>,
}

/// Creates the stack's resources, or brings existing ones in line (tags, lifecycle and CORS
/// rules, queue attributes), and reports what it did to each.
pub async fn setup(
    config: &SdkConfig,
    settings: &AwsSettings,
    bucket_options: &BucketOptions,
) -> Result<Report> {
    settings.validate()?;
    bucket_options.validate()?;
    let stack = &settings.stack;
    let mut changes = vec![Change {
        kind: Kind::Bucket,
        name: settings.bucket.clone(),
        action: bucket::ensure_bucket(config, &settings.bucket, stack, bucket_options).await?,
    }];
    changes.push(Change {
        kind: Kind::Table,
        name: settings.table.clone(),
        action: table::ensure_table(config, &settings.table, stack).await?,
    });
    changes.push(Change {
        kind: Kind::WorkersTable,
        name: settings.workers_table.clone(),
        action: table::ensure_workers_table(config, &settings.workers_table, stack).await?,
    });
    changes.extend(queues::ensure_queues(config, settings).await?);
    Ok(Report {
        operation: Operation::Setup,
        stack: stack.clone(),
        changes,
    })
}

/// Deletes every bucket, table and queue tagged with the stack, data included; `dry_run` only
/// lists them. Resources with one of the stack's names but not its tag are kept and reported.
/// (The EC2 instances and launch template are `minimoto_scaler::fleet::ec2::setup::cleanup`'s.)
pub async fn cleanup(config: &SdkConfig, settings: &AwsSettings, dry_run: bool) -> Result<Report> {
    settings.validate()?;
    let stack = &settings.stack;
    let mut found = queues::find_queues(config).await?;
    found.extend(table::find_tables(config).await?);
    found.extend(bucket::find_buckets(config).await?);
    for f in &mut found {
        // An untagged dead-letter queue is known by its name.
        if f.kind == Kind::Queue
            && (f.tags.get(ROLE_TAG).map(String::as_str) == Some(Kind::DeadLetterQueue.role())
                || (!f.tags.contains_key(ROLE_TAG) && f.name == settings.dead_letter_queue()))
        {
            f.kind = Kind::DeadLetterQueue;
        }
        // The events queue likewise.
        if f.kind == Kind::Queue
            && (f.tags.get(ROLE_TAG).map(String::as_str) == Some(Kind::EventsQueue.role())
                || (!f.tags.contains_key(ROLE_TAG) && f.name == settings.events_queue))
        {
            f.kind = Kind::EventsQueue;
        }
        // The workers table likewise, by its role or, untagged, by its name.
        if f.kind == Kind::Table
            && (f.tags.get(ROLE_TAG).map(String::as_str) == Some(Kind::WorkersTable.role())
                || (!f.tags.contains_key(ROLE_TAG) && f.name == settings.workers_table))
        {
            f.kind = Kind::WorkersTable;
        }
    }
    found.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));

    let mut changes = Vec::new();
    for f in found {
        let tagged = f.tags.get(STACK_TAG);
        let action = if tagged == Some(stack) {
            if dry_run {
                Action::WouldDelete
            } else if delete(config, &f).await? {
                Action::Deleted
            } else {
                // Gone in between: someone else did the work.
                continue;
            }
        } else if f.name == f.kind.name_in(settings) {
            Action::Kept(match tagged {
                Some(other) => format!("it belongs to stack `{other}` ({STACK_TAG}={other})"),
                None => format!("it has the stack's name but not its tag {STACK_TAG}={stack}"),
            })
        } else {
            continue;
        };
        changes.push(Change {
            kind: f.kind,
            name: f.name,
            action,
        });
    }
    Ok(Report {
        operation: if dry_run {
            Operation::DryRun
        } else {
            Operation::Cleanup
        },
        stack: stack.clone(),
        changes,
    })
}

/// Deletes one found resource; false if it was already gone.
async fn delete(config: &SdkConfig, found: &Found) -> Result<bool> {
    match found.kind {
        Kind::Queue | Kind::DeadLetterQueue | Kind::EventsQueue => {
            queues::delete_queue(config, &found.name, &found.id).await
        }
        Kind::Table | Kind::WorkersTable => table::delete_table(config, &found.id).await,
        Kind::Bucket => bucket::delete_bucket(config, &found.id).await,
        Kind::LaunchTemplate | Kind::Instance => Err(Error::Invalid(format!(
            "{} `{}`: EC2 resources are cleaned up by minimoto_scaler::fleet::ec2::setup",
            found.kind, found.name
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(kind: Kind, action: Action) -> Change {
        Change {
            kind,
            name: "n".into(),
            action,
        }
    }

    #[test]
    fn reports_say_what_happened_in_a_line_each_and_a_summary() {
        let mut report = Report {
            operation: Operation::Setup,
            stack: "s".into(),
            changes: vec![
                change(Kind::Bucket, Action::Created),
                change(Kind::Table, Action::Updated(vec!["tags".into()])),
                change(Kind::Queue, Action::Unchanged),
            ],
        };
        assert_eq!(
            report.to_string(),
            "created S3 bucket n\nupdated DynamoDB table n: tags\nunchanged SQS queue n\n\
             stack `s`: 1 created, 1 updated, 1 unchanged"
        );
        for c in &mut report.changes {
            c.action = Action::Unchanged;
        }
        assert!(!report.changed());
        assert!(report.summary().starts_with("nothing changed"));

        let report = Report {
            operation: Operation::DryRun,
            stack: "s".into(),
            changes: vec![
                change(Kind::Queue, Action::WouldDelete),
                change(Kind::Bucket, Action::Kept("why".into())),
            ],
        };
        assert!(!report.changed());
        assert_eq!(
            report.summary(),
            "dry run, nothing deleted: cleanup would delete 1 resources of stack `s`; \
             kept 1 not tagged minimoto:stack=s"
        );
    }

    #[test]
    fn setup_adopts_untagged_resources_but_not_another_stacks() {
        let none = HashMap::new();
        assert_eq!(
            missing_tags(Kind::Table, "t", "s", &none).expect("untagged"),
            desired_tags("s", Kind::Table).to_vec()
        );
        let ours = HashMap::from([
            (STACK_TAG.to_owned(), "s".to_owned()),
            (ROLE_TAG.to_owned(), "jobs".to_owned()),
            ("team".to_owned(), "video".to_owned()),
        ]);
        assert!(
            missing_tags(Kind::Table, "t", "s", &ours)
                .expect("ours")
                .is_empty()
        );
        let theirs = HashMap::from([(STACK_TAG.to_owned(), "other".to_owned())]);
        assert!(matches!(
            missing_tags(Kind::Table, "t", "s", &theirs),
            Err(Error::Conflict(m)) if m.contains("stack `other`")
        ));
    }
}
