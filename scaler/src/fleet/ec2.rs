//! [`Fleet`] on EC2: one instance per worker, launched from the stack's launch template
//! (`<stack>-worker`, made by `minimoto setup --worker-ami …`; see [`setup`]).
//!
//! - **Launch**: one `RunInstances` per worker (`MinCount = MaxCount = 1`, the worker id as the
//!   client token, so an SDK retry cannot start a second machine), from the template's latest
//!   version, with the instance and its volumes tagged `minimoto:stack`, `minimoto:role=worker`,
//!   `minimoto:worker=<id>` and `Name`, and user data ([`user_data`]) that runs the worker with the
//!   stack's settings and powers the machine off when it exits. The template sets
//!   instance-initiated shutdown to *terminate*, so a drained worker's machine ends itself even
//!   while the scaler is down. Optionally on Spot (one-time, terminated on interruption).
//! - **List**: `DescribeInstances` on the stack and role tags, pending or running.
//! - **Terminate**: the instances tagged with the worker id; none is fine.
//!
//! The user data always sets `MINIMOTO_SPOT_NOTICE_URL`: on Spot the worker hands its job back on
//! an interruption notice, on demand the URL answers 404 (harmless), and on both the worker reads
//! its instance id from the same metadata service for its heartbeat.

pub mod setup;

use std::collections::HashMap;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_ec2::{
    Client,
    error::DisplayErrorContext,
    types::{
        Filter, Instance, InstanceInterruptionBehavior, InstanceMarketOptionsRequest,
        LaunchTemplateSpecification, MarketType, ResourceType, SpotInstanceType, SpotMarketOptions,
        Tag, TagSpecification,
    },
};
use chrono::{DateTime, Utc};
use minimoto_aws::AwsSettings;
use minimoto_aws_admin::{ROLE_TAG, STACK_TAG, launch_template_name};

use super::{Fleet, Member, new_worker_id};
use crate::error::{Error, Result};

/// The tag carrying an instance's worker id.
pub const WORKER_TAG: &str = "minimoto:worker";
/// The value of [`ROLE_TAG`] on worker instances (and on their launch template).
pub const WORKER_ROLE: &str = "worker";
/// Where the worker is installed on the AMI, unless told otherwise.
pub const DEFAULT_WORKER_COMMAND: &str = "/usr/local/bin/minimoto-worker";
/// The EC2 Spot interruption notice, in the instance metadata service.
pub const SPOT_NOTICE_URL: &str = "http://169.254.169.254/latest/meta-data/spot/instance-action";

const FLEET: &str = "ec2";

/// What the EC2 fleet needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ec2Settings {
    /// The stack's resource names: the workers are started with them.
    pub aws: AwsSettings,
    /// The launch template workers start from (default `<stack>-worker`, see
    /// [`launch_template_name`]).
    pub launch_template: String,
    /// Launch Spot instances (one-time requests, terminated on interruption).
    pub spot: bool,
    /// The worker program and its arguments, as run on the instance.
    pub worker_command: Vec<String>,
    /// More environment for the worker (e.g. `MINIMOTO_MAX_ATTEMPTS`, `RUST_LOG`).
    pub extra_env: Vec<(String, String)>,
}

impl Ec2Settings {
    /// The defaults for a stack: its launch template, on demand, the installed worker.
    pub fn new(aws: AwsSettings) -> Self {
        Self {
            launch_template: launch_template_name(&aws.stack),
            aws,
            spot: false,
            worker_command: vec![DEFAULT_WORKER_COMMAND.to_owned()],
            extra_env: Vec::new(),
        }
    }
}

/// The EC2 adapter of [`Fleet`].
#[derive(Debug, Clone)]
pub struct Ec2Fleet {
    client: Client,
    settings: Ec2Settings,
    region: String,
}

fn sdk<E, R>(what: &str, e: aws_sdk_ec2::error::SdkError<E, R>) -> Error
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    Error::fleet(FLEET, format!("{what}: {}", DisplayErrorContext(&e)))
}

fn filter(name: &str, values: &[&str]) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.iter().map(|v| (*v).to_owned()).collect()))
        .build()
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

fn tag_of<'a>(instance: &'a Instance, key: &str) -> Option<&'a str> {
    instance
        .tags()
        .iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

fn time_of(instance: &Instance) -> DateTime<Utc> {
    instance
        .launch_time()
        .and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
        .unwrap_or_else(Utc::now)
}

/// `value` as one word of a bash script, quoted so that nothing in it is interpreted.
fn quoted(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

fn env_name_ok(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// The environment a worker of the stack runs with: the backend, the stack, every resource name
/// (so overridden names reach the worker), its id, the Spot notice URL and the region.
pub fn worker_env(settings: &Ec2Settings, region: &str, worker_id: &str) -> Vec<(String, String)> {
    let aws = &settings.aws;
    let mut env: Vec<(String, String)> = [
        ("MINIMOTO_BACKEND", "aws"),
        ("MINIMOTO_STACK", aws.stack.as_str()),
        ("MINIMOTO_S3_BUCKET", aws.bucket.as_str()),
        ("MINIMOTO_DYNAMODB_TABLE", aws.table.as_str()),
        ("MINIMOTO_SQS_QUEUE", aws.queue.as_str()),
        (
            "MINIMOTO_DYNAMODB_WORKERS_TABLE",
            aws.workers_table.as_str(),
        ),
        ("MINIMOTO_WORKER_ID", worker_id),
        ("MINIMOTO_SPOT_NOTICE_URL", SPOT_NOTICE_URL),
        ("AWS_REGION", region),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    env.extend(settings.extra_env.iter().cloned());
    env
}

/// The user data of one worker's instance: a bash script that exports `env`, runs `command`
/// and shuts the machine down when it exits (however it exits). Every value is quoted.
pub fn user_data(worker_id: &str, env: &[(String, String)], command: &[String]) -> Result<String> {
    if let Some((bad, _)) = env.iter().find(|(k, _)| !env_name_ok(k)) {
        return Err(Error::Config(format!(
            "worker environment variable `{bad}`: use uppercase letters, digits and `_`"
        )));
    }
    if command.is_empty() || command[0].is_empty() {
        return Err(Error::Config(
            "the worker command (--worker-command) is empty".into(),
        ));
    }
    let mut script = String::from("#!/bin/bash\n");
    script.push_str(&format!(
        "# minimoto worker {}: run it, then power off (the launch template terminates the\n\
         # instance on shutdown), so a drained or failed worker's machine ends itself.\n",
        worker_id.replace(['\n', '\r'], " ")
    ));
    for (name, value) in env {
        script.push_str(&format!("export {name}={}\n", quoted(value)));
    }
    let words: Vec<String> = command.iter().map(|w| quoted(w)).collect();
    script.push_str(&words.join(" "));
    script.push_str("\nstatus=$?\n");
    script.push_str("echo \"minimoto-worker exited with status $status: shutting down\"\n");
    script.push_str("shutdown -h now\n");
    Ok(script)
}

impl Ec2Fleet {
    /// The fleet in the configuration's region; an error if it has none.
    pub fn new(config: &SdkConfig, settings: Ec2Settings) -> Result<Self> {
        settings
            .aws
            .validate()
            .map_err(|e| Error::Config(e.to_string()))?;
        let region = config.region().map(|r| r.to_string()).ok_or_else(|| {
            Error::Config(
                "the EC2 fleet needs a region: set AWS_REGION (or a profile's region)".into(),
            )
        })?;
        // Checked now rather than at the first launch.
        user_data(
            "w-check",
            &worker_env(&settings, &region, "w-check"),
            &settings.worker_command,
        )?;
        Ok(Self {
            client: Client::new(config),
            settings,
            region,
        })
    }

    fn tags_for(&self, worker_id: &str, resource: ResourceType) -> TagSpecification {
        let stack = &self.settings.aws.stack;
        TagSpecification::builder()
            .resource_type(resource)
            .tags(tag(STACK_TAG, stack))
            .tags(tag(ROLE_TAG, WORKER_ROLE))
            .tags(tag(WORKER_TAG, worker_id))
            .tags(tag("Name", &format!("{stack}-{worker_id}")))
            .build()
    }

    async fn launch_one(&self) -> Result<Member> {
        let worker_id = new_worker_id();
        let script = user_data(
            &worker_id,
            &worker_env(&self.settings, &self.region, &worker_id),
            &self.settings.worker_command,
        )?;
        let mut request = self
            .client
            .run_instances()
            .launch_template(
                LaunchTemplateSpecification::builder()
                    .launch_template_name(&self.settings.launch_template)
                    // Setup adds a version when the template's settings change.
                    .version("$Latest")
                    .build(),
            )
            .min_count(1)
            .max_count(1)
            .client_token(&worker_id)
            .user_data(aws_smithy_types::base64::encode(script.as_bytes()))
            .tag_specifications(self.tags_for(&worker_id, ResourceType::Instance))
            .tag_specifications(self.tags_for(&worker_id, ResourceType::Volume));
        if self.settings.spot {
            request = request.instance_market_options(
                InstanceMarketOptionsRequest::builder()
                    .market_type(MarketType::Spot)
                    .spot_options(
                        SpotMarketOptions::builder()
                            .spot_instance_type(SpotInstanceType::OneTime)
                            .instance_interruption_behavior(InstanceInterruptionBehavior::Terminate)
                            .build(),
                    )
                    .build(),
            );
        }
        let out = request
            .send()
            .await
            .map_err(|e| sdk(&format!("launch worker {worker_id}"), e))?;
        let instance = out.instances().first().ok_or_else(|| {
            Error::fleet(
                FLEET,
                format!("RunInstances for worker {worker_id} returned no instance"),
            )
        })?;
        let handle = instance.instance_id().unwrap_or_default().to_owned();
        tracing::info!(worker = %worker_id, instance = %handle, spot = self.settings.spot, "launched a worker");
        Ok(Member {
            worker_id,
            handle,
            launched_at: time_of(instance),
        })
    }

    /// The stack's worker instances matching `filters` (on top of the stack and role tags).
    async fn instances(&self, mut filters: Vec<Filter>) -> Result<Vec<Instance>> {
        filters.push(filter(
            &format!("tag:{STACK_TAG}"),
            &[&self.settings.aws.stack],
        ));
        filters.push(filter(&format!("tag:{ROLE_TAG}"), &[WORKER_ROLE]));
        let mut found = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .client
                .describe_instances()
                .set_filters(Some(filters.clone()))
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| sdk("list the worker instances", e))?;
            for reservation in page.reservations() {
                found.extend(reservation.instances().iter().cloned());
            }
            match page.next_token {
                Some(next) if !next.is_empty() => token = Some(next),
                _ => return Ok(found),
            }
        }
    }
}

#[async_trait]
impl Fleet for Ec2Fleet {
    fn kind(&self) -> &'static str {
        FLEET
    }

    async fn check(&self) -> Result<()> {
        let name = &self.settings.launch_template;
        let fix = format!(
            "create it with `minimoto setup --stack {} --worker-ami <ami> \
             --worker-instance-profile <profile> …`, or name another with --launch-template",
            self.settings.aws.stack
        );
        let out = self
            .client
            .describe_launch_templates()
            .launch_template_names(name)
            .send()
            .await;
        let templates = match out {
            Ok(out) => out.launch_templates.unwrap_or_default(),
            Err(e)
                if aws_sdk_ec2::error::ProvideErrorMetadata::code(&e).is_some_and(|c| {
                    c.starts_with("InvalidLaunchTemplateName") || c.contains("NotFound")
                }) =>
            {
                Vec::new()
            }
            Err(e) => return Err(sdk(&format!("describe launch template {name}"), e)),
        };
        let Some(template) = templates.first() else {
            return Err(Error::Config(format!(
                "the EC2 launch template `{name}` (--launch-template) does not exist: {fix}"
            )));
        };
        let stack = template
            .tags()
            .iter()
            .find(|t| t.key() == Some(STACK_TAG))
            .and_then(|t| t.value());
        if stack != Some(self.settings.aws.stack.as_str()) {
            // The scaler's IAM policy only launches from templates tagged with its stack.
            return Err(Error::Config(format!(
                "the EC2 launch template `{name}` (--launch-template) is not tagged \
                 {STACK_TAG}={}: {fix}",
                self.settings.aws.stack
            )));
        }
        Ok(())
    }

    /// One `RunInstances` per worker. When some launches fail after others succeeded, the
    /// launched members are returned (the failures logged): they run, and the list shows them.
    async fn launch(&self, count: u32) -> Result<Vec<Member>> {
        let mut launched = Vec::new();
        let mut failure = None;
        for _ in 0..count {
            match self.launch_one().await {
                Ok(member) => launched.push(member),
                Err(e) => {
                    tracing::warn!(error = %e, "could not launch a worker");
                    failure = Some(e);
                    // Capacity and quota errors repeat: do not hammer the API this round.
                    break;
                }
            }
        }
        match failure {
            Some(e) if launched.is_empty() => Err(e),
            _ => Ok(launched),
        }
    }

    async fn list(&self) -> Result<Vec<Member>> {
        let instances = self
            .instances(vec![filter("instance-state-name", &["pending", "running"])])
            .await?;
        let mut members: HashMap<String, Member> = HashMap::new();
        for instance in &instances {
            let Some(worker_id) = tag_of(instance, WORKER_TAG) else {
                tracing::warn!(
                    instance = instance.instance_id().unwrap_or("?"),
                    "a worker instance without its {WORKER_TAG} tag: ignored"
                );
                continue;
            };
            members.insert(
                worker_id.to_owned(),
                Member {
                    worker_id: worker_id.to_owned(),
                    handle: instance.instance_id().unwrap_or_default().to_owned(),
                    launched_at: time_of(instance),
                },
            );
        }
        Ok(members.into_values().collect())
    }

    async fn terminate(&self, worker_id: &str) -> Result<()> {
        let instances = self
            .instances(vec![
                filter(&format!("tag:{WORKER_TAG}"), &[worker_id]),
                filter(
                    "instance-state-name",
                    &["pending", "running", "stopping", "stopped"],
                ),
            ])
            .await?;
        let ids: Vec<String> = instances
            .iter()
            .filter_map(|i| i.instance_id().map(str::to_owned))
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        let result = self
            .client
            .terminate_instances()
            .set_instance_ids(Some(ids.clone()))
            .send()
            .await;
        match result {
            Ok(_) => {
                tracing::info!(worker = %worker_id, instances = ?ids, "terminated a worker");
                Ok(())
            }
            // Gone in between: the work is done.
            Err(e)
                if aws_sdk_ec2::error::ProvideErrorMetadata::code(&e)
                    .is_some_and(|c| c.starts_with("InvalidInstanceID")) =>
            {
                Ok(())
            }
            Err(e) => Err(sdk(&format!("terminate worker {worker_id}"), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Ec2Settings {
        Ec2Settings::new(AwsSettings {
            stack: "prod".into(),
            bucket: "prod-media".into(),
            table: "prod-jobs".into(),
            queue: "prod-jobs".into(),
            events_queue: "prod-events".into(),
            workers_table: "prod-workers".into(),
            max_receives: 8,
        })
    }

    #[test]
    fn user_data_runs_the_worker_with_the_stack_and_powers_off() {
        let env = worker_env(&settings(), "eu-west-1", "w-0123456789ab");
        let script = user_data("w-0123456789ab", &env, &[DEFAULT_WORKER_COMMAND.to_owned()])
            .expect("user data");
        let lines: Vec<&str> = script.lines().collect();
        assert_eq!(lines[0], "#!/bin/bash");
        for expected in [
            "export MINIMOTO_BACKEND='aws'",
            "export MINIMOTO_STACK='prod'",
            "export MINIMOTO_WORKER_ID='w-0123456789ab'",
            "export MINIMOTO_DYNAMODB_WORKERS_TABLE='prod-workers'",
            "export MINIMOTO_SPOT_NOTICE_URL='http://169.254.169.254/latest/meta-data/spot/instance-action'",
            "export AWS_REGION='eu-west-1'",
            "'/usr/local/bin/minimoto-worker'",
            "shutdown -h now",
        ] {
            assert!(lines.contains(&expected), "{expected} in:\n{script}");
        }
        let run = lines.iter().position(|l| l.contains("minimoto-worker'"));
        let off = lines.iter().position(|l| *l == "shutdown -h now");
        assert!(run < off, "the machine powers off after the worker exits");
        assert!(
            lines.iter().all(|l| !l.starts_with("set -e")),
            "a failing worker still powers the machine off"
        );
    }

    #[test]
    fn user_data_quotes_every_value() {
        let env = vec![(
            "RUST_LOG".to_owned(),
            "it's $(rm -rf /) `x` \"y\"".to_owned(),
        )];
        let script = user_data(
            "w-1",
            &env,
            &[
                "/opt/minimoto worker".to_owned(),
                "--x264-preset".to_owned(),
                "fast".to_owned(),
            ],
        )
        .expect("user data");
        assert!(
            script.contains(r#"export RUST_LOG='it'\''s $(rm -rf /) `x` "y"'"#),
            "{script}"
        );
        assert!(
            script.contains("'/opt/minimoto worker' '--x264-preset' 'fast'"),
            "{script}"
        );
        assert!(user_data("w-1", &[("bad name".into(), "x".into())], &["w".into()]).is_err());
        assert!(user_data("w-1", &[("1X".into(), "x".into())], &["w".into()]).is_err());
        assert!(user_data("w-1", &[], &[]).is_err(), "no command");
    }
}
