//! Workflows on the leader: which asset events start which workflow model ([`launchers`]),
//! the job that runs it ([`launch`]), and running it on the leader itself when the model has
//! no offload step ([`local`]).

pub mod launch;
pub mod launchers;
pub mod local;

pub use launch::{workflow_job, Launch, LaunchError};
pub use launchers::{AssetEvent, Launcher, Launchers, LaunchersError};
pub use local::{LocalConfig, LocalRunner};
