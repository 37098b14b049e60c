//! The EC2 fleet against the fleet contract on a moto server, and the EC2 side of `minimoto
//! setup` / `cleanup` (the workers' launch template, the stack's instances).
//!
//! moto does not enforce, so these tests do not prove: IAM (the tag conditions of
//! `iam/scaler.json` and `iam/admin.json`, `iam:PassRole` for the instance profile, which moto does
//! not even check exists), AMI ids (any id launches unless `MOTO_ENABLE_AMI_VALIDATION` is set;
//! the tests use one of moto's default AMIs anyway), instance types, Spot capacity or prices,
//! and the machine's life: user data never runs and instance-initiated shutdown never happens,
//! so "a worker that exits ends its instance" rests on the template's shutdown behaviour, which
//! is checked, not exercised. moto also applies a launch template's data only partly to
//! `RunInstances` (image, type, key, groups, user data; not the network interface or the
//! instance profile).

use std::collections::HashMap;

use aws_config::SdkConfig;
use aws_sdk_ec2::{
    Client,
    types::{
        Filter, InstanceAttributeName, InstanceLifecycleType, LaunchTemplateHttpTokensState,
        ResourceType, ShutdownBehavior, Tag, TagSpecification,
    },
};
use minimoto_aws::AwsSettings;
use minimoto_aws_admin::{Action, Kind, ROLE_TAG, STACK_TAG};
use minimoto_common::Error as CommonError;
use minimoto_scaler::fleet::{
    Fleet, contract,
    ec2::{
        Ec2Fleet, Ec2Settings, WORKER_TAG,
        setup::{DEFAULT_INSTANCE_TYPE, TemplateOptions, cleanup, ensure_launch_template},
    },
};

use crate::support::{Moto, unique};

/// One of moto's default AMIs (Ubuntu 14.04, x86_64).
const AMI: &str = "ami-1e749f67";

fn settings(stack: &str) -> AwsSettings {
    AwsSettings {
        stack: stack.into(),
        bucket: format!("{stack}-media"),
        table: format!("{stack}-jobs"),
        queue: format!("{stack}-jobs"),
        events_queue: format!("{stack}-events"),
        workers_table: format!("{stack}-workers"),
        max_receives: 8,
    }
}

fn options() -> TemplateOptions {
    TemplateOptions {
        image_id: AMI.into(),
        instance_type: DEFAULT_INSTANCE_TYPE.into(),
        subnet: None,
        security_groups: Vec::new(),
        instance_profile: "test-worker".into(),
        key_name: None,
    }
}

fn tags(tags: &[Tag]) -> HashMap<String, String> {
    tags.iter()
        .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
        .collect()
}

/// A moto server with the stack's launch template, and an EC2 fleet on it.
pub(crate) async fn fleet_on_moto(stack: &str, spot: bool) -> (Moto, SdkConfig, Ec2Fleet) {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    assert_eq!(
        ensure_launch_template(&config, stack, &options())
            .await
            .expect("create the launch template"),
        Action::Created
    );
    let fleet = Ec2Fleet::new(
        &config,
        Ec2Settings {
            spot,
            ..Ec2Settings::new(settings(stack))
        },
    )
    .expect("fleet");
    fleet.check().await.expect("the launch template exists");
    (moto, config, fleet)
}

#[tokio::test]
async fn ec2_fleet_keeps_the_contract() {
    let stack = unique("fleet");
    let (_moto, _config, fleet) = fleet_on_moto(&stack, false).await;
    assert_eq!(fleet.kind(), "ec2");
    contract::fleet(&fleet).await;
}

#[tokio::test]
async fn launched_workers_carry_their_tags_and_start_the_worker() {
    let stack = unique("tags");
    let (_moto, config, fleet) = fleet_on_moto(&stack, true).await;
    let members = fleet.launch(1).await.expect("launch");
    let member = &members[0];
    let ec2 = Client::new(&config);

    let described = ec2
        .describe_instances()
        .instance_ids(&member.handle)
        .send()
        .await
        .expect("describe the instance");
    let instance = &described.reservations()[0].instances()[0];
    let expected = HashMap::from([
        (STACK_TAG.to_owned(), stack.clone()),
        (ROLE_TAG.to_owned(), "worker".to_owned()),
        (WORKER_TAG.to_owned(), member.worker_id.clone()),
        ("Name".to_owned(), format!("{stack}-{}", member.worker_id)),
    ]);
    let on_instance = tags(instance.tags());
    for (k, v) in &expected {
        assert_eq!(
            on_instance.get(k),
            Some(v),
            "instance tag {k}: {on_instance:?}"
        );
    }
    assert_eq!(
        instance.instance_lifecycle(),
        Some(&InstanceLifecycleType::Spot),
        "a Spot fleet launches Spot instances"
    );

    let volumes = ec2
        .describe_volumes()
        .filters(
            Filter::builder()
                .name("attachment.instance-id")
                .values(&member.handle)
                .build(),
        )
        .send()
        .await
        .expect("describe the volumes");
    assert!(!volumes.volumes().is_empty(), "the instance has a volume");
    for volume in volumes.volumes() {
        let on_volume = tags(volume.tags());
        for (k, v) in &expected {
            assert_eq!(on_volume.get(k), Some(v), "volume tag {k}: {on_volume:?}");
        }
    }

    let attribute = ec2
        .describe_instance_attribute()
        .instance_id(&member.handle)
        .attribute(InstanceAttributeName::UserData)
        .send()
        .await
        .expect("user data");
    let encoded = attribute
        .user_data()
        .and_then(|v| v.value())
        .expect("the instance has user data");
    let script =
        String::from_utf8(aws_smithy_types::base64::decode(encoded).expect("user data is base64"))
            .expect("user data is text");
    for expected in [
        "#!/bin/bash".to_owned(),
        format!("export MINIMOTO_WORKER_ID='{}'", member.worker_id),
        format!("export MINIMOTO_STACK='{stack}'"),
        "export MINIMOTO_BACKEND='aws'".to_owned(),
        "export AWS_REGION='us-east-1'".to_owned(),
        "'/usr/local/bin/minimoto-worker'".to_owned(),
        "shutdown -h now".to_owned(),
    ] {
        assert!(
            script.lines().any(|l| l == expected),
            "{expected} in the user data:\n{script}"
        );
    }
    fleet.terminate(&member.worker_id).await.expect("terminate");
}

#[tokio::test]
async fn check_names_a_missing_template_and_how_to_create_it() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let stack = unique("nolt");
    let fleet = Ec2Fleet::new(&config, Ec2Settings::new(settings(&stack))).expect("fleet");
    let err = fleet.check().await.expect_err("no template").to_string();
    assert!(
        err.contains(&format!("{stack}-worker"))
            && err.contains("--launch-template")
            && err.contains("setup")
            && err.contains("--worker-ami"),
        "{err}"
    );
}

#[tokio::test]
async fn setup_makes_the_template_once_and_follows_changed_settings() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let ec2 = Client::new(&config);
    let stack = unique("lt");
    let name = format!("{stack}-worker");
    let vpc_group = ec2
        .describe_security_groups()
        .send()
        .await
        .expect("groups")
        .security_groups()[0]
        .group_id()
        .expect("an id")
        .to_owned();
    let subnet = ec2
        .describe_subnets()
        .send()
        .await
        .expect("subnets")
        .subnets()[0]
        .subnet_id()
        .expect("an id")
        .to_owned();
    let wanted = TemplateOptions {
        subnet: Some(subnet.clone()),
        security_groups: vec![vpc_group.clone()],
        key_name: Some("ops".into()),
        ..options()
    };
    assert_eq!(
        ensure_launch_template(&config, &stack, &wanted)
            .await
            .expect("create"),
        Action::Created
    );
    let template = ec2
        .describe_launch_templates()
        .launch_template_names(&name)
        .send()
        .await
        .expect("describe")
        .launch_templates()[0]
        .clone();
    let on_template = tags(template.tags());
    assert_eq!(on_template.get(STACK_TAG), Some(&stack));
    assert_eq!(
        on_template.get(ROLE_TAG).map(String::as_str),
        Some("worker")
    );
    let latest = |ec2: Client, name: String| async move {
        ec2.describe_launch_template_versions()
            .launch_template_name(name)
            .versions("$Latest")
            .send()
            .await
            .expect("versions")
            .launch_template_versions()[0]
            .clone()
    };
    let version = latest(ec2.clone(), name.clone()).await;
    let data = version.launch_template_data().expect("data");
    assert_eq!(data.image_id(), Some(AMI));
    assert_eq!(
        data.instance_type().map(|t| t.as_str()),
        Some(DEFAULT_INSTANCE_TYPE)
    );
    assert_eq!(data.key_name(), Some("ops"));
    assert_eq!(
        data.iam_instance_profile().and_then(|p| p.name()),
        Some("test-worker")
    );
    assert_eq!(
        data.instance_initiated_shutdown_behavior(),
        Some(&ShutdownBehavior::Terminate),
        "a worker that powers off ends its instance"
    );
    assert_eq!(
        data.metadata_options().and_then(|m| m.http_tokens()),
        Some(&LaunchTemplateHttpTokensState::Required)
    );
    let nic = &data.network_interfaces()[0];
    assert_eq!(nic.subnet_id(), Some(subnet.as_str()));
    assert_eq!(nic.groups(), std::slice::from_ref(&vpc_group));

    assert_eq!(
        ensure_launch_template(&config, &stack, &wanted)
            .await
            .expect("setup again"),
        Action::Unchanged,
        "a second setup changes nothing"
    );
    let bigger = TemplateOptions {
        instance_type: "c6i.2xlarge".into(),
        key_name: None,
        ..wanted.clone()
    };
    assert_eq!(
        ensure_launch_template(&config, &stack, &bigger)
            .await
            .expect("setup with another type"),
        Action::Updated(vec!["instance type".into(), "key pair".into()])
    );
    let version = latest(ec2.clone(), name.clone()).await;
    assert_eq!(version.version_number(), Some(2), "a new version");
    assert_eq!(
        version
            .launch_template_data()
            .and_then(|d| d.instance_type())
            .map(|t| t.as_str()),
        Some("c6i.2xlarge")
    );
    assert_eq!(
        ensure_launch_template(&config, &stack, &bigger)
            .await
            .expect("and again"),
        Action::Unchanged
    );

    let other = ensure_launch_template(
        &config,
        &stack,
        &TemplateOptions {
            image_id: "nope".into(),
            ..options()
        },
    )
    .await;
    assert!(matches!(other, Err(CommonError::Invalid(_))), "{other:?}");
}

#[tokio::test]
async fn setup_adopts_an_untagged_template_but_not_another_stacks() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let ec2 = Client::new(&config);
    let (mine, theirs) = (unique("ad"), unique("ad"));
    ec2.create_launch_template()
        .launch_template_name(format!("{mine}-worker"))
        .launch_template_data(
            aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                .image_id(AMI)
                .build(),
        )
        .send()
        .await
        .expect("an untagged template");
    let adopted = ensure_launch_template(&config, &mine, &options())
        .await
        .expect("adopt");
    let Action::Updated(what) = adopted else {
        panic!("expected an update, got {adopted:?}");
    };
    assert_eq!(what[0], "tags", "{what:?}");

    ec2.create_launch_template()
        .launch_template_name(format!("{theirs}-worker"))
        .launch_template_data(
            aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                .image_id(AMI)
                .build(),
        )
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::LaunchTemplate)
                .tags(Tag::builder().key(STACK_TAG).value("someone-else").build())
                .build(),
        )
        .send()
        .await
        .expect("another stack's template");
    let refused = ensure_launch_template(&config, &theirs, &options()).await;
    assert!(
        matches!(&refused, Err(CommonError::Conflict(m)) if m.contains("someone-else")),
        "{refused:?}"
    );
}

#[tokio::test]
async fn cleanup_terminates_the_stacks_instances_and_deletes_its_template() {
    let stack = unique("gone");
    let (_moto, config, fleet) = fleet_on_moto(&stack, false).await;
    let ec2 = Client::new(&config);
    let workers = fleet.launch(2).await.expect("launch two workers");
    // An instance of the stack that is no worker (made by hand), and one of another stack.
    let run = |stack: String| {
        let ec2 = ec2.clone();
        async move {
            ec2.run_instances()
                .image_id(AMI)
                .min_count(1)
                .max_count(1)
                .tag_specifications(
                    TagSpecification::builder()
                        .resource_type(ResourceType::Instance)
                        .tags(Tag::builder().key(STACK_TAG).value(stack).build())
                        .build(),
                )
                .send()
                .await
                .expect("run an instance")
                .instances()[0]
                .instance_id()
                .expect("an id")
                .to_owned()
        }
    };
    let by_hand = run(stack.clone()).await;
    let neighbour = run("neighbour".into()).await;
    let mut ours: Vec<String> = workers.iter().map(|m| m.handle.clone()).collect();
    ours.push(by_hand);
    ours.sort();

    let listed = |report: &[minimoto_aws_admin::Change], action: Action| {
        report
            .iter()
            .filter(|c| c.action == action)
            .map(|c| (c.kind, c.name.clone()))
            .collect::<Vec<_>>()
    };
    let mut expected: Vec<(Kind, String)> =
        ours.iter().map(|id| (Kind::Instance, id.clone())).collect();
    expected.push((Kind::LaunchTemplate, format!("{stack}-worker")));

    let dry = cleanup(&config, &settings(&stack), true)
        .await
        .expect("dry run");
    assert_eq!(listed(&dry, Action::WouldDelete), expected);
    assert_eq!(
        fleet.list().await.expect("list").len(),
        2,
        "a dry run stops nothing"
    );
    fleet.check().await.expect("a dry run keeps the template");

    let done = cleanup(&config, &settings(&stack), false)
        .await
        .expect("cleanup");
    assert_eq!(listed(&done, Action::Deleted), expected);
    let state = |id: String| {
        let ec2 = ec2.clone();
        async move {
            ec2.describe_instances()
                .instance_ids(id)
                .send()
                .await
                .expect("describe")
                .reservations()[0]
                .instances()[0]
                .state()
                .and_then(|s| s.name())
                .map(|n| n.as_str().to_owned())
                .expect("a state")
        }
    };
    for id in &ours {
        let now = state(id.clone()).await;
        assert!(
            now == "terminated" || now == "shutting-down",
            "{id} is {now}"
        );
    }
    assert_eq!(
        state(neighbour).await,
        "running",
        "another stack's instance is left alone"
    );
    assert!(fleet.list().await.expect("list").is_empty());
    assert!(fleet.check().await.is_err(), "the template is gone");

    let again = cleanup(&config, &settings(&stack), false)
        .await
        .expect("cleanup again");
    assert!(again.is_empty(), "nothing tagged is left: {again:?}");
}
