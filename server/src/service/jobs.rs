//! Jobs: long work run in the background, on the server's own task, so it
//! finishes whether or not the client that started it stays. A job is
//! stored when it starts and when it ends (so it can be found again, with
//! its outcome, after the browser left); its progress (`done` of `total`
//! units) lives in memory and is sent to the event stream as
//! `job_progress` messages, at most four a second per job, and once more
//! when it ends. Progress messages are live only, not kept in the event
//! log: a client that comes back reads the job. A job found `running` in
//! the store that this process does not run was cut short by a restart:
//! it reads as `interrupted`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::sync::broadcast;

use super::page::{Page, PageRequest};
use super::repo::{encode, Source};
use super::{now, ServiceError, Services};
use crate::auth::{Denied, Principal};
use crate::domain::job::{Job, JobFilter, JobKind, JobState};
use crate::domain::token::Role;
use crate::store::{keys, Batch};

/// How often a running job's progress is sent.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// Units of work of a running job: workers add to `total` as they learn
/// of work and to `done` as they finish it.
#[derive(Debug, Default)]
pub struct Progress {
    done: AtomicU64,
    total: AtomicU64,
}

impl Progress {
    /// `n` more units to do.
    pub fn add_total(&self, n: u64) {
        self.total.fetch_add(n, Ordering::Relaxed);
    }

    /// `n` units done.
    pub fn advance(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
    }

    /// (done, total) now.
    pub fn get(&self) -> (u64, u64) {
        (
            self.done.load(Ordering::Relaxed),
            self.total.load(Ordering::Relaxed),
        )
    }
}

/// A progress message for the event stream.
#[derive(Debug, Clone)]
pub struct JobProgress {
    /// The job's branch (who may see it).
    pub branch: String,
    /// The message as JSON.
    pub json: Arc<str>,
}

/// Running jobs and the progress broadcast.
pub struct JobHub {
    running: Mutex<HashMap<String, Arc<Progress>>>,
    progress: broadcast::Sender<JobProgress>,
}

impl Default for JobHub {
    fn default() -> Self {
        Self {
            running: Mutex::default(),
            progress: broadcast::channel(1024).0,
        }
    }
}

impl JobHub {
    /// Every progress message from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<JobProgress> {
        self.progress.subscribe()
    }
}

/// How a job failed, as the API shows errors: built by the API layer from
/// the use case's error.
#[derive(Debug, Clone)]
pub struct JobFailure {
    /// The HTTP status the synchronous route would answer.
    pub status: u16,
    /// The error object (`code`, `message`, `details`).
    pub error: Value,
}

fn job_key(id: &str) -> Vec<u8> {
    keys::key(keys::JOB, &[id])
}

/// Who may read a job: the managers of its branch (and admins); every
/// kind of job is a manager's work.
fn may_read(caller: &Principal, job: &Job) -> Result<(), ServiceError> {
    Ok(caller.require_manager_of(&job.branch)?)
}

impl Services {
    /// Starts `work` as a job of `kind` on `branch` for `caller` (who must
    /// be allowed to do it: the caller checks first) and returns it at once.
    /// `work` gets the job's progress; its outcome is stored when it ends.
    pub async fn start_job<F, Fut>(
        &self,
        caller: &Principal,
        kind: JobKind,
        branch: &str,
        request: Value,
        work: F,
    ) -> Result<Job, ServiceError>
    where
        F: FnOnce(Arc<Progress>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Value, JobFailure>> + Send + 'static,
    {
        caller.require_manager_of(branch)?;
        let job = Job {
            id: self.repo.new_id("job")?,
            kind,
            branch: branch.into(),
            state: JobState::Running,
            by: caller.user.clone(),
            started_at: now(),
            finished_at: None,
            done: 0,
            total: 0,
            request,
            result: None,
            error: None,
        };
        let mut batch = Batch::new();
        batch.expect(job_key(&job.id), None);
        batch.put(job_key(&job.id), encode(&job));
        batch.put(
            keys::key(keys::IX_JOB_BRANCH, &[branch, &job.id]),
            job.id.as_bytes(),
        );
        self.repo.commit(batch).await?;
        let progress = Arc::new(Progress::default());
        self.jobs
            .running
            .lock()
            .insert(job.id.clone(), Arc::clone(&progress));
        self.send_progress(&job, progress.get());

        let services = self.clone();
        let started = job.clone();
        tokio::spawn(async move {
            let ticker = {
                let (services, job, progress) =
                    (services.clone(), started.clone(), Arc::clone(&progress));
                tokio::spawn(async move {
                    let mut last = (0, 0);
                    loop {
                        tokio::time::sleep(PROGRESS_EVERY).await;
                        let now = progress.get();
                        if now != last {
                            services.send_progress(&job, now);
                            last = now;
                        }
                    }
                })
            };
            let outcome = work(Arc::clone(&progress)).await;
            ticker.abort();
            let (done, total) = progress.get();
            let mut job = started;
            job.finished_at = Some(now());
            job.done = done;
            job.total = total.max(done);
            match outcome {
                Ok(result) => {
                    job.done = job.total;
                    job.state = JobState::Succeeded;
                    job.result = Some(result);
                }
                Err(f) => {
                    job.state = JobState::Failed;
                    let mut e = f.error;
                    e["status"] = json!(f.status);
                    job.error = Some(e);
                }
            }
            let mut batch = Batch::new();
            batch.put(job_key(&job.id), encode(&job));
            if let Err(e) = services.repo.commit(batch).await {
                tracing::error!(job = %job.id, error = %e, "a job's outcome could not be stored");
            }
            services.jobs.running.lock().remove(&job.id);
            services.send_progress(&job, (job.done, job.total));
        });
        Ok(job)
    }

    /// Sends `job`'s progress to the event streams (nobody listening is fine).
    fn send_progress(&self, job: &Job, (done, total): (u64, u64)) {
        let message = json!({"job": job.id, "kind": job.kind, "branch": job.branch,
                             "state": job.state, "by": job.by, "done": done, "total": total.max(done),
                             "href": format!("/v1/jobs/{}", job.id)});
        let _ = self.jobs.progress.send(JobProgress {
            branch: job.branch.clone(),
            json: message.to_string().into(),
        });
    }

    /// Whether `caller` may receive a progress message of a job of `branch`.
    pub(crate) fn may_see_job(caller: &Principal, branch: &str) -> bool {
        caller.require_manager_of(branch).is_ok()
    }

    /// Job `id`, with its progress now when it runs.
    pub fn job(&self, caller: &Principal, id: &str) -> Result<Job, ServiceError> {
        let job: Job = self.repo.fetch(keys::JOB, "job", id)?.value;
        may_read(caller, &job)?;
        Ok(self.live(job))
    }

    /// The branch's jobs, oldest first (managers: their branch's; admins:
    /// every branch when none is asked for).
    pub fn list_jobs(&self, caller: &Principal, f: &JobFilter) -> Result<Page<Job>, ServiceError> {
        if caller.role == Role::Rep {
            return Err(Denied("only a branch's managers and admins see its jobs".into()).into());
        }
        let page = PageRequest {
            limit: f.limit,
            cursor: f.cursor.clone(),
        };
        let source = match caller.list_scope(f.branch.as_deref())? {
            Some(b) => Source::Index {
                prefix: keys::prefix(keys::IX_JOB_BRANCH, &[&b]),
                tag: keys::JOB,
            },
            None => Source::Primary(keys::prefix(keys::JOB, &[])),
        };
        let jobs = self.repo.list(source, &page, |_: &Job| true)?;
        Ok(Page {
            items: jobs.items.into_iter().map(|j| self.live(j)).collect(),
            next_cursor: jobs.next_cursor,
        })
    }

    /// A stored job as it stands: the progress of a running one, or
    /// `interrupted` when no task of this process runs it any more.
    fn live(&self, mut job: Job) -> Job {
        if job.state == JobState::Running {
            match self.jobs.running.lock().get(&job.id) {
                Some(p) => {
                    let (done, total) = p.get();
                    job.done = done;
                    job.total = total.max(done);
                }
                // Finished meanwhile (the outcome is stored before the job
                // leaves the running set), or cut short by a restart.
                None => match self.repo.read::<Job>(&job_key(&job.id)) {
                    Ok(Some(stored)) if stored.value.state != JobState::Running => {
                        return stored.value
                    }
                    _ => job.state = JobState::Interrupted,
                },
            }
        }
        job
    }
}
