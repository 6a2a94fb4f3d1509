//! The high watermark never goes backwards on a node (within one run of its process: a
//! restarted node starts again from its last checkpointed commit).

use crate::history::History;

pub fn check(h: &History) -> Vec<String> {
    let mut out = Vec::new();
    for ((node, incarnation), seen) in &h.high_watermarks {
        if let Some(w) = seen.windows(2).find(|w| w[1] < w[0]) {
            out.push(format!(
                "node {node} (start {incarnation}): high watermark went back from {} to {}",
                w[0], w[1]
            ));
        }
    }
    out
}
