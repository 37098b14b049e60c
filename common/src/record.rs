//! The stored form of a job record, shared by every job store: the whole [`Job`] as JSON. Stores
//! keep the fields their queries and conditions need (`status`, `version`) beside it.

use crate::{
    error::{Error, Result},
    ids::JobId,
    job::Job,
};

/// The record of `job` as it will be stored.
pub fn encode(job: &Job) -> Result<String> {
    serde_json::to_string(job)
        .map_err(|e| Error::Invalid(format!("job {} does not serialize: {e}", job.id)))
}

/// A stored record of job `id`; unreadable data is `Invalid`, naming the job.
pub fn decode(id: JobId, record: &str) -> Result<Job> {
    serde_json::from_str(record)
        .map_err(|e| Error::Invalid(format!("stored job {id} is unreadable: {e}")))
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::spec::RenderSpec;

    #[test]
    fn a_record_reads_back_as_the_job_and_garbage_names_the_job() {
        let id = JobId::new();
        let job = Job::new(id, RenderSpec::default(), vec!["k".into()], Utc::now());
        let back = decode(id, &encode(&job).expect("encode")).expect("decode");
        assert_eq!(back.id, id);
        assert_eq!(back.inputs, job.inputs);
        assert_eq!(back.version, job.version);
        let e = decode(id, "{not json").expect_err("garbage");
        assert!(e.to_string().contains(&id.to_string()), "{e}");
    }
}
