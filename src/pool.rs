//! [`RoutingPool`], its builder, and the runtime switches operators use during incidents.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use sqlx::{Pool, Transaction};

use crate::backend::Backend;
use crate::classify::{Analysis, Classifier, ClassifierOptions};
use crate::options::PoolOptions;
use crate::route::{self, current_scope, Decision, PoolState, Reason, Route, Target};
use crate::topology::{Balance, Replica, ReplicaSet};
use crate::Error;

/// One pool over a primary and its read replicas. Implements [`sqlx::Executor`] for
/// `&RoutingPool`, so `sqlx::query(..).fetch_all(&pool)` routes each statement: provable pure
/// reads to a replica, everything else to the primary. Cheap to clone.
pub struct RoutingPool<DB: Backend>(pub(crate) Arc<Inner<DB>>);

pub(crate) struct Inner<DB: Backend> {
    pub primary: Pool<DB>,
    pub replicas: ReplicaSet<DB>,
    pub classifier: Classifier,
    pub force_primary: AtomicBool,
    pub options: PoolOptions,
}

impl<DB: Backend> Clone for RoutingPool<DB> {
    fn clone(&self) -> Self {
        RoutingPool(self.0.clone())
    }
}

impl<DB: Backend> std::fmt::Debug for RoutingPool<DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoutingPool")
            .field("backend", &DB::NAME)
            .field("primary_size", &self.0.primary.size())
            .field(
                "replicas",
                &self
                    .0
                    .replicas
                    .replicas
                    .iter()
                    .map(|r| &*r.name)
                    .collect::<Vec<_>>(),
            )
            .field("balance", &self.0.replicas.balance)
            .field(
                "force_primary",
                &self.0.force_primary.load(Ordering::Relaxed),
            )
            .field("classifier", &self.0.classifier)
            .finish()
    }
}

/// Builds a [`RoutingPool`] from the application's existing sqlx pools.
pub struct RoutingPoolBuilder<DB: Backend> {
    primary: Pool<DB>,
    replicas: Vec<(String, Pool<DB>, u32)>,
    balance: Balance,
    classifier: ClassifierOptions,
    options: PoolOptions,
}

impl<DB: Backend> std::fmt::Debug for RoutingPoolBuilder<DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoutingPoolBuilder")
            .field(
                "replicas",
                &self.replicas.iter().map(|r| &r.0).collect::<Vec<_>>(),
            )
            .field("balance", &self.balance)
            .field("classifier", &self.classifier)
            .field("options", &self.options)
            .finish()
    }
}

impl<DB: Backend> RoutingPoolBuilder<DB> {
    /// Adds a replica with weight 1.
    pub fn replica(self, name: impl Into<String>, pool: Pool<DB>) -> Self {
        self.weighted_replica(name, pool, 1)
    }

    /// Adds a replica with a weight, used by [`Balance::Weighted`] and as the tie-breaker of
    /// [`Balance::LeastOutstanding`].
    pub fn weighted_replica(
        mut self,
        name: impl Into<String>,
        pool: Pool<DB>,
        weight: u32,
    ) -> Self {
        self.replicas.push((name.into(), pool, weight));
        self
    }

    /// The balancing policy. Default: [`Balance::LeastOutstanding`].
    pub fn balance(mut self, balance: Balance) -> Self {
        self.balance = balance;
        self
    }

    /// Classifier options (side-effect and pure function lists, unknown-function policy,
    /// cache size, limits). Their dialect must be the backend's.
    pub fn classifier(mut self, options: ClassifierOptions) -> Self {
        self.classifier = options;
        self
    }

    /// Health, lag, timeout, fallback and consistency options.
    pub fn options(mut self, options: PoolOptions) -> Self {
        self.options = options;
        self
    }

    /// Validates the configuration and builds the pool.
    pub fn build(self) -> Result<RoutingPool<DB>, Error> {
        self.options.validate()?;
        if self.classifier.dialect() != DB::DIALECT {
            return Err(Error::InvalidOption {
                option: "classifier",
                why: "the classifier's dialect differs from the backend's",
            });
        }
        let mut replicas = Vec::with_capacity(self.replicas.len());
        for (name, pool, weight) in self.replicas {
            if name.is_empty() || name.len() > 64 {
                return Err(Error::InvalidReplicaName(name));
            }
            if weight == 0 {
                return Err(Error::ZeroWeight(name));
            }
            if replicas.iter().any(|r: &Replica<DB>| *r.name == *name) {
                return Err(Error::DuplicateReplica(name));
            }
            replicas.push(Replica::new(name.into(), pool, weight));
        }
        Ok(RoutingPool(Arc::new(Inner {
            primary: self.primary,
            replicas: ReplicaSet::new(replicas, self.balance),
            classifier: self.classifier.build(),
            force_primary: AtomicBool::new(false),
            options: self.options,
        })))
    }
}

/// Where one call goes: the decision, the pool to run on, and the replica if any.
pub(crate) struct Routed<'a, DB: Backend> {
    pub decision: Decision,
    pub pool: &'a Pool<DB>,
    pub replica: Option<&'a Replica<DB>>,
    #[allow(dead_code)] // read by telemetry
    pub analysis: Arc<Analysis>,
}

impl<DB: Backend> RoutingPool<DB> {
    /// Starts building a pool around the primary's sqlx pool.
    pub fn builder(primary: Pool<DB>) -> RoutingPoolBuilder<DB> {
        RoutingPoolBuilder {
            primary,
            replicas: Vec::new(),
            balance: Balance::default(),
            classifier: ClassifierOptions::new(DB::DIALECT),
            options: PoolOptions::default(),
        }
    }

    /// An executor that sends every statement to the primary (a per-call hint).
    pub fn primary(&self) -> crate::Hinted<'_, DB> {
        crate::Hinted::new(self, Route::Primary)
    }

    /// An executor that sends reads to a replica even when the classifier would not (reads
    /// calling unknown functions); writes still go to the primary.
    pub fn replica(&self) -> crate::Hinted<'_, DB> {
        crate::Hinted::new(self, Route::Replica)
    }

    /// Begins a transaction on the primary. Every statement run on it (`&mut *tx`) uses that
    /// one primary connection.
    pub async fn begin(&self) -> Result<Transaction<'static, DB>, sqlx::Error> {
        self.0.primary.begin().await
    }

    /// The decision the pool would make for `sql` now, in the current task scope.
    pub fn explain(&self, sql: &str) -> Decision {
        self.route(sql, None, None).decision
    }

    /// The classifier.
    pub fn classifier(&self) -> &Classifier {
        &self.0.classifier
    }

    /// The primary's sqlx pool.
    pub fn primary_pool(&self) -> &Pool<DB> {
        &self.0.primary
    }

    /// A replica's sqlx pool, by name.
    pub fn replica_pool(&self, name: &str) -> Option<&Pool<DB>> {
        self.0.replicas.get(name).map(|r| &r.pool)
    }

    /// The replica names, in configuration order.
    pub fn replica_names(&self) -> impl Iterator<Item = &str> {
        self.0.replicas.replicas.iter().map(|r| &*r.name)
    }

    /// The degrade switch: while on, every read goes to the primary.
    pub fn force_primary(&self, on: bool) {
        self.0.force_primary.store(on, Ordering::Relaxed);
    }

    /// Takes a replica out of rotation (`false`) or puts it back (`true`).
    pub fn set_in_rotation(&self, name: &str, in_rotation: bool) -> Result<(), Error> {
        let replica = self
            .0
            .replicas
            .get(name)
            .ok_or_else(|| Error::UnknownReplica(name.to_string()))?;
        replica.in_rotation.store(in_rotation, Ordering::Relaxed);
        Ok(())
    }

    /// Closes every pool.
    pub async fn close(&self) {
        self.0.primary.close().await;
        for r in &self.0.replicas.replicas {
            r.pool.close().await;
        }
    }

    /// Routes one statement: decision plus the pool to run it on. `exclude` skips a replica
    /// that just failed.
    pub(crate) fn route(
        &self,
        sql: &str,
        call: Option<Route>,
        exclude: Option<&str>,
    ) -> Routed<'_, DB> {
        let inner = &*self.0;
        let analysis = inner.classifier.analyze(sql);
        let state = PoolState {
            has_replicas: !inner.replicas.is_empty(),
            unknown_functions: inner.classifier.unknown_functions(),
        };
        let mut decision = route::decide(
            &analysis.verdict,
            analysis.hint,
            call,
            current_scope(),
            state,
        );
        let mut replica = None;
        if decision.target == Target::Replica {
            if inner.force_primary.load(Ordering::Relaxed) {
                decision = Decision::primary(Reason::ForcedToPrimary);
            } else {
                replica = inner.replicas.pick(exclude);
                if replica.is_none() {
                    decision = Decision::primary(Reason::NoEligibleReplica);
                }
            }
        }
        Routed {
            decision,
            pool: replica.map_or(&inner.primary, |r| &r.pool),
            replica,
            analysis,
        }
    }
}
