// Long work as a job (a settlement draft, a simulate, a re-tier): the
// console starts it with `?async=true`, the server answers 202 {job} at
// once and runs it on its own; progress arrives as `job_progress` messages
// on the event stream, and the outcome is read from GET /v1/jobs/{id}. A
// page left and opened again finds its branch's running jobs in
// GET /v1/jobs and follows them the same way.

import { html, useState, useEffect, useRef } from '../lib.js';
import { api, all, ApiError } from '../api.js';
import { on } from '../live.js';
import { t, addStrings } from '../i18n.js';
import { Progress, ErrorBanner } from '../components.js';

addStrings({
  en: {
    'job.settlement': 'Drafting the settlement',
    'job.simulate': 'Simulating',
    'job.retier': 'Re-tiering',
    'job.running': 'Still running: {kind} started by {by}',
  },
  zh: {
    'job.settlement': '正在生成结算草稿',
    'job.simulate': '正在模拟',
    'job.retier': '正在重新分级',
    'job.running': '仍在进行：{by} 发起的{kind}',
  },
});

/** A failed job's error as the synchronous route would have thrown it. */
function jobError(job) {
  const e = job.error || {};
  if (job.state === 'interrupted') return new ApiError(0, 'interrupted', e.message || 'the server stopped while it ran; start it again', {});
  return new ApiError(e.status || 0, e.code || 'job_failed', e.message || 'the job failed', e.details);
}

/** How often a running job is read again when no progress message came (the stream may be reconnecting). */
const FALLBACK_MS = 3000;

/**
 * Follows one job: `{job, error, busy, start(path, body), follow(job)}`.
 * `done(result, job)` runs once when it succeeds.
 */
export function useJob(done) {
  const [job, setJob] = useState(null);
  const [error, setError] = useState(null);
  const doneRef = useRef(done);
  doneRef.current = done;
  const id = job && job.id;
  const running = !!job && job.state === 'running';

  useEffect(() => {
    if (!id || !running) return undefined;
    let over = false;
    let timer = null;
    const read = async () => {
      clearTimeout(timer);
      if (over) return;
      let j;
      try {
        j = await api('GET', `/v1/jobs/${encodeURIComponent(id)}`);
      } catch (e) {
        if (!over) setError(e);
        return;
      }
      if (over) return;
      if (j.state === 'running') {
        setJob(j);
        timer = setTimeout(read, FALLBACK_MS);
        return;
      }
      over = true;
      setJob(j);
      if (j.state === 'succeeded') doneRef.current(j.result, j);
      else setError(jobError(j));
    };
    const off = on(['job_progress'], (m) => {
      if (m.job !== id) return;
      if (m.state === 'running') {
        setJob((j) => (j && j.id === id ? { ...j, done: m.done, total: m.total } : j));
        clearTimeout(timer);
        timer = setTimeout(read, FALLBACK_MS);
      } else {
        read();
      }
    });
    // It may have finished before this page listened.
    read();
    return () => {
      over = true;
      clearTimeout(timer);
      off();
    };
  }, [id, running]);

  const start = async (path, body) => {
    setError(null);
    try {
      const r = await api('POST', path, { body, query: { async: 'true' } });
      if (r && r.job) setJob(r.job);
      else doneRef.current(r, null);
      return r;
    } catch (e) {
      setError(e);
      return null;
    }
  };
  return { job, error, busy: running, start, follow: setJob, clear: () => setError(null) };
}

/** A job's progress bar (nothing when no job runs) and its error. */
export function JobProgress({ job, error }) {
  return html`${job && job.state === 'running'
      ? html`<div role="status" aria-live="polite"><${Progress} label=${t(`job.${job.kind}`)} done=${job.done} total=${job.total} /></div>`
      : null}
    <${ErrorBanner} error=${error} />`;
}

/** The running jobs of `kind` in `branch` (to find one again after leaving the page). */
export async function runningJobs(branch, kind) {
  const jobs = await all('/v1/jobs', { branch });
  return jobs.filter((j) => j.kind === kind && j.state === 'running');
}
