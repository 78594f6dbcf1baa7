//! Exponential backoff with jitter, for reconnecting without hammering a broker
//! that is restarting.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    current: Duration,
    initial: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff { current: initial, initial, max }
    }

    /// The default for reconnecting: 100 ms doubling up to 5 s, so a restarted
    /// broker is found again within a few seconds of coming back.
    pub fn reconnect() -> Self {
        Backoff::new(Duration::from_millis(100), Duration::from_secs(5))
    }

    /// The next delay, with up to 25 % jitter so many instances do not retry in step.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.current;
        self.current = (self.current * 2).min(self.max);
        let jitter = rand::random::<f64>() * 0.25;
        base.mul_f64(1.0 + jitter)
    }

    /// Call after a success so the next failure starts small again.
    pub fn reset(&mut self) {
        self.current = self.initial;
    }

    pub async fn wait(&mut self) {
        tokio::time::sleep(self.next_delay()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(400));
        let d: Vec<_> = (0..4).map(|_| b.next_delay()).collect();
        assert!(d[0] >= Duration::from_millis(100) && d[0] <= Duration::from_millis(125));
        assert!(d[1] >= Duration::from_millis(200));
        assert!(d[3] <= Duration::from_millis(500));
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(125));
    }
}
