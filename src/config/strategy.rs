//! How traffic moves from the live slot to the new one: the strategy as configured, and
//! its kind as `--strategy`, the action's input and the simulation choose it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::duration::Duration;

/// How traffic moves from the live slot to the new one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "kebab-case")]
pub enum Strategy {
    /// 0 → 100% in one step, then bake.
    AllAtOnce {
        #[serde(default = "default_bake")]
        bake: Duration,
    },
    /// `percent`% for `wait`, then 100%, then bake.
    Canary {
        percent: u8,
        wait: Duration,
        #[serde(default = "default_bake")]
        bake: Duration,
    },
    /// `step`% more every `interval` until 100%, then bake.
    Linear {
        step: u8,
        interval: Duration,
        #[serde(default = "default_bake")]
        bake: Duration,
    },
}

impl Default for Strategy {
    fn default() -> Self {
        Strategy::AllAtOnce {
            bake: default_bake(),
        }
    }
}

impl Strategy {
    fn bake(&self) -> Duration {
        match self {
            Strategy::AllAtOnce { bake }
            | Strategy::Canary { bake, .. }
            | Strategy::Linear { bake, .. } => *bake,
        }
    }

    /// Which of the three shapes this is.
    pub fn kind(&self) -> StrategyKind {
        match self {
            Strategy::AllAtOnce { .. } => StrategyKind::AllAtOnce,
            Strategy::Canary { .. } => StrategyKind::Canary,
            Strategy::Linear { .. } => StrategyKind::Linear,
        }
    }

    /// This strategy switched to `kind` (`--strategy`, the action's `strategy` input). The
    /// same kind keeps its configured steps; another kind gets the defaults the scaffold
    /// suggests (canary 10% for 5m, linear +10% every 1m); the bake is kept either way.
    pub fn with_kind(&self, kind: StrategyKind) -> Strategy {
        if kind == self.kind() {
            return self.clone();
        }
        let bake = self.bake();
        match kind {
            StrategyKind::AllAtOnce => Strategy::AllAtOnce { bake },
            StrategyKind::Canary => Strategy::Canary {
                percent: 10,
                wait: Duration::from_secs(300),
                bake,
            },
            StrategyKind::Linear => Strategy::Linear {
                step: 10,
                interval: Duration::from_secs(60),
                bake,
            },
        }
    }
}

/// The shape of a strategy without its numbers: what `--strategy`, the action's
/// `strategy` input and the simulation choose between. Parsed once, at the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StrategyKind {
    AllAtOnce,
    Canary,
    Linear,
}

impl StrategyKind {
    pub const ALL: [StrategyKind; 3] = [
        StrategyKind::AllAtOnce,
        StrategyKind::Canary,
        StrategyKind::Linear,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StrategyKind::AllAtOnce => "all-at-once",
            StrategyKind::Canary => "canary",
            StrategyKind::Linear => "linear",
        }
    }
}

impl std::fmt::Display for StrategyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A strategy name that is none of the three.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not one of all-at-once, canary, linear")]
pub struct UnknownStrategy(pub String);

impl std::str::FromStr for StrategyKind {
    type Err = UnknownStrategy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StrategyKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s.trim())
            .ok_or_else(|| UnknownStrategy(s.trim().to_string()))
    }
}

fn default_bake() -> Duration {
    Duration::from_secs(300)
}
