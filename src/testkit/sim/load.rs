//! The load runner: pushes a stream of user messages at the connected bot, paced by a window
//! of un-replied events (and optionally a rate), and times the echoes.
//!
//! The bookkeeping of one run (send times, latencies, order) is `testkit::load`; this file is
//! the driver that creates the load chats, paces the pushes and cleans up, because only the
//! [`Sim`] handle can reach both the bot's connection and the clock.

use std::time::Duration;

use tokio::time::Instant;

use super::Sim;
use crate::error::{Error, Result};
use crate::testkit::load::{LoadReport, LoadRun, LoadSpec};
use crate::testkit::wire::hex40;

impl Sim {
    /// Runs a load test against the connected bot (see [`LoadSpec`]). Load chats keep no
    /// history and requests are not recorded while it runs.
    pub async fn run_load(&self, spec: LoadSpec) -> Result<LoadReport> {
        self.run_load_replicas(spec, 1).await
    }

    /// [`run_load`](Self::run_load) against `replicas` sessions of the bot (processes of one
    /// bot sharing its chats): waits until that many are connected, takes an echo from any of
    /// them, and reports lost, duplicated and reordered echoes per chat across sessions, and
    /// for each session that closes during the run how long its chats went unanswered.
    pub async fn run_load_replicas(&self, spec: LoadSpec, replicas: u32) -> Result<LoadReport> {
        let bot = self.shared.cfg.bot.login.clone();
        let sessions = replicas.max(1) as usize;
        if sessions == 1 {
            // The newest session, not one still closing after a restart.
            self.wait_for_live_session(spec.connect_timeout).await?;
        } else {
            self.shared
                .wait_for("the bot's sessions", spec.connect_timeout, |state| {
                    (state.sessions_of(&bot) >= sessions).then_some(())
                })
                .await?;
        }
        let (chats, window, done, recording) = {
            let mut state = self.shared.state();
            let mut chats = Vec::new();
            for index in 0..spec.chats.max(1) {
                let user = format!("load-user-{index}");
                state.ensure_user(&user);
                let id = hex40();
                state.insert_load_chat(&id, &bot, &user, index);
                chats.push((id, user));
            }
            let run = LoadRun::new(&spec, replicas);
            let (window, done) = (run.window.clone(), run.done.clone());
            state.load = Some(run);
            let recording = std::mem::replace(&mut state.record_requests, false);
            (chats, window, done, recording)
        };
        let started = Instant::now();
        let all_replied = done.notified();
        tokio::pin!(all_replied);
        all_replied.as_mut().enable();
        let deadline = started + spec.timeout;
        let mut seq = 0u64;
        let mut timed_out = false;
        while seq < spec.events {
            let mut batch = (window.available_permits() as u64).clamp(1, spec.events - seq);
            if let Some(rate) = spec.rate.filter(|r| r.is_finite() && *r > 0.0) {
                // Event `seq` is due at `seq / rate`; the timer's 1 ms granularity makes
                // small bursts, so push whatever is due by now in one go.
                let due_at = started + Duration::from_secs_f64(seq as f64 / rate);
                if tokio::time::timeout_at(deadline, tokio::time::sleep_until(due_at))
                    .await
                    .is_err()
                {
                    timed_out = true;
                    break;
                }
                let due = (started.elapsed().as_secs_f64() * rate) as u64 + 1;
                batch = batch.min(due.saturating_sub(seq).max(1));
            }
            match tokio::time::timeout_at(deadline, window.acquire_many(batch as u32)).await {
                Ok(Ok(permits)) => permits.forget(),
                _ => {
                    timed_out = true;
                    break;
                }
            }
            let mut state = self.shared.state();
            for _ in 0..batch {
                let (chat, user) = &chats[(seq % chats.len() as u64) as usize];
                state.push_load_event(&bot, chat, user, seq);
                seq += 1;
            }
        }
        if !timed_out && spec.events > 0 {
            let _ = tokio::time::timeout_at(deadline, all_replied).await;
        }
        let mut state = self.shared.state();
        state.record_requests = recording;
        for (id, _) in &chats {
            state.chats.remove(id);
        }
        let run = state
            .load
            .take()
            .ok_or_else(|| Error::protocol("load run vanished"))?;
        Ok(run.report(seq, started))
    }
}
