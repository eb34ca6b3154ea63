//! Redis adapters for the production pipeline: the Streams bus (gateways append through
//! `bus`, workers own and read partitions through `partition`), effects routed back to
//! gateways over pub/sub (`effects`) and single-session leases (`leases`). Keys carry a hash
//! tag per partition (`proctor:{p3}:…`) so that everything one partition touches lives in one
//! Redis Cluster slot.

pub mod bus;
pub mod effects;
pub mod leases;
pub mod partition;

use redis::{FromRedisValue, RedisResult};

/// A connection to one Redis, or to a Redis Cluster (`redis+cluster://h1:p1,h2:p2`), with
/// the key namespace this deployment uses (so several deployments, or parallel tests, can
/// share one Redis). Cheap to clone; reconnects by itself.
#[derive(Clone)]
pub struct RedisConn {
    inner: Inner,
    ns: std::sync::Arc<str>,
}

#[derive(Clone)]
enum Inner {
    Single(redis::aio::ConnectionManager),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl std::fmt::Debug for RedisConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.inner {
            Inner::Single(_) => "single",
            Inner::Cluster(_) => "cluster",
        };
        write!(f, "RedisConn({kind}, {})", self.ns)
    }
}

/// Where to reach Redis, parsed from `PROCTOR_REDIS_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisTarget {
    Single(String),
    Cluster(Vec<String>),
}

impl RedisTarget {
    pub fn parse(url: &str) -> RedisTarget {
        match url.strip_prefix("redis+cluster://") {
            Some(nodes) => RedisTarget::Cluster(
                nodes
                    .split(',')
                    .map(|n| format!("redis://{}", n.trim()))
                    .collect(),
            ),
            None => RedisTarget::Single(url.to_owned()),
        }
    }
}

impl RedisConn {
    pub async fn connect(target: &RedisTarget, namespace: &str) -> RedisResult<RedisConn> {
        let inner = match target {
            RedisTarget::Single(url) => {
                let client = redis::Client::open(url.as_str())?;
                Inner::Single(client.get_connection_manager().await?)
            }
            RedisTarget::Cluster(nodes) => {
                let client = redis::cluster::ClusterClient::new(nodes.clone())?;
                Inner::Cluster(client.get_async_connection().await?)
            }
        };
        Ok(RedisConn {
            inner,
            ns: namespace.into(),
        })
    }

    /// The key namespace, e.g. `proctor`.
    pub fn ns(&self) -> &str {
        &self.ns
    }

    /// The stream key of a partition.
    pub fn stream_key(&self, partition: usize) -> String {
        format!("{}:{{p{partition}}}:events", self.ns)
    }

    /// The ownership key of a partition.
    pub fn owner_key(&self, partition: usize) -> String {
        format!("{}:{{p{partition}}}:owner", self.ns)
    }

    /// The pub/sub channel effects travel on.
    pub fn effects_channel(&self) -> String {
        format!("{}:effects", self.ns)
    }

    pub async fn query<T: FromRedisValue>(&mut self, cmd: &redis::Cmd) -> RedisResult<T> {
        match &mut self.inner {
            Inner::Single(c) => cmd.query_async(c).await,
            Inner::Cluster(c) => cmd.query_async(c).await,
        }
    }

    /// Runs a pipeline: its commands go out in one write and their replies come back together.
    pub async fn pipeline<T: FromRedisValue>(&mut self, pipe: &redis::Pipeline) -> RedisResult<T> {
        match &mut self.inner {
            Inner::Single(c) => pipe.query_async(c).await,
            Inner::Cluster(c) => pipe.query_async(c).await,
        }
    }

    pub async fn script<T: FromRedisValue>(
        &mut self,
        script: &redis::Script,
        keys: &[&str],
        args: &[&str],
    ) -> RedisResult<T> {
        let mut inv = script.prepare_invoke();
        for k in keys {
            inv.key(*k);
        }
        for a in args {
            inv.arg(*a);
        }
        match &mut self.inner {
            Inner::Single(c) => inv.invoke_async(c).await,
            Inner::Cluster(c) => inv.invoke_async(c).await,
        }
    }
}

/// The consumer group every partition stream has.
pub const GROUP: &str = "workers";
