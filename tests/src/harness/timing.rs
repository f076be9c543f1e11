//! What the benches that run containers share: percentiles, and the loop that runs a
//! container publishing a port, waits for its first HTTP answer, then removes it.

use std::process::Command;
use std::time::{Duration, Instant};

use super::netns::http_answers;

/// The `p` percentile of `v` (0.5: the median).
pub fn pct(v: &[f64], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Milliseconds since `t`.
pub fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

/// `n` times: the shell command `run(i, port)`, then the first answer "hello" on
/// 127.0.0.1:port, then `rm(i)`. Returns (to the answer, rm) in ms.
pub fn run_answer_rm(n: usize, base_port: u16, run: impl Fn(usize, u16) -> String, rm: impl Fn(usize) -> String) -> (Vec<f64>, Vec<f64>) {
    let (mut up, mut down) = (Vec::new(), Vec::new());
    for i in 0..n {
        let port = base_port + i as u16;
        let t0 = Instant::now();
        let out = Command::new("sh").arg("-c").arg(run(i, port)).output().expect("run");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        while !http_answers(port, "hello") {
            assert!(t0.elapsed() < Duration::from_secs(20), "no answer on {port}");
            std::thread::sleep(Duration::from_micros(200));
        }
        up.push(ms(t0));
        let t1 = Instant::now();
        let out = Command::new("sh").arg("-c").arg(rm(i)).output().expect("rm");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        down.push(ms(t1));
    }
    (up, down)
}
