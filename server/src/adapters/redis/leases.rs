//! Single-session leases (R2) in Redis, shared by every gateway: `<ns>:lease:{learner}`
//! holds the session id with a TTL in real milliseconds (the profile's TTL divided by the
//! server clock's scale). Renewal and release only act if the caller still holds the lease.

use redis::RedisResult;

use super::RedisConn;

const RENEW: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) \
    elseif redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 else return 0 end";
const RELEASE: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

pub fn key(conn: &RedisConn, learner: &str) -> String {
    format!("{}:lease:{{{learner}}}", conn.ns())
}

pub async fn holder(conn: &mut RedisConn, learner: &str) -> RedisResult<Option<String>> {
    let k = key(conn, learner);
    conn.query(redis::cmd("GET").arg(k)).await
}

pub async fn hold(
    conn: &mut RedisConn,
    learner: &str,
    session: &str,
    ttl_ms: u64,
) -> RedisResult<()> {
    let k = key(conn, learner);
    conn.query(
        redis::cmd("SET")
            .arg(k)
            .arg(session)
            .arg("PX")
            .arg(ttl_ms.max(1)),
    )
    .await
}

pub async fn renew(
    conn: &mut RedisConn,
    learner: &str,
    session: &str,
    ttl_ms: u64,
) -> RedisResult<bool> {
    let ttl = ttl_ms.max(1).to_string();
    let k = key(conn, learner);
    let n: i64 = conn
        .script(&redis::Script::new(RENEW), &[&k], &[session, &ttl])
        .await?;
    Ok(n == 1)
}

pub async fn release(conn: &mut RedisConn, learner: &str, session: &str) -> RedisResult<()> {
    let k = key(conn, learner);
    let _: i64 = conn
        .script(&redis::Script::new(RELEASE), &[&k], &[session])
        .await?;
    Ok(())
}
