//! At most one leader per term (epoch).

use crate::history::History;

pub fn check(h: &History) -> Vec<String> {
    h.leaders
        .iter()
        .filter(|(_, nodes)| {
            let mut n = (*nodes).clone();
            n.sort_unstable();
            n.dedup();
            n.len() > 1
        })
        .map(|(term, nodes)| format!("term {term} had several leaders: {nodes:?}"))
        .collect()
}
