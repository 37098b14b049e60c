//! The SQS adapter against moto: the shared queue contract, the queue attributes `minimoto setup`
//! keeps in line, and what the contract does not cover (non-job messages, stale receipts).

use std::time::Duration;

use crate::support::{Moto, unique};
use aws_sdk_sqs::types::QueueAttributeName;
use minimoto_aws::{AwsSettings, events::SqsEvents, queue::SqsQueue};
use minimoto_aws_admin::{Action, Change, queues::ensure_queues};
use minimoto_common::{Error, JobId, contract, ports::JobQueue};

fn settings(max_receives: u32) -> AwsSettings {
    AwsSettings {
        stack: "minimoto-test".into(),
        bucket: "minimoto-unused".into(),
        table: "minimoto-unused".into(),
        queue: unique("jobs"),
        events_queue: unique("events"),
        workers_table: "minimoto-unused-workers".into(),
        max_receives,
    }
}

/// What setup did to the dead-letter queue and the main queue.
fn actions(changes: &[Change]) -> Vec<Action> {
    changes.iter().map(|c| c.action.clone()).collect()
}

#[tokio::test]
async fn sqs_queue_keeps_the_contract() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let settings = settings(3);
    assert_eq!(
        actions(
            &ensure_queues(&config, &settings)
                .await
                .expect("create queues")
        ),
        [Action::Created, Action::Created, Action::Created]
    );
    let queue = SqsQueue::connect(&config, &settings)
        .await
        .expect("connect");
    contract::job_queue(&queue, 3, contract::Order::BestEffort).await;
}

#[tokio::test]
async fn sqs_events_queue_keeps_the_contract() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let settings = settings(3);
    let err = SqsEvents::connect(&config, &settings.events_queue)
        .await
        .expect_err("connect before setup must fail");
    assert!(
        err.to_string().contains(&settings.events_queue)
            && err.to_string().contains("minimoto setup"),
        "the error must name the events queue and the fix: {err}"
    );
    ensure_queues(&config, &settings)
        .await
        .expect("create queues");
    let events = SqsEvents::connect(&config, &settings.events_queue)
        .await
        .expect("connect");
    contract::event_queue(&events).await;
}

#[tokio::test]
async fn setup_is_idempotent_and_the_queue_survives_what_the_contract_does_not_send() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let settings = settings(3);

    let err = SqsQueue::connect(&config, &settings)
        .await
        .expect_err("connect before setup must fail");
    let message = err.to_string();
    assert!(
        message.contains(&settings.queue) && message.contains("minimoto setup"),
        "the error must name the queue and the fix: {message}"
    );

    assert_eq!(
        actions(
            &ensure_queues(&config, &settings)
                .await
                .expect("create queues")
        ),
        [Action::Created, Action::Created, Action::Created]
    );
    assert_eq!(
        actions(
            &ensure_queues(&config, &settings)
                .await
                .expect("create queues again")
        ),
        [Action::Unchanged, Action::Unchanged, Action::Unchanged],
        "a second setup changes nothing"
    );
    let queue = SqsQueue::connect(&config, &settings)
        .await
        .expect("connect");
    let client = aws_sdk_sqs::Client::new(&config);
    let url = client
        .get_queue_url()
        .queue_name(&settings.queue)
        .send()
        .await
        .expect("queue url")
        .queue_url
        .expect("a url");

    // A changed receive limit (from a changed --max-attempts) reaches the existing queue.
    let five = AwsSettings {
        max_receives: 5,
        ..settings.clone()
    };
    assert_eq!(
        actions(
            &ensure_queues(&config, &five)
                .await
                .expect("create queues with a new limit")
        ),
        [
            Action::Unchanged,
            Action::Updated(vec!["redrive policy".into()]),
            Action::Unchanged
        ],
        "only the main queue's redrive policy changes"
    );
    let redrive = client
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .expect("queue attributes")
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::RedrivePolicy))
        .expect("a redrive policy");
    let redrive: serde_json::Value =
        serde_json::from_str(&redrive).expect("redrive policy is JSON");
    assert_eq!(
        redrive["maxReceiveCount"].to_string().trim_matches('"'),
        "5",
        "{redrive}"
    );
    assert!(
        redrive["deadLetterTargetArn"]
            .as_str()
            .is_some_and(|arn| arn.ends_with(&format!(":{}", settings.dead_letter_queue()))),
        "the redrive policy still targets the dead-letter queue: {redrive}"
    );

    // A body that is not a job id, sent by someone else, must not stand in front of real work.
    client
        .send_message()
        .queue_url(&url)
        .message_body("definitely not a job id")
        .send()
        .await
        .expect("send garbage");
    let job = JobId::new();
    queue.send(job).await.expect("send");
    let d = queue
        .receive(Duration::from_secs(5), Duration::from_secs(30))
        .await
        .expect("receive")
        .expect("the job behind the garbage is delivered");
    assert_eq!((d.job_id, d.receive_count), (job, 1));
    let depth = queue.depth().await.expect("depth");
    assert_eq!(
        (depth.visible, depth.in_flight, depth.dead),
        (0, 1, 0),
        "the garbage was deleted, not left or dead-lettered"
    );

    // Once acked, the receipt is stale: extending says NotFound, acking again is fine.
    queue.ack(&d.receipt).await.expect("ack");
    assert!(
        matches!(
            queue.extend(&d.receipt, Duration::from_secs(30)).await,
            Err(Error::NotFound(_))
        ),
        "extending an acked message must be NotFound"
    );
    queue
        .ack(&d.receipt)
        .await
        .expect("a second ack is not an error");
    assert!(
        matches!(
            queue
                .extend("no-such-receipt", Duration::from_secs(30))
                .await,
            Err(Error::NotFound(_))
        ),
        "extending an unknown receipt must be NotFound"
    );
    queue
        .ack("no-such-receipt")
        .await
        .expect("acking an unknown receipt is not an error");
}
