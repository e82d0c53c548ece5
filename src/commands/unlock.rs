//! `unlock`: break the deploy lock of an environment/service (a dead run's).

use super::load::load_config;
use super::session::{Session, runtime};
use super::{Io, Target};
use crate::exit::ExitCode;

pub fn run(target: &Target, io: &mut Io<'_>) -> anyhow::Result<ExitCode> {
    let settings = load_config(target, None, None, None)?;
    runtime()?.block_on(async {
        let session = Session::open(target, settings, &io.reporters).await?;
        let out = &mut *io.out;
        match session.engine().unlock().await? {
            Some(lock) => writeln!(
                out,
                "broke the lock held by {} (token {})",
                lock.owner, lock.token
            )?,
            None => writeln!(out, "no lock was held")?,
        }
        Ok(ExitCode::Ok)
    })
}
