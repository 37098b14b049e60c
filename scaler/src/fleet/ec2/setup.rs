//! The EC2 side of `minimoto setup` / `cleanup`: the workers' launch template, and the stack's
//! instances. It lives here, in the one package that compiles the EC2 SDK, and reports in
//! `minimoto-aws-admin`'s terms ([`Change`], [`Kind::LaunchTemplate`], [`Kind::Instance`]), so
//! `minimoto setup` prints one report for the whole stack.
//!
//! The template (`<stack>-worker`, tagged `minimoto:stack` / `minimoto:role=worker`) holds what
//! every worker machine shares: the AMI (with `minimoto-worker` and ffmpeg installed), the
//! instance type, the network, the instance profile (with `iam/worker.json`), an optional key
//! pair, instance-initiated shutdown = *terminate* (a worker powers its machine off when it
//! exits; see [`super::user_data`]) and instance metadata v2 only. Setup is idempotent: when the
//! settings drifted it adds a template version (the fleet launches `$Latest`) and says what
//! changed; an untagged template of that name is adopted, another stack's refused.
//!
//! Cleanup terminates every instance tagged `minimoto:stack=<stack>` (whatever its role) and
//! deletes the launch templates tagged so; a template with the stack's name but not its tag is
//! kept and reported, as for the other resources.

use std::collections::HashMap;

use aws_config::SdkConfig;
use aws_sdk_ec2::{
    Client,
    error::{DisplayErrorContext, ProvideErrorMetadata},
    types::{
        Filter, Instance, InstanceType, LaunchTemplate, LaunchTemplateHttpTokensState,
        LaunchTemplateIamInstanceProfileSpecificationRequest,
        LaunchTemplateInstanceMetadataOptionsRequest,
        LaunchTemplateInstanceNetworkInterfaceSpecificationRequest, RequestLaunchTemplateData,
        ResourceType, ResponseLaunchTemplateData, ShutdownBehavior, Tag, TagSpecification,
    },
};
use minimoto_aws::AwsSettings;
use minimoto_aws_admin::{
    Action, Change, Kind, STACK_TAG, desired_tags, launch_template_name, missing_tags,
};
use minimoto_common::error::{Error, Result};

const SERVICE: &str = "ec2";
/// The default worker instance type: 4 vCPUs (x86_64, Intel), 8 GiB — renders are CPU-bound
/// and one worker renders one job at a time on every core.
pub const DEFAULT_INSTANCE_TYPE: &str = "c6i.xlarge";

fn sdk<E, R>(what: &str, e: aws_sdk_ec2::error::SdkError<E, R>) -> Error
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    Error::backend(SERVICE, format!("{what}: {}", DisplayErrorContext(&e)))
}

/// What the workers' launch template holds (the `--worker-*` flags of `minimoto setup`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateOptions {
    /// The AMI: `minimoto-worker` (at `/usr/local/bin`, or see the scaler's worker command) and
    /// ffmpeg installed.
    pub image_id: String,
    pub instance_type: String,
    /// The subnet to launch in (default: the default VPC's, chosen by EC2).
    pub subnet: Option<String>,
    /// Security group ids (default: the VPC's default group). Workers only call out.
    pub security_groups: Vec<String>,
    /// The instance profile, by name or ARN; its role needs `iam/worker.json`.
    pub instance_profile: String,
    /// An EC2 key pair for SSH, if wanted.
    pub key_name: Option<String>,
}

impl TemplateOptions {
    /// Checks the options before any call, so a typo is reported as such.
    pub fn validate(&self) -> Result<()> {
        let id_ok = |value: &str, prefix: &str| {
            value
                .strip_prefix(prefix)
                .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_hexdigit()))
        };
        if !id_ok(&self.image_id, "ami-") {
            return Err(Error::Invalid(format!(
                "--worker-ami `{}`: an AMI id is `ami-` and hex digits",
                self.image_id
            )));
        }
        let type_ok = self
            .instance_type
            .split_once('.')
            .is_some_and(|(family, size)| {
                !family.is_empty()
                    && !size.is_empty()
                    && self.instance_type.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-'
                    })
            });
        if !type_ok {
            return Err(Error::Invalid(format!(
                "--worker-instance-type `{}`: an instance type is like `{DEFAULT_INSTANCE_TYPE}`",
                self.instance_type
            )));
        }
        if let Some(subnet) = &self.subnet
            && !id_ok(subnet, "subnet-")
        {
            return Err(Error::Invalid(format!(
                "--worker-subnet `{subnet}`: a subnet id is `subnet-` and hex digits"
            )));
        }
        if let Some(bad) = self.security_groups.iter().find(|g| !id_ok(g, "sg-")) {
            return Err(Error::Invalid(format!(
                "--worker-security-group `{bad}`: a security group id is `sg-` and hex digits"
            )));
        }
        if self.instance_profile.trim().is_empty() {
            return Err(Error::Invalid(
                "--worker-instance-profile: the workers need an instance profile (its role with \
                 iam/worker.json) to reach the stack"
                    .into(),
            ));
        }
        Ok(())
    }

    fn profile(&self) -> LaunchTemplateIamInstanceProfileSpecificationRequest {
        let builder = LaunchTemplateIamInstanceProfileSpecificationRequest::builder();
        if self.instance_profile.starts_with("arn:") {
            builder.arn(&self.instance_profile).build()
        } else {
            builder.name(&self.instance_profile).build()
        }
    }

    /// The template data setup writes.
    fn data(&self) -> RequestLaunchTemplateData {
        let mut data = RequestLaunchTemplateData::builder()
            .image_id(&self.image_id)
            .instance_type(InstanceType::from(self.instance_type.as_str()))
            .iam_instance_profile(self.profile())
            .set_key_name(self.key_name.clone())
            // A worker powers its machine off when it exits: that ends the instance.
            .instance_initiated_shutdown_behavior(ShutdownBehavior::Terminate)
            .metadata_options(
                LaunchTemplateInstanceMetadataOptionsRequest::builder()
                    .http_tokens(LaunchTemplateHttpTokensState::Required)
                    .build(),
            );
        data = match &self.subnet {
            // A subnet is set on the primary network interface, and the groups with it.
            Some(subnet) => data.network_interfaces(
                LaunchTemplateInstanceNetworkInterfaceSpecificationRequest::builder()
                    .device_index(0)
                    .subnet_id(subnet)
                    .set_groups(
                        (!self.security_groups.is_empty()).then(|| self.security_groups.clone()),
                    )
                    .build(),
            ),
            None if !self.security_groups.is_empty() => {
                data.set_security_group_ids(Some(self.security_groups.clone()))
            }
            None => data,
        };
        data.build()
    }

    /// What differs between these options and a template version's data, by name.
    fn drift(&self, current: &ResponseLaunchTemplateData) -> Vec<String> {
        let mut drift = Vec::new();
        let mut differs = |what: &str, same: bool| {
            if !same {
                drift.push(what.to_owned());
            }
        };
        differs("image", current.image_id() == Some(self.image_id.as_str()));
        differs(
            "instance type",
            current.instance_type().map(InstanceType::as_str) == Some(self.instance_type.as_str()),
        );
        let nic = current
            .network_interfaces()
            .iter()
            .find(|n| n.device_index().unwrap_or(0) == 0);
        differs(
            "subnet",
            nic.and_then(|n| n.subnet_id()) == self.subnet.as_deref(),
        );
        let mut groups: Vec<&str> = match nic {
            Some(n) if !n.groups().is_empty() => n.groups().iter().map(String::as_str).collect(),
            _ => current
                .security_group_ids()
                .iter()
                .map(String::as_str)
                .collect(),
        };
        groups.sort_unstable();
        let mut wanted: Vec<&str> = self.security_groups.iter().map(String::as_str).collect();
        wanted.sort_unstable();
        differs("security groups", groups == wanted);
        let profile = current.iam_instance_profile();
        let profile_now = if self.instance_profile.starts_with("arn:") {
            profile.and_then(|p| p.arn())
        } else {
            profile.and_then(|p| p.name())
        };
        differs(
            "instance profile",
            profile_now == Some(self.instance_profile.as_str()),
        );
        differs("key pair", current.key_name() == self.key_name.as_deref());
        differs(
            "shutdown behaviour",
            current.instance_initiated_shutdown_behavior() == Some(&ShutdownBehavior::Terminate),
        );
        differs(
            "metadata options",
            current.metadata_options().and_then(|m| m.http_tokens())
                == Some(&LaunchTemplateHttpTokensState::Required),
        );
        drift
    }
}

fn ec2_tags(pairs: impl IntoIterator<Item = (&'static str, String)>) -> Vec<Tag> {
    pairs
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

fn tag_map(tags: &[Tag]) -> HashMap<String, String> {
    tags.iter()
        .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
        .collect()
}

fn not_found(code: Option<&str>) -> bool {
    code.is_some_and(|c| c.starts_with("InvalidLaunchTemplateName") || c.contains("NotFound"))
}

/// The launch template named `name`, if there is one.
async fn template_named(client: &Client, name: &str) -> Result<Option<LaunchTemplate>> {
    match client
        .describe_launch_templates()
        .launch_template_names(name)
        .send()
        .await
    {
        Ok(out) => Ok(out.launch_templates.unwrap_or_default().into_iter().next()),
        Err(e) if not_found(e.code()) => Ok(None),
        Err(e) => Err(sdk(&format!("describe launch template {name}"), e)),
    }
}

/// Creates the stack's launch template `<stack>-worker`, or brings an existing one in line
/// (missing tags; drifted settings become a new version), and says what it did.
pub async fn ensure_launch_template(
    config: &SdkConfig,
    stack: &str,
    options: &TemplateOptions,
) -> Result<Action> {
    options.validate()?;
    let client = Client::new(config);
    let name = launch_template_name(stack);
    let Some(existing) = template_named(&client, &name).await? else {
        let created = client
            .create_launch_template()
            .launch_template_name(&name)
            .version_description("minimoto setup")
            .launch_template_data(options.data())
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::LaunchTemplate)
                    .set_tags(Some(ec2_tags(desired_tags(stack, Kind::LaunchTemplate))))
                    .build(),
            )
            .send()
            .await;
        return match created {
            Ok(_) => Ok(Action::Created),
            Err(e) => Err(sdk(&format!("create launch template {name}"), e)),
        };
    };
    let id = existing
        .launch_template_id()
        .ok_or_else(|| Error::backend(SERVICE, format!("launch template {name}: no id")))?
        .to_owned();
    let mut updated = Vec::new();
    let missing = missing_tags(
        Kind::LaunchTemplate,
        &name,
        stack,
        &tag_map(existing.tags()),
    )?;
    if !missing.is_empty() {
        // Both tags, always: the admin policy allows tagging templates only with the stack's tag
        // in the request.
        client
            .create_tags()
            .resources(&id)
            .set_tags(Some(ec2_tags(desired_tags(stack, Kind::LaunchTemplate))))
            .send()
            .await
            .map_err(|e| sdk(&format!("tag launch template {name}"), e))?;
        updated.push("tags".to_owned());
    }
    let versions = client
        .describe_launch_template_versions()
        .launch_template_id(&id)
        .versions("$Latest")
        .send()
        .await
        .map_err(|e| sdk(&format!("describe launch template {name}"), e))?;
    let drift = versions
        .launch_template_versions()
        .first()
        .and_then(|v| v.launch_template_data())
        .map_or_else(|| vec!["settings".to_owned()], |data| options.drift(data));
    if !drift.is_empty() {
        client
            .create_launch_template_version()
            .launch_template_id(&id)
            .version_description(format!("minimoto setup: {}", drift.join(", ")))
            .launch_template_data(options.data())
            .send()
            .await
            .map_err(|e| sdk(&format!("add a version to launch template {name}"), e))?;
        updated.extend(drift);
    }
    Ok(if updated.is_empty() {
        Action::Unchanged
    } else {
        Action::Updated(updated)
    })
}

/// The stack's instances that are not terminated yet, whatever their role.
async fn stack_instances(client: &Client, stack: &str) -> Result<Vec<Instance>> {
    let filters = vec![
        Filter::builder()
            .name(format!("tag:{STACK_TAG}"))
            .values(stack)
            .build(),
        Filter::builder()
            .name("instance-state-name")
            .set_values(Some(
                ["pending", "running", "stopping", "stopped"]
                    .map(String::from)
                    .to_vec(),
            ))
            .build(),
    ];
    let mut found = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .describe_instances()
            .set_filters(Some(filters.clone()))
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| sdk("list the stack's instances", e))?;
        for reservation in page.reservations() {
            found.extend(reservation.instances().iter().cloned());
        }
        match page.next_token {
            Some(next) if !next.is_empty() => token = Some(next),
            _ => return Ok(found),
        }
    }
}

/// Every launch template in the region (templates are few; filtering by tag is done here).
async fn all_templates(client: &Client) -> Result<Vec<LaunchTemplate>> {
    let mut found = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .describe_launch_templates()
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| sdk("list launch templates", e))?;
        found.extend(page.launch_templates().iter().cloned());
        match page.next_token {
            Some(next) if !next.is_empty() => token = Some(next),
            _ => return Ok(found),
        }
    }
}

/// Terminates every instance tagged with the stack and deletes its launch templates; a dry run
/// only lists them. Instances first: a worker must not outlive the stack it works for.
pub async fn cleanup(
    config: &SdkConfig,
    settings: &AwsSettings,
    dry_run: bool,
) -> Result<Vec<Change>> {
    settings.validate()?;
    let client = Client::new(config);
    let stack = &settings.stack;
    let mut changes = Vec::new();

    let mut instances: Vec<String> = stack_instances(&client, stack)
        .await?
        .iter()
        .filter_map(|i| i.instance_id().map(str::to_owned))
        .collect();
    instances.sort();
    // TerminateInstances takes at most 1000 ids a call.
    for batch in instances.chunks(1000) {
        if !dry_run {
            match client
                .terminate_instances()
                .set_instance_ids(Some(batch.to_vec()))
                .send()
                .await
            {
                Ok(_) => {}
                Err(e) if e.code().is_some_and(|c| c.starts_with("InvalidInstanceID")) => {}
                Err(e) => return Err(sdk("terminate the stack's instances", e)),
            }
        }
        changes.extend(batch.iter().map(|id| Change {
            kind: Kind::Instance,
            name: id.clone(),
            action: if dry_run {
                Action::WouldDelete
            } else {
                Action::Deleted
            },
        }));
    }

    let mut templates = all_templates(&client).await?;
    templates.sort_by(|a, b| a.launch_template_name().cmp(&b.launch_template_name()));
    let own_name = launch_template_name(stack);
    for template in templates {
        let (Some(name), Some(id)) = (
            template.launch_template_name(),
            template.launch_template_id(),
        ) else {
            continue;
        };
        let tags = tag_map(template.tags());
        let tagged = tags.get(STACK_TAG);
        let action = if tagged == Some(stack) {
            if dry_run {
                Action::WouldDelete
            } else {
                match client
                    .delete_launch_template()
                    .launch_template_id(id)
                    .send()
                    .await
                {
                    Ok(_) => Action::Deleted,
                    Err(e) if not_found(e.code()) => continue,
                    Err(e) => return Err(sdk(&format!("delete launch template {name}"), e)),
                }
            }
        } else if name == own_name {
            Action::Kept(match tagged {
                Some(other) => format!("it belongs to stack `{other}` ({STACK_TAG}={other})"),
                None => format!("it has the stack's name but not its tag {STACK_TAG}={stack}"),
            })
        } else {
            continue;
        };
        changes.push(Change {
            kind: Kind::LaunchTemplate,
            name: name.to_owned(),
            action,
        });
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> TemplateOptions {
        TemplateOptions {
            image_id: "ami-0123abcd".into(),
            instance_type: DEFAULT_INSTANCE_TYPE.into(),
            subnet: Some("subnet-0a1b".into()),
            security_groups: vec!["sg-01".into()],
            instance_profile: "prod-worker".into(),
            key_name: None,
        }
    }

    #[test]
    fn options_are_checked_before_any_call() {
        assert!(options().validate().is_ok());
        for bad in [
            TemplateOptions {
                image_id: "ubuntu".into(),
                ..options()
            },
            TemplateOptions {
                instance_type: "large".into(),
                ..options()
            },
            TemplateOptions {
                subnet: Some("vpc-01".into()),
                ..options()
            },
            TemplateOptions {
                security_groups: vec!["default".into()],
                ..options()
            },
            TemplateOptions {
                instance_profile: " ".into(),
                ..options()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?} must be refused");
        }
    }
}
