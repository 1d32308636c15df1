//! Dependency order: a topological sort whose ties are broken by address, so the same graph
//! always gives the same order; and cycles reported with every resource in them.

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// A node to order: its address and the addresses it depends on.
pub struct Node<'a> {
    pub address: &'a str,
    pub depends_on: &'a [String],
}

/// Indices of `nodes` in dependency order (dependencies first). Dependencies on addresses
/// that are not among `nodes` are ignored. A cycle is an error listing, for each cycle, its
/// addresses in sorted order.
pub fn topological(nodes: &[Node<'_>]) -> Result<Vec<usize>, Vec<Vec<String>>> {
    let index: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.address, i))
        .collect();
    // Ties are broken by address: rank the addresses once, so the heap compares integers
    // (at 30,000 resources, string comparisons in the heap were most of the sort).
    let mut by_address: Vec<usize> = (0..nodes.len()).collect();
    by_address.sort_unstable_by(|&a, &b| nodes[a].address.cmp(nodes[b].address).then(a.cmp(&b)));
    let mut rank = vec![0; nodes.len()];
    for (r, &i) in by_address.iter().enumerate() {
        rank[i] = r;
    }
    let mut graph: DiGraph<usize, ()> = DiGraph::with_capacity(nodes.len(), nodes.len() * 2);
    let ids: Vec<NodeIndex> = (0..nodes.len()).map(|i| graph.add_node(i)).collect();
    for (i, node) in nodes.iter().enumerate() {
        for dep in node.depends_on {
            if let Some(&d) = index.get(dep.as_str())
                && d != i
            {
                graph.add_edge(ids[d], ids[i], ());
            }
        }
    }
    let mut indegree: Vec<usize> = ids
        .iter()
        .map(|&id| graph.neighbors_directed(id, petgraph::Incoming).count())
        .collect();
    let mut ready: BinaryHeap<Reverse<(usize, usize)>> = indegree
        .iter()
        .enumerate()
        .filter(|(_, d)| **d == 0)
        .map(|(i, _)| Reverse((rank[i], i)))
        .collect();
    let mut order = Vec::with_capacity(nodes.len());
    while let Some(Reverse((_, i))) = ready.pop() {
        order.push(i);
        for next in graph.neighbors_directed(ids[i], petgraph::Outgoing) {
            let n = graph[next];
            indegree[n] -= 1;
            if indegree[n] == 0 {
                ready.push(Reverse((rank[n], n)));
            }
        }
    }
    if order.len() == nodes.len() {
        return Ok(order);
    }
    let mut cycles: Vec<Vec<String>> = tarjan_scc(&graph)
        .into_iter()
        .filter(|scc| scc.len() > 1)
        .map(|scc| {
            let mut names: Vec<String> = scc
                .iter()
                .map(|id| nodes[graph[*id]].address.to_string())
                .collect();
            names.sort();
            names
        })
        .collect();
    cycles.sort();
    Err(cycles)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(spec: &[(&str, &[&str])]) -> Result<Vec<String>, Vec<Vec<String>>> {
        let deps: Vec<Vec<String>> = spec
            .iter()
            .map(|(_, d)| d.iter().map(|s| s.to_string()).collect())
            .collect();
        let nodes: Vec<Node> = spec
            .iter()
            .zip(&deps)
            .map(|((a, _), d)| Node {
                address: a,
                depends_on: d,
            })
            .collect();
        topological(&nodes).map(|o| o.into_iter().map(|i| spec[i].0.to_string()).collect())
    }

    #[test]
    fn dependencies_first_ties_by_address() {
        let got = order(&[
            ("rootfs.b", &["host.b"]),
            ("host.b", &[]),
            ("host.a", &[]),
            ("rootfs.a", &["host.a"]),
            ("app.x", &["rootfs.a", "rootfs.b", "missing.dep"]),
        ])
        .unwrap();
        assert_eq!(
            got,
            vec!["host.a", "host.b", "rootfs.a", "rootfs.b", "app.x"]
        );
    }

    #[test]
    fn cycles_name_every_member() {
        let err = order(&[
            ("a", &["c"]),
            ("b", &["a"]),
            ("c", &["b"]),
            ("d", &[]),
            ("e", &["e2"]),
            ("e2", &["e"]),
        ])
        .unwrap_err();
        assert_eq!(
            err,
            vec![
                vec!["a".to_string(), "b".into(), "c".into()],
                vec!["e".into(), "e2".into()]
            ]
        );
    }
}
