// Live updates: one EventSource on GET /v1/events for the whole console
// (the browser sends the session cookie and, on reconnect, Last-Event-ID by
// itself, so nothing is missed). Pages subscribe to event kinds with
// `useLive(kinds, refresh)` and re-read what they show; the server only
// sends what the signed-in user may read.

import { useEffect, useRef } from './lib.js';

const handlers = new Map(); // kind -> Set of functions
const statusListeners = new Set();
let source = null;
let status = 'off'; // off | live | reconnecting | ended
let onEnded = () => {};

function setStatus(s) {
  status = s;
  for (const f of statusListeners) f(s);
}

function dispatch(kind, data) {
  for (const key of [kind, '*']) {
    for (const f of handlers.get(key) || []) f(data, kind);
  }
}

/** Every kind the server sends (for `addEventListener`). */
const KINDS = [
  'branch_created', 'pipeline_changed', 'brand_created', 'fx_rate_added', 'fx_rate_corrected',
  'customer_created', 'customer_changed', 'owner_changed', 'tier_changed',
  'record_added', 'record_corrected', 'deal_created', 'deal_changed',
  'transition', 'veto', 'override', 'policy_event', 'deal_cancelled',
  'task_created', 'task_closed', 'policy_uploaded', 'policy_activated',
  'policy_rolled_back', 'policy_deactivated', 'settlement_drafted',
  'settlement_approved', 'award_announced', 'settlement_paid', 'token_revoked',
  'job_started', 'job_progress', 'job_finished', 'events_lost',
];

/** Opens the stream (once signed in); `ended(message)` when the server ends the session. */
export function connect(ended) {
  disconnect();
  onEnded = ended || (() => {});
  source = new EventSource('/v1/events');
  source.onopen = () => setStatus('live');
  source.onerror = () => setStatus(source && source.readyState === EventSource.CLOSED ? 'ended' : 'reconnecting');
  for (const kind of KINDS) {
    source.addEventListener(kind, (e) => {
      let data = null;
      try {
        data = JSON.parse(e.data);
      } catch (_) {
        return;
      }
      dispatch(kind, data);
    });
  }
  source.addEventListener('session_ended', (e) => {
    let message = '';
    try {
      message = JSON.parse(e.data).message;
    } catch (_) {
      // keep it empty
    }
    disconnect();
    setStatus('ended');
    onEnded(message);
  });
}

/** Closes the stream (sign-out). */
export function disconnect() {
  if (source) source.close();
  source = null;
  setStatus('off');
}

/** Subscribes `f(data, kind)` to `kinds` ('*' for all); returns the unsubscribe. */
export function on(kinds, f) {
  for (const k of kinds) {
    if (!handlers.has(k)) handlers.set(k, new Set());
    handlers.get(k).add(f);
  }
  return () => kinds.forEach((k) => handlers.get(k).delete(f));
}

/** The stream's status, and changes to it. */
export function liveStatus() {
  return status;
}
export function onStatus(f) {
  statusListeners.add(f);
  return () => statusListeners.delete(f);
}

/**
 * A hook: calls `refresh(data, kind)` when an event of `kinds` arrives,
 * with the last of a burst (a re-tier sends many) at most every 150 ms.
 */
export function useLive(kinds, refresh) {
  const latest = useRef(refresh);
  latest.current = refresh;
  useEffect(() => {
    let timer = null;
    let last = null;
    const off = on(kinds, (data, kind) => {
      last = [data, kind];
      if (timer) return;
      timer = setTimeout(() => {
        timer = null;
        latest.current(...last);
      }, 150);
    });
    return () => {
      off();
      if (timer) clearTimeout(timer);
    };
  }, [kinds.join(',')]);
}
